"""Reading concurrent histories for the linearizability checker (pure).

Inputs (`parse_history`): Jepsen register logs, Jepsen/EDN maps (one per line), and our JSON
lines: {"process": 0, "type": "invoke"|"ok"|"fail"|"info", "f": "read"|"write"|"cas"|"get"|
"put"|"append", ["key": "k"], "value": ..., ["time": seconds]}. Without times, line order is time.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from orchestrator.lab.linearizability import (
    KV,
    REGISTER,
    UNKNOWN_OUTPUT,
    Model,
    Operation,
)


@dataclass
class Event:
    process: Any
    type: str  # invoke | ok | fail | info
    f: str
    key: Any
    value: Any
    time: float


_JEPSEN_LOG = re.compile(r"^\S+\s+jepsen\.util\s+-\s+(\S+)\s+:(\w+)\s+:(\w+)\s*(.*?)\s*$")
_EDN_FIELD = re.compile(r':(\w[\w-]*)\s+("(?:[^"\\]|\\.)*"|\[[^\]]*\]|:[\w-]+|nil|-?\d+(?:\.\d+)?)')


class HistoryError(ValueError):
    """A history line that cannot be read; the message names the line."""


def _edn_value(text: str) -> Any:
    if text == "nil":
        return None
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith(":"):
        return text[1:]
    if text.startswith("["):
        return [_edn_value(t) for t in text[1:-1].split()]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    raise ValueError(f"unknown value {text!r}")


def _parse_line(line: str, number: int, fmt: str) -> Event | None:
    text = line.strip()
    if not text:
        return None
    if fmt == "json" or (fmt == "auto" and text.startswith("{\"")):
        raw = json.loads(text)
        return Event(raw["process"], raw["type"], raw["f"], raw.get("key"), raw.get("value"),
                     float(raw.get("time", number)))
    if fmt in ("edn", "auto") and text.startswith("{:"):
        if _EDN_FIELD.sub("", text).strip("{} ,\t") or not text.endswith("}"):
            raise ValueError("an EDN map of :field value pairs was expected")
        fields = {name: _edn_value(value) for name, value in _EDN_FIELD.findall(text)}
        return Event(fields["process"], fields["type"], fields["f"], fields.get("key"), fields.get("value"),
                     float(fields.get("time", number)))
    match = _JEPSEN_LOG.match(text)
    if match and fmt in ("jepsen", "auto"):
        process, kind, f, value = match.groups()
        parsed = _edn_value(value) if value else None
        return Event(int(process) if process.isdigit() else process, kind, f, None, parsed, float(number))
    if fmt in ("jepsen", "auto"):
        return None  # other log lines in a Jepsen log
    raise ValueError("not a history line")


def parse_history(lines: Iterable[str], fmt: str = "auto") -> list[Event]:
    events = []
    for number, line in enumerate(lines, 1):
        try:
            event = _parse_line(line, number, fmt)
        except (ValueError, KeyError, TypeError) as err:
            raise HistoryError(f"line {number}: {err}: {line.strip()[:120]}") from None
        if event is not None:
            if event.type not in ("invoke", "ok", "fail", "info"):
                raise HistoryError(f"line {number}: unknown event type {event.type!r}")
            events.append(event)
    return events


def operations(events: list[Event]) -> list[Operation]:
    """Pair each invoke with its process's next completion. `fail` ops did not happen and are
    dropped; a `fail` read that timed out is unknown (Jepsen's `:fail :read :timed-out`) and
    dropped too (reads change nothing); `info` or a missing completion: outcome unknown."""
    pending: dict[Any, tuple[int, Event]] = {}
    ops: list[Operation] = []
    for index, event in enumerate(events):
        if event.type == "invoke":
            if event.process in pending:
                raise HistoryError(f"process {event.process} invoked twice without a completion "
                                   f"(event {index + 1})")
            pending[event.process] = (index, event)
            continue
        if event.process not in pending:
            raise HistoryError(f"process {event.process} completed an op it never invoked (event {index + 1})")
        start_index, invoke = pending.pop(event.process)
        if event.type == "fail":
            continue
        if event.type == "info":
            output, ret = UNKNOWN_OUTPUT, math.inf
        else:
            output, ret = event.value, event.time
        value = _op_input(invoke)
        if invoke.f == "get" and output is None:
            output = ""  # the kv model's missing key reads as the empty string
        ops.append(Operation(invoke.process, invoke.f, invoke.key, value, output, invoke.time, ret, start_index))
    for start_index, invoke in pending.values():
        ops.append(Operation(invoke.process, invoke.f, invoke.key, _op_input(invoke), UNKNOWN_OUTPUT,
                             invoke.time, math.inf, start_index))
    return ops


def _op_input(invoke: Event):
    """What the model gets as the op's input: nothing for reads, a hashable pair for cas."""
    if invoke.f in ("read", "get"):
        return None
    if invoke.f == "cas" and isinstance(invoke.value, list):
        return tuple(invoke.value)
    return invoke.value


def guess_model(events: list[Event]) -> Model:
    return KV if any(e.f in ("get", "put", "append") for e in events) else REGISTER


def json_row(process, kind: str, f: str, value=None, key=None, time: float | None = None) -> str:
    """One event as a line of our JSON history format."""
    row = {"process": process, "type": kind, "f": f, "value": value}
    if key is not None:
        row["key"] = key
    if time is not None:
        row["time"] = time
    return json.dumps(row)
