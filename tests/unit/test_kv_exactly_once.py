"""Exactly-once writes: (client_id, seq) applied once, bounded and deterministic."""

from kvstore import StateMachine, sessions
from kvstore import commands as c
from tests.kvtools import fails, get


def test_a_retried_write_is_applied_once_and_answers_the_first_result():
    sm = StateMachine()
    first = sm.apply(c.tagged(c.put(b"a", b"1", prev_kv=True), b"client-1", 1))
    sm.apply(c.put(b"other", b"x"))
    again = sm.apply(c.tagged(c.put(b"a", b"1", prev_kv=True), b"client-1", 1))
    assert again == first
    assert get(sm, b"a")["version"] == 1 and sm.revision == 3


def test_a_retried_txn_is_not_applied_twice():
    sm = StateMachine()
    cas = c.txn([c.compare(b"n", "version", "=", 0)], [c.put(b"n", b"1")], [c.put(b"n", b"again")])
    assert sm.apply(c.tagged(cas, "c", 7))["succeeded"]
    assert sm.apply(c.tagged(cas, "c", 7))["succeeded"]
    assert get(sm, b"n")["value"] == b"1"


def test_different_clients_and_seqs_are_independent():
    sm = StateMachine()
    sm.apply(c.tagged(c.put(b"a", b"1"), b"x", 1))
    sm.apply(c.tagged(c.put(b"a", b"2"), b"y", 1))
    sm.apply(c.tagged(c.put(b"a", b"3"), b"x", 2))
    assert get(sm, b"a")["version"] == 3


def test_failed_writes_are_not_recorded_and_can_be_retried():
    sm = StateMachine()
    fails(sm, c.tagged(c.put(b"a", b"1", lease=5), b"x", 1), "LEASE_NOT_FOUND")
    sm.apply(c.lease_grant(10, now=0, lease_id=5))
    sm.apply(c.tagged(c.put(b"a", b"1", lease=5), b"x", 1))
    assert get(sm, b"a")["lease"] == 5


def test_only_the_last_window_of_seqs_is_remembered():
    sm = StateMachine()
    window = sessions.MAX_RESULTS_PER_CLIENT
    for seq in range(window + 1):
        sm.apply(c.tagged(c.put(b"k", b"%d" % seq), b"x", seq))
    err = fails(sm, c.tagged(c.put(b"k", b"0"), b"x", 0), "INVALID_ARGUMENT")
    assert "outcome is unknown" in err.message and err.details["outcome_unknown"] is True
    version = get(sm, b"k")["version"]
    sm.apply(c.tagged(c.put(b"k", b"1"), b"x", 1))  # still remembered
    assert get(sm, b"k")["version"] == version


def test_least_recently_writing_client_is_forgotten_first(monkeypatch):
    monkeypatch.setattr(sessions, "MAX_CLIENTS", 2)
    sm = StateMachine()
    for client in (b"a", b"b"):
        sm.apply(c.tagged(c.put(b"k", client), client, 1))
    sm.apply(c.tagged(c.put(b"k", b"a2"), b"a", 2))  # a is now the most recent
    sm.apply(c.tagged(c.put(b"k", b"c"), b"c", 1))   # evicts b
    assert list(sm.sessions.clients) == [b"a", b"c"]


def test_reads_may_not_carry_a_session_tag():
    fails(StateMachine(), c.tagged(c.range_(b"a"), b"x", 1), "INVALID_ARGUMENT")
