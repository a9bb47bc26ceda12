"""The lab's commands: `ketch up|down|status|logs|node|lab`, `ketch chaos`, `ketch check`."""

from __future__ import annotations

from orchestrator.lab.chaos_command import add_chaos_parser
from orchestrator.lab.check import add_check_parser
from orchestrator.lab.up import add_lab_parser, add_up_parser


def add_parser(subparsers) -> None:
    add_up_parser(subparsers)
    add_lab_parser(subparsers)
    add_chaos_parser(subparsers)
    add_check_parser(subparsers)
