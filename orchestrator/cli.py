"""The `ketch` command. Subcommands arrive with the parts they drive (see README's status table)."""

from __future__ import annotations

import argparse
import sys

from kvstore.cli import add_kv_parser, run_kv
from orchestrator import __version__
from orchestrator.apiserver.cli import add_apiserver_parsers, run_apiserver, run_pki
from orchestrator.lab.chaos_cli import add_chaos_parser, run_chaos
from orchestrator.lab.check_cli import add_check_parser, run_check
from orchestrator.controllers.manager import add_manager_parser, run_manager
from orchestrator.hollow import add_hollow_parser, run_hollow
from orchestrator.scheduler.scheduler import add_scheduler_parser, run_scheduler
from orchestrator.up_cli import add_up_parser, run_up


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ketch",
        description="Ketch: a small, real Kubernetes in Python for lab clusters.",
        epilog="Parts not built yet have no subcommand; the README's status table says what works.",
    )
    parser.add_argument("--version", action="version", version=f"ketch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_kv_parser(subparsers)
    add_check_parser(subparsers)
    add_chaos_parser(subparsers)
    add_apiserver_parsers(subparsers)
    add_up_parser(subparsers)
    add_scheduler_parser(subparsers)
    add_manager_parser(subparsers)
    add_hollow_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "kv":
        return run_kv(args)
    if args.command == "check":
        return run_check(args)
    if args.command == "chaos":
        return run_chaos(args)
    if args.command == "apiserver":
        return run_apiserver(args)
    if args.command == "pki":
        return run_pki(args)
    if args.command == "up":
        return run_up(args)
    if args.command == "scheduler":
        return run_scheduler(args)
    if args.command == "controller-manager":
        return run_manager(args)
    if args.command == "hollow-nodes":
        return run_hollow(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
