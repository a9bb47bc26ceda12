"""Linearizability checker speed: how long `ketch check` takes on the histories that matter.

    python bench/checker.py [--repeat 3] [--out bench/results/checker.json]

Histories:
    porcupine-kv c01/c10/c50 ok/bad   the six known-answer files (../shared/testdata or $KETCH_TESTDATA)
    register 10k ops, 10 clients       a linearizable-by-construction register history
Each is timed end to end (parse, partition by key, search; best of --repeat). The anchor in the
same run is parsing alone, the floor any checker pays: "check/parse" says how much the search
adds. Targets (issue 4): each porcupine-kv file under 5 s, the 10k register history under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from orchestrator.lab import history
from orchestrator.lab import linearizability as lin
from orchestrator.lab.simulate import simulated_register_history

ROOT = Path(__file__).resolve().parent.parent

TESTDATA = Path(os.environ.get("KETCH_TESTDATA") or ROOT.parent / "shared" / "testdata") / "porcupine-kv"


def best_of(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, lines: list[str], target_s: float, repeat: int) -> dict:
    verdict = []

    def check() -> None:
        events = history.parse_history(lines)
        verdict.append(lin.check(history.operations(events), history.guess_model(events)).verdict.value)
    parse_s = best_of(repeat, lambda: history.operations(history.parse_history(lines)))
    check_s = best_of(repeat, check)
    ops = len(history.operations(history.parse_history(lines)))
    return {"history": name, "operations": ops, "verdict": verdict[-1], "check_s": round(check_s, 3),
            "parse_s": round(parse_s, 4), "check_per_parse": round(check_s / parse_s, 1),
            "target_s": target_s, "share_of_target": round(check_s / target_s, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "checker.json")
    args = parser.parse_args()
    rows = []
    if TESTDATA.exists():
        for name in ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"]:
            rows.append(measure(f"porcupine-kv {name}", (TESTDATA / f"{name}.txt").read_text().splitlines(),
                                5.0, args.repeat))
    else:
        print(f"porcupine-kv histories not found at {TESTDATA}: measuring the register history only")
    rows.append(measure("register 10k ops, 10 clients", simulated_register_history(10_000, 10, seed=7),
                        30.0, args.repeat))
    print(f"{'history':32} {'ops':>6} {'verdict':>17} {'check s':>8} {'parse s':>8} {'check/parse':>11} "
          f"{'target s':>8} {'of target':>9}")
    for r in rows:
        print(f"{r['history']:32} {r['operations']:>6} {r['verdict']:>17} {r['check_s']:>8} {r['parse_s']:>8} "
              f"{r['check_per_parse']:>11} {r['target_s']:>8} {r['share_of_target']:>9}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                                    "repeat": args.repeat, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
