"""Linearizability checking of concurrent histories (pure): Wing & Gong / Lowe search with
memoization, as in Knossos and Porcupine, and P-compositionality for key-value maps.

Theory of operation:
- A history is a set of operations, each with a client, an input, an output and a time window
  [call, return]. It is linearizable if there is one order of the operations that respects
  real time (an op that returned before another was called comes first) and in which each
  operation's output is what the sequential model would answer.
- Outcomes: `ok` ops happened with the output shown. `fail` ops did not happen: they are
  dropped. `info` ops, and invokes with no completion, may or may not have happened, at any
  time after their call: their return is placed at +infinity and the search may leave them
  out. Reads with an unknown outcome change nothing and are dropped.
- Search (Lowe's refinement of Wing & Gong): walk the time-ordered list of call and return
  entries; at a call, try to linearize that op now (the model must accept its output);
  at a return of an op not yet linearized, undo the last choice. A cache of (linearized set,
  model state) pairs cuts every branch already explored (Porcupine's memoization).
- P-compositionality: the key-value model is checked key by key; the history is
  linearizable iff every key's is.
- A search budget bounds the work. When it runs out, the verdict is UNKNOWN, never a guess.

Histories are read by `orchestrator.lab.history` (Jepsen logs, EDN, JSON lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Hashable

UNKNOWN_OUTPUT = object()  # the op's outcome is unknown (info / no completion)


class Verdict(str, Enum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Operation:
    client: Any
    f: str
    key: Any
    input: Any
    output: Any
    call: float
    ret: float  # math.inf when the outcome is unknown
    index: int = 0  # position in the history, for reports

    @property
    def unknown(self) -> bool:
        return self.output is UNKNOWN_OUTPUT

    def describe(self) -> str:
        value = self.input if self.f != "read" and self.f != "get" else self.output
        shown = "?" if value is UNKNOWN_OUTPUT else repr(value)
        key = f" {self.key!r}" if self.key is not None else ""
        end = "∞" if math.isinf(self.ret) else f"{self.ret:g}"
        return f"client {self.client} {self.f}{key} {shown} [{self.call:g}, {end}]"


# --- models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    name: str
    init: Callable[[], Hashable]
    step: Callable[[Hashable, Operation], tuple[bool, Hashable]]
    partition: Callable[[list[Operation]], dict[Any, list[Operation]]]


def _register_step(state, op: Operation):
    if op.f == "read":
        return op.output == state, state
    if op.f == "write":
        return True, op.input
    if op.f == "cas":
        expected, new = op.input
        return (True, new) if state == expected else (False, state)
    raise ValueError(f"the register model has no operation {op.f!r}")


def _kv_step(state, op: Operation):
    if op.f == "get":
        return op.output == state, state
    if op.f == "put":
        return True, op.input
    if op.f == "append":
        return True, state + op.input
    raise ValueError(f"the kv model has no operation {op.f!r}")


def _by_key(ops: list[Operation]) -> dict[Any, list[Operation]]:
    parts: dict[Any, list[Operation]] = {}
    for op in ops:
        parts.setdefault(op.key, []).append(op)
    return parts


REGISTER = Model("register", lambda: None, _register_step, _by_key)
KV = Model("kv", lambda: "", _kv_step, _by_key)
MODELS = {"register": REGISTER, "kv": KV}


# --- the search -----------------------------------------------------------------------------


@dataclass
class Result:
    verdict: Verdict
    key: Any = None
    explanation: str = ""
    steps: int = 0
    per_key: dict[Any, Verdict] = field(default_factory=dict)


class _Entry:
    __slots__ = ("op", "is_call", "prev", "next", "match", "bit", "unknown_return")

    def __init__(self, op: Operation | None, is_call: bool, op_id: int) -> None:
        self.op, self.is_call = op, is_call
        self.bit = 1 << op_id if op_id >= 0 else 0
        self.unknown_return = op is not None and not is_call and math.isinf(op.ret)
        self.prev = self.next = self.match = None


def _entry_list(ops: list[Operation]) -> _Entry:
    events = []
    for i, op in enumerate(ops):
        call, ret = _Entry(op, True, i), _Entry(op, False, i)
        call.match = ret
        events.append((op.call, 0, i, call))
        events.append((op.ret, 1, i, ret))  # at equal times calls come first: ops overlap
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, False, -1)
    last = head
    for *_, entry in events:
        last.next, entry.prev = entry, last
        last = entry
    return head


def _lift(entry: _Entry) -> None:
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    match = entry.match
    match.prev.next = match.next
    if match.next is not None:
        match.next.prev = match.prev


def _unlift(entry: _Entry) -> None:
    match = entry.match
    match.prev.next = match
    if match.next is not None:
        match.next.prev = match
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


def check_operations(ops: list[Operation], model: Model, budget: int = 2_000_000) -> Result:
    """Check one partition (e.g. one key). `budget` bounds the search steps."""
    ops = [op for op in ops if not (op.unknown and op.f in ("read", "get"))]
    head = _entry_list(ops)
    state = model.init()
    linearized = 0
    cache: set[tuple[int, Hashable]] = set()
    stack: list[tuple[_Entry, Hashable]] = []
    best: list[Operation] = []
    step = model.step
    entry = head.next
    steps = 0
    while entry is not None:
        steps += 1
        if steps > budget:
            return Result(Verdict.UNKNOWN, steps=steps,
                          explanation=f"search budget of {budget} steps exhausted; no verdict")
        if entry.is_call:
            ok, new_state = step(state, entry.op)
            if ok:
                new_linearized = linearized | entry.bit
                memo = (new_linearized, new_state)
                if memo not in cache:
                    cache.add(memo)
                    stack.append((entry, state))
                    state, linearized = new_state, new_linearized
                    _lift(entry)
                    if len(stack) > len(best):
                        best = [e.op for e, _ in stack]
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if entry.unknown_return:
                # Only ops of unknown outcome remain unlinearized: they may never have happened.
                return Result(Verdict.LINEARIZABLE, steps=steps)
            if not stack:
                return Result(Verdict.NOT_LINEARIZABLE, steps=steps,
                              explanation=_explain(ops, best, model))
            entry, state = stack.pop()
            linearized &= ~entry.bit
            _unlift(entry)
            entry = entry.next
    return Result(Verdict.LINEARIZABLE, steps=steps)


def _explain(ops: list[Operation], best: list[Operation], model: Model) -> str:
    """The longest order found, and the first op that could not follow it, with its rivals."""
    placed = set(id(op) for op in best)
    stuck = min((op for op in ops if id(op) not in placed and not op.unknown),
                key=lambda op: op.ret, default=None)
    state = model.init()
    lines = [f"The longest valid order found places {len(best)} of {len(ops)} operations:"]
    for op in best[-8:] if len(best) > 8 else best:
        _, state_after = model.step(state, op)
        lines.append(f"  {op.describe()}  -> state {state_after!r}")
        state = state_after
    if len(best) > 8:
        lines.insert(1, f"  ... ({len(best) - 8} earlier operations)")
        state = _replay(model, best)
    if stuck is not None:
        lines.append(f"No order can include, before it returned at {stuck.ret:g}:")
        lines.append(f"  {stuck.describe()}")
        lines.append(f"  (the model's state there is {state!r}; this output does not follow from any "
                     f"order of the operations concurrent with it)")
        rivals = [op for op in ops if op is not stuck and op.call <= stuck.ret and op.ret >= stuck.call]
        if rivals:
            lines.append("Operations concurrent with it:")
            lines += [f"  {op.describe()}" for op in sorted(rivals, key=lambda o: o.call)[:12]]
    return "\n".join(lines)


def _replay(model: Model, ops: list[Operation]):
    state = model.init()
    for op in ops:
        _, state = model.step(state, op)
    return state


def check(ops: list[Operation], model: Model, budget: int = 2_000_000) -> Result:
    """Check a whole history, partition by partition (P-compositionality)."""
    total_steps = 0
    per_key: dict[Any, Verdict] = {}
    unknown: Result | None = None
    for key, part in sorted(model.partition(ops).items(), key=lambda kv: str(kv[0])):
        result = check_operations(part, model, budget)
        total_steps += result.steps
        per_key[key] = result.verdict
        if result.verdict is Verdict.NOT_LINEARIZABLE:
            return Result(Verdict.NOT_LINEARIZABLE, key, result.explanation, total_steps, per_key)
        if result.verdict is Verdict.UNKNOWN and unknown is None:
            unknown = Result(Verdict.UNKNOWN, key, result.explanation, 0, per_key)
    if unknown is not None:
        unknown.steps = total_steps
        return unknown
    return Result(Verdict.LINEARIZABLE, steps=total_steps, per_key=per_key)
