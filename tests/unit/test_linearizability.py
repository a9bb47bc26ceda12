"""The linearizability checker: known answers, hand-made corner cases, formats, budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.lab import history as histories
from orchestrator.lab import linearizability as lin
from orchestrator.lab.history import json_row as jrow
from orchestrator.lab.simulate import simulated_register_history

TESTDATA = Path(os.environ.get("KETCH_TESTDATA") or
                Path(__file__).resolve().parents[2].parent / "shared" / "testdata") / "porcupine-kv"


def verdict(text: str, model=lin.REGISTER, budget: int = 2_000_000) -> lin.Verdict:
    return lin.check(histories.operations(histories.parse_history(text.strip().splitlines())), model, budget).verdict


@pytest.mark.skipif(not TESTDATA.exists(), reason=f"no porcupine test data at {TESTDATA}")
@pytest.mark.parametrize("name", ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"])
def test_porcupine_kv_histories_get_their_known_verdicts(name):
    events = histories.parse_history((TESTDATA / f"{name}.txt").read_text().splitlines())
    result = lin.check(histories.operations(events), histories.guess_model(events))
    expected = lin.Verdict.LINEARIZABLE if name.endswith("-ok") else lin.Verdict.NOT_LINEARIZABLE
    assert result.verdict is expected


# Hand-made register histories (JSON lines; times from line order unless given).
CASES = {
    "sequential write then read": ([
        jrow(0, "invoke", "write", 1), jrow(0, "ok", "write", 1),
        jrow(1, "invoke", "read"), jrow(1, "ok", "read", 1)], True),
    "read sees a stale value after the write returned": ([
        jrow(0, "invoke", "write", 1), jrow(0, "ok", "write", 1),
        jrow(0, "invoke", "write", 2), jrow(0, "ok", "write", 2),
        jrow(1, "invoke", "read"), jrow(1, "ok", "read", 1)], False),
    "concurrent writes, reads agree on one order": ([
        jrow(0, "invoke", "write", 1), jrow(1, "invoke", "write", 2),
        jrow(0, "ok", "write", 1), jrow(1, "ok", "write", 2),
        jrow(2, "invoke", "read"), jrow(2, "ok", "read", 1),
        jrow(3, "invoke", "read"), jrow(3, "ok", "read", 1)], True),
    "concurrent writes, later reads flip back": ([
        jrow(0, "invoke", "write", 1), jrow(1, "invoke", "write", 2),
        jrow(0, "ok", "write", 1), jrow(1, "ok", "write", 2),
        jrow(2, "invoke", "read"), jrow(2, "ok", "read", 1),
        jrow(3, "invoke", "read"), jrow(3, "ok", "read", 2),
        jrow(2, "invoke", "read"), jrow(2, "ok", "read", 1)], False),
    "a read overlapping a write may see either value": ([
        jrow(0, "invoke", "write", 1), jrow(0, "ok", "write", 1),
        jrow(0, "invoke", "write", 2), jrow(1, "invoke", "read"), jrow(1, "ok", "read", 1),
        jrow(0, "ok", "write", 2)], True),
    "a failed cas did not happen": ([
        jrow(0, "invoke", "write", 1), jrow(0, "ok", "write", 1),
        jrow(1, "invoke", "cas", [1, 5]), jrow(1, "fail", "cas", [1, 5]),
        jrow(2, "invoke", "read"), jrow(2, "ok", "read", 1)], True),
    "a successful cas needs its expected value": ([
        jrow(0, "invoke", "write", 1), jrow(0, "ok", "write", 1),
        jrow(1, "invoke", "cas", [2, 5]), jrow(1, "ok", "cas", [2, 5])], False),
    "an unknown write may have happened (it was read)": ([
        jrow(0, "invoke", "write", 7), jrow(0, "info", "write", 7),
        jrow(1, "invoke", "read"), jrow(1, "ok", "read", 7)], True),
    "an unknown write may never have happened": ([
        jrow(0, "invoke", "write", 1), jrow(0, "ok", "write", 1),
        jrow(1, "invoke", "write", 7), jrow(1, "info", "write", 7),
        jrow(2, "invoke", "read"), jrow(2, "ok", "read", 1)], True),
    "an unknown write cannot take effect before it was invoked": ([
        jrow(2, "invoke", "read"), jrow(2, "ok", "read", 7),
        jrow(1, "invoke", "write", 7), jrow(1, "info", "write", 7)], False),
    "an invoke with no completion is unknown": ([
        jrow(1, "invoke", "write", 7),
        jrow(2, "invoke", "read"), jrow(2, "ok", "read", 7)], True),
    "a read of a value never written": ([
        jrow(0, "invoke", "write", 1), jrow(0, "ok", "write", 1),
        jrow(1, "invoke", "read"), jrow(1, "ok", "read", 99)], False),
    "the initial value is nil": ([
        jrow(1, "invoke", "read"), jrow(1, "ok", "read", None)], True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_register_corner_cases(name):
    lines, linearizable = CASES[name]
    expected = lin.Verdict.LINEARIZABLE if linearizable else lin.Verdict.NOT_LINEARIZABLE
    assert verdict("\n".join(lines)) is expected


def test_explicit_times_decide_real_time_order():
    overlapping = [jrow(0, "invoke", "write", 1, time=0), jrow(1, "invoke", "read", time=1),
                   jrow(1, "ok", "read", None, time=2), jrow(0, "ok", "write", 1, time=3)]
    assert verdict("\n".join(overlapping)) is lin.Verdict.LINEARIZABLE
    before = [jrow(0, "invoke", "write", 1, time=0), jrow(0, "ok", "write", 1, time=1),
              jrow(1, "invoke", "read", time=2), jrow(1, "ok", "read", None, time=3)]
    assert verdict("\n".join(before)) is lin.Verdict.NOT_LINEARIZABLE


JEPSEN_LOG = """
INFO  jepsen.util - 3	:invoke	:write	1
INFO  jepsen.util - 3	:ok	:write	1
INFO  jepsen.core - some other log line
INFO  jepsen.util - 4	:invoke	:cas	[1 4]
INFO  jepsen.util - 2	:invoke	:read	nil
INFO  jepsen.util - 4	:ok	:cas	[1 4]
INFO  jepsen.util - 2	:fail	:read	:timed-out
INFO  jepsen.util - 1	:invoke	:read	nil
INFO  jepsen.util - 1	:ok	:read	4
INFO  jepsen.util - 3	:invoke	:cas	[1 4]
INFO  jepsen.util - 3	:fail	:cas	[1 4]
"""


def test_jepsen_register_logs_are_read():
    events = histories.parse_history(JEPSEN_LOG.strip().splitlines())
    assert len(events) == 10
    ops = histories.operations(events)
    assert [op.f for op in ops] == ["write", "cas", "read"]  # the failed read and cas are dropped
    assert lin.check(ops, lin.REGISTER).verdict is lin.Verdict.LINEARIZABLE
    stale = JEPSEN_LOG.replace("1	:ok	:read	4", "1	:ok	:read	1")
    assert verdict(stale) is lin.Verdict.NOT_LINEARIZABLE


def test_kv_model_checks_keys_independently():
    history = [jrow(0, "invoke", "append", "a", key="x"), jrow(0, "ok", "append", "a", key="x"),
               jrow(1, "invoke", "append", "b", key="y"), jrow(1, "ok", "append", "b", key="y"),
               jrow(2, "invoke", "get", key="x"), jrow(2, "ok", "get", "a", key="x"),
               jrow(2, "invoke", "get", key="y"), jrow(2, "ok", "get", "", key="y")]
    result = lin.check(histories.operations(histories.parse_history(history)), lin.KV)
    assert result.verdict is lin.Verdict.NOT_LINEARIZABLE and result.key == "y"
    assert "No order can include" in result.explanation


def test_an_exhausted_budget_is_unknown_never_a_guess():
    lines, _ = CASES["concurrent writes, later reads flip back"]
    assert verdict("\n".join(lines), budget=3) is lin.Verdict.UNKNOWN


@pytest.mark.parametrize("bad,reason", [
    ('{"process": 0, "type": "invoke"}', "line 1"),
    ('{"process": 0, "type": "begin", "f": "read"}', "unknown event type"),
    ('{:process 0, :type :invoke, :f :read, :value @x}', "line 1"),
])
def test_unreadable_lines_name_their_line(bad, reason):
    with pytest.raises(histories.HistoryError) as info:
        histories.parse_history([bad], "auto" if not bad.startswith("{:") else "edn")
    assert reason in str(info.value)


def test_completions_without_invokes_are_errors():
    with pytest.raises(histories.HistoryError):
        histories.operations(histories.parse_history([jrow(0, "ok", "read", 1)]))


def test_a_10000_operation_register_history_with_10_clients():
    history = simulated_register_history(10_000, 10, seed=7)
    assert verdict("\n".join(history)) is lin.Verdict.LINEARIZABLE
