"""Seeded chaos schedules against the kv store: does every one stay linearizable and lose nothing?

    sudo python bench/kv_chaos.py [--runs 20] [--first-seed 1] [--members 5] [--duration 30]
                                  [--faults all] [--out bench/results/kv_chaos.json]

Runs `ketch chaos run --members N` once per seed (every fault kind by default: partitions of
every shape, one-way, loss, bandwidth, kill, pause, CPU hog, member removal and re-add) and
prints one row per run: the faults drawn, operations and their outcomes, the checker's verdict,
acknowledged writes lost, leader changes, and whether every member followed one leader at the
end. Writes JSON. This is a correctness sweep, not a timing: there is no anchor, and the exit
status is 1 unless every run is linearizable with no acknowledged write lost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KETCH = [sys.executable, "-m", "orchestrator.cli"]


def all_fault_kinds() -> str:
    from orchestrator.lab.schedule import FAULTS
    return ",".join(FAULTS)


def chaos_run(out: Path, seed: int, members: int, duration_s: float, faults: str) -> dict:
    argv = [*KETCH, "chaos", "run", "--members", str(members), "--duration", str(duration_s),
            "--seed", str(seed), "--out", str(out), "--faults", faults]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 600, cwd=ROOT)
    summary_file = out / "summary.json"
    if not summary_file.exists():
        return {"seed": seed, "verdict": f"NO SUMMARY (rc {done.returncode}): {done.stderr[-500:]}",
                "faults": [], "operations": 0, "ok": 0, "fail": 0, "info": 0, "acknowledged_lost": None,
                "leader_changes": None, "settled": None, "wall_s": round(time.monotonic() - started, 1)}
    summary = json.loads(summary_file.read_text())
    schedule = json.loads((out / "schedule.json").read_text()) if (out / "schedule.json").exists() else []
    kinds = [entry.get("kind", "?") for entry in schedule] if isinstance(schedule, list) else []
    return {"seed": seed, "faults": kinds, "operations": summary["operations"], "ok": summary["ok"],
            "fail": summary["fail"], "info": summary["info"], "verdict": summary["verdict"],
            "acknowledged_lost": summary["acknowledged_lost"], "leader_changes": summary["leader_changes"],
            "settled": summary["settled"], "wall_s": round(time.monotonic() - started, 1)}


def passed(row: dict) -> bool:
    return row["verdict"] == "linearizable" and row["acknowledged_lost"] == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--faults", default="all", help="comma-separated fault kinds, or all")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kv_chaos.json")
    args = parser.parse_args()
    faults = all_fault_kinds() if args.faults == "all" else args.faults
    work = Path(tempfile.mkdtemp(prefix="ketch-kv-chaos-"))
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.runs):
        row = chaos_run(work / f"seed-{seed}", seed, args.members, args.duration, faults)
        rows.append(row)
        print(f"seed {seed}: {row['verdict']}, lost {row['acknowledged_lost']}, settled {row['settled']}, "
              f"{row['wall_s']} s", flush=True)
    print(f"\n{args.members} members, {args.duration:g} s per run, faults from {faults}; runs in {work}")
    print("| seed | faults | ops | ok | fail | info | verdict | acknowledged lost | leader changes | settled |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {', '.join(r['faults'])} | {r['operations']} | {r['ok']} | {r['fail']} | {r['info']} "
              f"| {r['verdict']} | {r['acknowledged_lost']} | {r['leader_changes']} | {r['settled']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"members": args.members, "duration_s": args.duration, "faults": faults,
                                    "runs": rows}, indent=2))
    print(f"wrote {args.out}; {sum(map(passed, rows))} of {len(rows)} linearizable with nothing lost")
    return 0 if all(map(passed, rows)) else 1


if __name__ == "__main__":
    sys.exit(main())
