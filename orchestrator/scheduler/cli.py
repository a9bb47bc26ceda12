"""`ketch scheduler`."""

from __future__ import annotations

from orchestrator.client.component import run_component


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("scheduler", help="schedule pods onto nodes")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--scheduler-name", default="default-scheduler")
    parser.add_argument("--metrics-bind", default=None, help="HOST:PORT for /metrics (off by default)")
    parser.add_argument("--identity", default=None, help="leader election identity (default host-pid)")
    parser.add_argument("--profile", action="store_true",
                        help="time every plugin call; log a table of time per plugin and extension point "
                             "every 30 s and at exit")
    parser.set_defaults(func=run_scheduler)


def run_scheduler(args) -> int:
    from orchestrator.scheduler.scheduler import Scheduler

    return run_component("scheduler", args.kubeconfig, lambda api: Scheduler(
        api, args.scheduler_name, args.identity, args.profile).run(args.metrics_bind))
