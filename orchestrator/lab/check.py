"""`ketch check HISTORY`: is a recorded history linearizable? Exit 0 yes, 1 no, 2 unknown or bad input."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.lab import history
from orchestrator.lab import linearizability as lin


def add_check_parser(subparsers) -> None:
    check = subparsers.add_parser(
        "check", help="check a history for linearizability (Jepsen log, EDN maps or JSON lines)",
        description="Decide whether a concurrent history is linearizable. Exit status: 0 linearizable, "
                    "1 not linearizable, 2 unknown (search budget exhausted) or unreadable input.")
    check.add_argument("history", help="the history file (- for stdin)")
    check.add_argument("--model", choices=sorted(lin.MODELS), help="default: kv if the history has get/put/append")
    check.add_argument("--format", choices=["auto", "jepsen", "edn", "json"], default="auto")
    check.add_argument("--budget", type=int, default=2_000_000, help="search steps per key before giving up")
    check.add_argument("--html", type=Path, help="also write a timeline of the history (and the culprit) here")
    check.set_defaults(func=run_check)


def run_check(args) -> int:
    try:
        lines = sys.stdin if args.history == "-" else open(args.history, encoding="utf-8")
        with lines:
            events = history.parse_history(lines, args.format)
        ops = history.operations(events)
    except OSError as err:
        print(f"ketch check: cannot read {args.history}: {err.strerror}", file=sys.stderr)
        return 2
    except history.HistoryError as err:
        print(f"ketch check: {args.history}: {err}", file=sys.stderr)
        return 2
    model = lin.MODELS[args.model] if args.model else history.guess_model(events)
    try:
        result = lin.check(ops, model, args.budget)
    except ValueError as err:  # an operation the model does not know
        print(f"ketch check: {err}", file=sys.stderr)
        return 2
    unknown = sum(op.unknown for op in ops)
    print(f"{len(ops)} operations ({unknown} of unknown outcome), model {model.name}, "
          f"{len(result.per_key) or 1} partition(s), {result.steps} search steps")
    if args.html:
        from orchestrator.lab.timeline import write_timeline
        write_timeline(args.html, ops, result)
        print(f"timeline: {args.html}")
    if result.verdict is lin.Verdict.LINEARIZABLE:
        print("verdict: linearizable")
        return 0
    where = f" (key {result.key!r})" if result.key is not None else ""
    print(f"verdict: {result.verdict.value}{where}")
    if result.explanation:
        print(result.explanation)
    return 1 if result.verdict is lin.Verdict.NOT_LINEARIZABLE else 2
