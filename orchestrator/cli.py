"""The `ketch` command. Each package brings its subcommands through its cli.py's `add_parser`;
this module only lists the packages, in the order `ketch --help` shows them."""

from __future__ import annotations

import argparse
import sys

from kvstore import cli as kv_cli
from netproxy import cli as proxy_cli
from netproxy.dns import cli as dns_cli
from orchestrator import __version__
from orchestrator.apiserver import cli as apiserver_cli
from orchestrator.cloud import cli as cloud_cli
from orchestrator.controllers import cli as controllers_cli
from orchestrator.hollow import cli as hollow_cli
from orchestrator.kubelet import cli as kubelet_cli
from orchestrator.lab import cli as lab_cli
from orchestrator.pki import cli as pki_cli
from orchestrator.scheduler import cli as scheduler_cli

PACKAGES = (kv_cli, lab_cli, pki_cli, apiserver_cli, scheduler_cli, controllers_cli, cloud_cli, hollow_cli,
            kubelet_cli, proxy_cli, dns_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ketch",
        description="Ketch: a small, real Kubernetes in Python for lab clusters.",
        epilog="Parts not built yet have no subcommand; the README's status table says what works.",
    )
    parser.add_argument("--version", action="version", version=f"ketch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for package in PACKAGES:
        package.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
