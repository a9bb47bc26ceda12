"""`ketch controller-manager`."""

from __future__ import annotations

import ipaddress
import sys

from orchestrator.client.component import run_component


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("controller-manager", help="run the controllers")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16")
    parser.add_argument("--node-cidr-mask", type=int, default=24)
    parser.add_argument("--node-monitor-grace-seconds", type=float, default=8.0)
    parser.add_argument("--pod-eviction-seconds", type=float, default=10.0,
                        help="how long pods without a toleration stay on an unreachable node (Kubernetes: 300)")
    parser.add_argument("--local-path-root", default="/var/lib/ketch/local-path",
                        help="where the local-path StorageClass puts volumes on each node")
    parser.add_argument("--horizontal-pod-autoscaler-sync-seconds", type=float, default=15.0)
    parser.add_argument("--metrics-bind", default=None)
    parser.add_argument("--identity", default=None)
    parser.set_defaults(func=run_manager)


def run_manager(args) -> int:
    from orchestrator.controllers.manager import ControllerManager

    try:
        ipaddress.IPv4Network(args.cluster_cidr)
        if not 8 <= args.node_cidr_mask <= 30:
            raise ValueError("--node-cidr-mask must be 8..30")
        if not args.local_path_root.startswith("/"):
            raise ValueError("--local-path-root must be an absolute path")
        if not args.horizontal_pod_autoscaler_sync_seconds > 0:
            raise ValueError("--horizontal-pod-autoscaler-sync-seconds must be above 0")
    except ValueError as err:
        print(f"ketch controller-manager: {err}", file=sys.stderr)
        return 2
    return run_component("controller-manager", args.kubeconfig, lambda api: ControllerManager(
        api, cluster_cidr=args.cluster_cidr, node_cidr_mask=args.node_cidr_mask,
        grace_s=args.node_monitor_grace_seconds, eviction_s=args.pod_eviction_seconds,
        identity=args.identity, local_path_root=args.local_path_root,
        hpa_sync_s=args.horizontal_pod_autoscaler_sync_seconds).run(args.metrics_bind))
