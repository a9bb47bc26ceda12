"""`ketch cloud-controller-manager`."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.client.component import run_component


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("cloud-controller-manager",
                                   help="the lab cloud controller: LoadBalancer addresses, node zones, removed hosts")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--config", type=Path, required=True, help="the lab's cluster file (hosts, lb_pool)")
    parser.add_argument("--metrics-bind", default=None)
    parser.add_argument("--identity", default=None)
    parser.set_defaults(func=run_cloud)


def run_cloud(args) -> int:
    from orchestrator.cloud.controller import CloudController
    from orchestrator.lab import config as cluster_config
    try:
        cluster_config.load(args.config)
    except cluster_config.ConfigError as err:
        print(f"ketch cloud-controller-manager: {err}", file=sys.stderr)
        return 2
    return run_component("cloud-controller-manager", args.kubeconfig,
                         lambda api: CloudController(api, args.config, args.identity).run(args.metrics_bind))
