"""`ketch pki init|node`."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    pki = subparsers.add_parser("pki", help="certificates, tokens and kubeconfigs for a lab")
    sub = pki.add_subparsers(dest="pki_command", metavar="COMMAND", required=True)
    init = sub.add_parser("init", help="CA, API server certificate, tokens.csv and one kubeconfig per role",
                          description="Either --config (everything a cluster file needs, under its dir/pki: "
                                      "copy that directory to every VM) or --dir and --server.")
    init.add_argument("--config", type=Path, help="a cluster file (cluster.toml)")
    init.add_argument("--dir", type=Path)
    init.add_argument("--server", help="https://HOST:PORT the kubeconfigs point at")
    node = sub.add_parser("node", help="a token, node-NAME.kubeconfig and the kubelet's serving certificate")
    node.add_argument("name")
    node.add_argument("--dir", type=Path, required=True)
    node.add_argument("--address", help="the node's IP address (for its kubelet's serving certificate)")
    pki.set_defaults(func=run_pki)


def run_pki(args) -> int:
    from orchestrator.lab.config import ConfigError
    from orchestrator.pki import certs
    try:
        if args.pki_command == "init" and args.config:
            from orchestrator.lab import config as cluster_config
            from orchestrator.lab.cluster_pki import init_cluster_pki
            for path in init_cluster_pki(cluster_config.load(args.config)):
                print(path)
        elif args.pki_command == "init":
            if not args.dir or not args.server:
                raise ValueError("give --config, or both --dir and --server")
            for path in certs.init(args.dir, args.server):
                print(path)
        else:
            print(certs.add_node(args.dir, args.name))
            if args.address:
                for path in certs.kubelet_serving(args.dir, args.name, args.address):
                    print(path)
    except (ValueError, OSError, ConfigError) as err:
        print(f"ketch pki: {err}", file=sys.stderr)
        return 2
    return 0
