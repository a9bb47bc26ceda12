"""Properties over random command logs: determinism, snapshot equivalence, bad input is inert."""

from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import StateMachine, snapshot
from kvstore import commands as c
from kvstore.errors import KVError
from tests.kvtools import Strict
from tests.stateful.test_kv_state_machine import garbage, keys, range_ends, txns, values

commands = st.one_of(
    st.builds(lambda k, v, lease: c.put(k, v, lease=lease), keys, values, st.sampled_from([0, 1, 2])),
    st.builds(c.delete_range, keys, range_ends),
    txns(),
    st.builds(c.compact, st.integers(1, 30)),
    st.builds(c.lease_grant, st.integers(1, 5), st.floats(0, 50, allow_nan=False)),
    st.builds(c.lease_keepalive, st.integers(1, 3), st.floats(0, 50, allow_nan=False)),
    st.builds(c.lease_expire, st.floats(0, 60, allow_nan=False)),
    st.builds(lambda cmd, seq: c.tagged(cmd, "cl", seq),
              st.builds(c.put, keys, values), st.integers(0, 5)),
    garbage,
)
logs = st.lists(commands, max_size=60)


def run(machine: StateMachine, log: list) -> list:
    strict = Strict(machine)
    return [strict.apply_safely(command) for command in log]


@settings(max_examples=200, deadline=None)
@given(logs)
def test_the_same_log_gives_the_same_state_and_answers(log):
    one, two = StateMachine(), StateMachine()
    assert run(one, log) == run(two, log)
    assert Strict(one).dump() == Strict(two).dump()


@settings(max_examples=200, deadline=None)
@given(logs, st.data())
def test_snapshot_then_restore_then_continue_equals_never_stopping(log, data):
    cut = data.draw(st.integers(0, len(log)))
    straight = StateMachine()
    answers = run(straight, log)
    first = StateMachine()
    early = run(first, log[:cut])
    restored = snapshot.load(Strict(first).dump())
    assert early + run(restored, log[cut:]) == answers
    assert Strict(restored).dump() == Strict(straight).dump()


@settings(max_examples=300, deadline=None)
@given(logs, garbage)
def test_bad_input_never_changes_state(log, bad):
    machine = StateMachine()
    run(machine, log)
    before = Strict(machine).dump()
    assert isinstance(Strict(machine).apply_safely(bad), KVError)
    assert Strict(machine).dump() == before
