"""`ketch hollow-nodes`."""

from __future__ import annotations

import sys

from orchestrator.client.component import run_component


def add_parser(subparsers) -> None:
    hollow = subparsers.add_parser("hollow-nodes", help="simulate N nodes through the API (kwok-style)")
    hollow.add_argument("--kubeconfig", required=True)
    hollow.add_argument("--count", type=int, required=True)
    hollow.add_argument("--prefix", default="hollow-")
    hollow.add_argument("--cpu", default="4")
    hollow.add_argument("--memory", default="8Gi")
    hollow.add_argument("--pods", type=int, default=110)
    hollow.add_argument("--zones", type=int, default=3)
    hollow.add_argument("--heartbeat-seconds", type=float, default=10.0)
    hollow.add_argument("--freeze", action="append", default=[], metavar="NAME",
                        help="register this node but never heartbeat it (repeatable)")
    hollow.set_defaults(func=run_hollow)


def run_hollow(args) -> int:
    from orchestrator.hollow.nodes import HollowNodes

    if not (1 <= args.count <= 5000 and args.zones >= 1 and args.heartbeat_seconds > 0):
        print("ketch hollow-nodes: --count 1..5000, --zones >= 1, --heartbeat-seconds > 0", file=sys.stderr)
        return 2
    return run_component("hollow-nodes", args.kubeconfig, lambda api: HollowNodes(
        api, args.count, args.prefix, args.cpu, args.memory, args.pods, args.zones, args.heartbeat_seconds,
        set(args.freeze)).run())
