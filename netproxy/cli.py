"""`ketch proxy`."""

from __future__ import annotations

import ipaddress
import os
import sys

from orchestrator.client.component import run_component


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("proxy", help="program the node's Service rules (kube-proxy)")
    parser.add_argument("--kubeconfig", help="required unless --cleanup")
    parser.add_argument("--node-name", default=None, help="this node's name (default: the host name)")
    parser.add_argument("--mode", choices=("nftables", "iptables", "userspace"), default="nftables")
    parser.add_argument("--cleanup", action="store_true", help="remove the rules of any earlier run and exit")
    parser.add_argument("--netns", default=None,
                        help="apply rules in this network namespace (default: the one the process runs in)")
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16",
                        help="pod addresses; traffic from elsewhere to a ClusterIP is masqueraded ('' for none)")
    parser.add_argument("--service-cidr", default="10.96.0.0/16", help="routed on nodes without a default route")
    parser.add_argument("--iptables-backend", choices=("auto", "nft", "legacy"), default="auto")
    parser.add_argument("--bind-address", default=None,
                        help="userspace mode: the address listeners open on (default 127.0.0.1)")
    parser.add_argument("--min-sync-interval", type=float, default=0.1, metavar="SECONDS")
    parser.add_argument("--sync-period", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--full-sync-period", type=float, default=3600.0, metavar="SECONDS")
    parser.add_argument("--healthz-timeout", type=float, default=None, metavar="SECONDS",
                        help="/healthz fails when the last sync is older (default: twice --sync-period)")
    parser.add_argument("--metrics-bind", default=None, help="HOST:PORT for /metrics and /healthz (off by default)")
    parser.set_defaults(func=run_proxy)


def config_from(args):
    from netproxy.proxy import ProxyConfig

    if args.cluster_cidr:
        ipaddress.IPv4Network(args.cluster_cidr)
    ipaddress.IPv4Network(args.service_cidr)
    if args.bind_address:
        ipaddress.IPv4Address(args.bind_address)
    if not (0 <= args.min_sync_interval <= 60 and 0 < args.sync_period <= 3600 and args.full_sync_period > 0):
        raise ValueError("--min-sync-interval 0..60, --sync-period 0..3600 and --full-sync-period > 0 seconds")
    return ProxyConfig(
        node_name=args.node_name or os.uname().nodename, mode=args.mode, netns=args.netns,
        cluster_cidr=args.cluster_cidr, service_cidr=args.service_cidr, min_sync_interval_s=args.min_sync_interval,
        sync_period_s=args.sync_period, full_sync_period_s=args.full_sync_period,
        healthz_timeout_s=args.healthz_timeout or 2 * args.sync_period, metrics_bind=args.metrics_bind,
        bind_address=args.bind_address, iptables_backend=args.iptables_backend)


def run_proxy(args) -> int:
    from netproxy.model import ProxyError
    from netproxy.proxy import Proxy, cleanup

    if args.cleanup:
        try:
            removed = cleanup(args.netns)
        except ProxyError as err:
            print(f"ketch proxy --cleanup: {err}", file=sys.stderr)
            return 1
        print(f"removed: {', '.join(removed) or 'nothing (no rules of ours)'}")
        return 0
    if not args.kubeconfig:
        print("ketch proxy: --kubeconfig is required (unless --cleanup)", file=sys.stderr)
        return 2
    try:
        config = config_from(args)
    except ValueError as err:
        print(f"ketch proxy: {err}", file=sys.stderr)
        return 2
    if config.mode != "userspace" and os.geteuid() != 0:
        print(f"ketch proxy: --mode {config.mode} needs root (use --mode userspace)", file=sys.stderr)
        return 2
    return run_component("proxy", args.kubeconfig, lambda api: Proxy(api, config).run())
