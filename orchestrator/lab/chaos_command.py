"""`ketch chaos run`: a seeded fault-injection run against a kv cluster in a lab."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator.lab.chaos import ChaosRun
from orchestrator.lab.schedule import FAULTS


def add_chaos_parser(subparsers) -> None:
    chaos = subparsers.add_parser("chaos", help="fault injection with a linearizability verdict")
    sub = chaos.add_subparsers(dest="chaos_command", metavar="COMMAND", required=True)
    run = sub.add_parser(
        "run",
        help="run a kv cluster under a seeded fault schedule and check the history",
        description="Network faults need root (hosts are network namespaces); "
        "without root, hosts are loopback addresses and only kill, pause, hog and member work.",
    )
    run.add_argument("--members", type=int, default=5)
    run.add_argument("--duration", type=float, default=60.0, help="seconds of workload")
    run.add_argument("--faults", default="partition,kill,pause,loss", help=f"comma-separated, from {','.join(FAULTS)}")
    run.add_argument("--seed", type=int, default=0, help="the same seed replays the same schedule")
    run.add_argument("--clients", type=int, default=5)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--unsafe-local-reads", action="store_true", help="run the members with the teaching switch")
    run.add_argument("--lab", type=Path, help="fault the whole running lab in this directory (see `ketch up`) "
                                               "instead of a kv cluster of its own")
    run.add_argument("--workload", choices=["deployments"], default="deployments",
                     help="with --lab: what the clients do through the API while faults run")
    run.add_argument("--converge-seconds", type=float, default=180.0,
                     help="with --lab: how long the cluster may take to converge after the last heal")
    run.set_defaults(func=run_chaos)


def run_chaos(args) -> int:
    if args.lab:
        return run_lab_chaos(args)
    faults = [f for f in args.faults.split(",") if f]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        print(f"ketch chaos run: unknown faults {unknown}; choose from {','.join(FAULTS)}", file=sys.stderr)
        return 2
    if not (1 <= args.members <= 9 and 0 < args.duration <= 3600 and 1 <= args.clients <= 64):
        print("ketch chaos run: --members 1..9, 0 < --duration <= 3600, --clients 1..64", file=sys.stderr)
        return 2
    try:
        summary = ChaosRun(
            args.members, args.duration, faults, args.seed, args.out, args.clients, args.unsafe_local_reads
        ).run()
    except RuntimeError as err:
        print(f"ketch chaos run: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    print(f"history, faults, verdict and logs in {args.out}/")
    return 0 if summary["verdict"] == "linearizable" else 1


def run_lab_chaos(args) -> int:
    import trio

    from orchestrator.lab.cluster import LabState
    from orchestrator.lab.cluster_chaos import CLUSTER_FAULTS, run_cluster_chaos
    faults = [] if args.faults == "none" else [f for f in args.faults.split(",") if f]  # none: the baseline
    unknown = [f for f in faults if f not in CLUSTER_FAULTS]
    if unknown or (not faults and args.faults != "none"):
        print(f"ketch chaos run --lab: unknown faults {unknown}; choose from {','.join(CLUSTER_FAULTS)} "
              "(or none)", file=sys.stderr)
        return 2
    try:
        state = LabState.load(args.lab)
    except (OSError, ValueError, KeyError):
        print(f"ketch chaos run: no running lab in {args.lab} (start one with `ketch up --detach`)", file=sys.stderr)
        return 2
    summary = trio.run(run_cluster_chaos, state, faults, args.seed, args.duration, args.out, args.converge_seconds)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_fault"}, indent=2))
    print(f"faults, operations, summary and report.html in {args.out}/")
    return 0 if summary["converged"] else 1
