"""Seeded cluster chaos runs against one lab: does the whole cluster converge after each, and how fast?

    sudo python bench/lab_chaos.py [--runs 10] [--first-seed 1] [--duration 30] [--workers 2]
                                   [--faults partition,oneway,isolate,loss,bandwidth,kill,pause]
                                   [--out bench/results/lab_chaos.json]

Brings a lab up (`ketch up --detach`, 3 control planes), runs `ketch chaos run --lab --workload
deployments` once per seed (faults anywhere, one at a time, while clients create, scale, roll and
delete Deployments and Services), and takes the lab down. Prints one row per run (faults injected,
API operations and their outcomes, converged or not and after how long) and writes JSON. The
anchor is the same workload's share of acknowledged operations with no fault (the first run,
seed 0, --faults none): availability under faults is read as a ratio to it.
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
FAULTS = "partition,oneway,isolate,loss,bandwidth,kill,pause"


def chaos_run(lab: Path, out: Path, seed: int, duration_s: float, faults: str) -> dict:
    argv = [*KETCH, "chaos", "run", "--lab", str(lab), "--workload", "deployments", "--duration", str(duration_s),
            "--seed", str(seed), "--out", str(out), "--converge-seconds", "120"]
    argv += ["--faults", faults or "none"]
    subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 400, cwd=ROOT)
    summary = json.loads((out / "summary.json").read_text())
    kinds = [w["kind"] for w in summary["per_fault"]]
    return {"seed": seed, "faults": kinds, "ops": summary["ops"], "ok": summary["ok"], "fail": summary["fail"],
            "unknown": summary["unknown"], "ok_share": round(summary["ok"] / max(1, summary["ops"]), 3),
            "converged": summary["converged"], "converged_after_s": summary["converged_after_s"],
            "problems": summary["problems"][:5]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--faults", default=FAULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lab_chaos.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ketch-lab-chaos-"))
    lab = work / "lab"
    up = subprocess.run([*KETCH, "up", "--dir", str(lab), "--workers", str(args.workers), "--detach"],
                        capture_output=True, text=True, timeout=400, cwd=ROOT)
    if up.returncode != 0:
        print(up.stdout[-2000:] + up.stderr[-2000:], file=sys.stderr)
        return 1
    rows = []
    try:
        anchor = chaos_run(lab, work / "anchor", 0, args.duration, "")
        for seed in range(args.first_seed, args.first_seed + args.runs):
            started = time.monotonic()
            row = chaos_run(lab, work / f"seed-{seed}", seed, args.duration, args.faults)
            row["wall_s"] = round(time.monotonic() - started, 1)
            rows.append(row)
            print(f"seed {seed}: converged={row['converged']} after {row['converged_after_s']} s", flush=True)
    finally:
        subprocess.run([*KETCH, "down", "--dir", str(lab)], capture_output=True, timeout=180, cwd=ROOT)
    print(f"\nno faults (anchor): {anchor['ops']} ops, ok share {anchor['ok_share']}")
    print("| seed | faults | ops | ok | fail | unknown | ok share / anchor | converged after s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = round(r["ok_share"] / anchor["ok_share"], 2) if anchor["ok_share"] else None
        after = r["converged_after_s"] if r["converged"] else f"NOT CONVERGED: {r['problems']}"
        print(f"| {r['seed']} | {','.join(r['faults'])} | {r['ops']} | {r['ok']} | {r['fail']} | {r['unknown']} "
              f"| {ratio} | {after} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"anchor": anchor, "runs": rows, "duration_s": args.duration,
                                    "faults": args.faults, "workers": args.workers}, indent=2))
    print(f"wrote {args.out}")
    return 0 if all(r["converged"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
