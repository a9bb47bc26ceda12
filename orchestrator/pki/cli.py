"""`ketch pki init|node`."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    pki = subparsers.add_parser("pki", help="certificates, tokens and kubeconfigs for a lab")
    sub = pki.add_subparsers(dest="pki_command", metavar="COMMAND", required=True)
    init = sub.add_parser("init", help="CA, API server certificate, tokens.csv and one kubeconfig per role")
    init.add_argument("--dir", type=Path, required=True)
    init.add_argument("--server", required=True, help="https://HOST:PORT the kubeconfigs point at")
    node = sub.add_parser("node", help="a token and node-NAME.kubeconfig for one node")
    node.add_argument("name")
    node.add_argument("--dir", type=Path, required=True)
    pki.set_defaults(func=run_pki)


def run_pki(args) -> int:
    from orchestrator.pki import certs
    try:
        if args.pki_command == "init":
            for path in certs.init(args.dir, args.server):
                print(path)
        else:
            print(certs.add_node(args.dir, args.name))
    except (ValueError, OSError) as err:
        print(f"ketch pki: {err}", file=sys.stderr)
        return 2
    return 0
