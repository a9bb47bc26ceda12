"""Transactions: compares, branches, nesting, one revision, etcd's duplicate-key rule."""

import pytest

from kvstore import StateMachine
from kvstore import commands as c
from tests.kvtools import fails, filled, get

# key "a": value b"5", create_revision 2, mod_revision 3, version 2, lease 0
COMPARE_TABLE = [
    ("value", "=", b"5", True), ("value", "!=", b"5", False),
    ("value", "<", b"6", True), ("value", ">", b"4", True), ("value", ">", b"5", False),
    ("version", "=", 2, True), ("version", "<", 2, False), ("version", ">", 1, True),
    ("create_revision", "=", 2, True), ("create_revision", "!=", 2, False),
    ("mod_revision", "=", 3, True), ("mod_revision", "<", 4, True), ("mod_revision", ">", 3, False),
    ("lease", "=", 0, True), ("lease", ">", 0, False),
]


@pytest.mark.parametrize("target,result,value,holds", COMPARE_TABLE)
def test_compare_on_an_existing_key(target, result, value, holds):
    sm = filled((b"a", b"4"), (b"a", b"5"))
    out = sm.apply(c.txn([c.compare(b"a", target, result, value)]))
    assert out["succeeded"] is holds


MISSING_TABLE = [
    ("version", "=", 0, True),          # etcd's "create if absent"
    ("create_revision", "=", 0, True),
    ("mod_revision", "=", 0, True),     # Kubernetes' create: ModRevision(key) == 0
    ("mod_revision", ">", 0, False),
    ("lease", "=", 0, True),
    ("value", "=", b"", False),          # a missing key has no value: a value compare never holds
    ("value", "!=", b"x", False),
]


@pytest.mark.parametrize("target,result,value,holds", MISSING_TABLE)
def test_compare_on_a_missing_key(target, result, value, holds):
    sm = StateMachine()
    assert sm.apply(c.txn([c.compare(b"nope", target, result, value)]))["succeeded"] is holds


def test_compare_over_a_range_must_hold_for_every_key():
    sm = filled((b"k1", b"1"), (b"k2", b"2"))
    end = c.prefix_end(b"k")
    assert sm.apply(c.txn([c.compare(b"k", "version", "=", 1, end)]))["succeeded"]
    assert not sm.apply(c.txn([c.compare(b"k", "value", "=", b"1", end)]))["succeeded"]


def test_all_compares_must_hold():
    sm = filled((b"a", b"1"), (b"b", b"2"))
    both = [c.compare(b"a", "value", "=", b"1"), c.compare(b"b", "value", "=", b"X")]
    assert not sm.apply(c.txn(both))["succeeded"]


def test_kubernetes_style_update_succeeds_then_conflicts():
    sm = filled((b"/registry/pods/default/p", b"v1"))
    rev = get(sm, b"/registry/pods/default/p")["mod_revision"]
    update = c.txn([c.compare(b"/registry/pods/default/p", "mod_revision", "=", rev)],
                   [c.put(b"/registry/pods/default/p", b"v2")],
                   [c.range_(b"/registry/pods/default/p")])
    first = sm.apply(update)
    assert first["succeeded"] and first["responses"] == [{"response_put": {}}]
    second = sm.apply(update)  # stale mod_revision: the failure branch reads the current value
    assert not second["succeeded"]
    assert second["responses"][0]["response_range"]["kvs"][0]["value"] == b"v2"


def test_writes_in_one_txn_share_one_revision():
    sm = filled((b"old", b"x"))
    out = sm.apply(c.txn([], [c.put(b"a", b"1"), c.put(b"b", b"2"), c.delete_range(b"old")]))
    assert out["header"]["revision"] == 3
    assert get(sm, b"a")["mod_revision"] == get(sm, b"b")["mod_revision"] == 3
    assert [e["kv"]["key"] for e in sm.watch_events(3, b"\0", b"\0")[0]["events"]] == [
        b"a", b"b", b"old"]


def test_txn_without_writes_does_not_advance_the_revision():
    sm = filled((b"a", b"1"))
    assert sm.apply(c.txn([], [c.range_(b"a")]))["header"]["revision"] == 2


def test_reads_in_a_txn_see_its_earlier_writes():
    sm = StateMachine()
    out = sm.apply(c.txn([], [c.put(b"a", b"new"), c.range_(b"a")]))
    assert out["responses"][1]["response_range"]["kvs"][0]["value"] == b"new"


def test_delete_in_txn_answers_its_count():
    sm = filled((b"a", b"1"), (b"b", b"1"))
    out = sm.apply(c.txn([], [c.delete_range(b"a", b"c", prev_kv=True)]))
    body = out["responses"][0]["response_delete_range"]
    assert body["deleted"] == 2 and len(body["prev_kvs"]) == 2


def test_nested_txn_compares_see_the_state_before_the_outer_txn():
    sm = filled((b"a", b"1"))
    inner = c.txn([c.compare(b"a", "value", "=", b"1")], [c.put(b"inner", b"saw-old")],
                  [c.put(b"inner", b"saw-new")])
    out = sm.apply(c.txn([], [c.put(b"a", b"2"), inner]))
    assert out["responses"][1]["response_txn"]["succeeded"] is True
    assert get(sm, b"inner")["value"] == b"saw-old"
    assert get(sm, b"a")["mod_revision"] == get(sm, b"inner")["mod_revision"]


def test_nested_txn_failure_branch():
    sm = StateMachine()
    inner = c.txn([c.compare(b"x", "version", ">", 0)], [c.put(b"r", b"then")], [c.put(b"r", b"else")])
    out = sm.apply(c.txn([], [inner]))
    assert out["responses"][0]["response_txn"] == {"succeeded": False, "responses": [{"response_put": {}}]}
    assert get(sm, b"r")["value"] == b"else"


@pytest.mark.parametrize("ops", [
    [c.put(b"a", b"1"), c.put(b"a", b"2")],                        # same key twice
    [c.put(b"b", b"1"), c.delete_range(b"a", b"c")],                # put inside a deleted range
    [c.txn([], [c.put(b"a", b"1")]), c.put(b"a", b"2")],            # across nesting
])
def test_txn_may_not_write_a_key_twice(ops):
    sm = filled((b"a", b"0"))
    err = fails(sm, c.txn([], ops), "INVALID_ARGUMENT")
    assert "duplicate key" in err.message


def test_overlapping_deletes_are_allowed():
    sm = filled((b"a", b"0"), (b"b", b"0"))
    out = sm.apply(c.txn([], [c.delete_range(b"a", b"c"), c.delete_range(b"b")]))
    deleted = [r["response_delete_range"]["deleted"] for r in out["responses"]]
    assert deleted == [2, 0]


def test_txn_with_unknown_lease_in_the_chosen_branch_fails_whole():
    sm = filled((b"a", b"0"))
    fails(sm, c.txn([], [c.put(b"b", b"1"), c.put(b"c", b"1", lease=99)]), "LEASE_NOT_FOUND")


def test_unknown_lease_in_the_branch_not_taken_is_fine():
    sm = StateMachine()
    out = sm.apply(c.txn([c.compare(b"a", "version", "=", 0)], [c.put(b"a", b"1")],
                         [c.put(b"a", b"2", lease=99)]))
    assert out["succeeded"]


def test_txn_with_a_range_at_a_future_revision_fails_whole():
    sm = StateMachine()
    fails(sm, c.txn([], [c.put(b"a", b"1"), c.range_(b"a", revision=50)]), "FUTURE_REVISION")


def test_txn_with_too_many_ops_is_rejected():
    sm = StateMachine()
    fails(sm, c.txn([], [c.put(b"k%d" % i, b"") for i in range(129)]), "INVALID_ARGUMENT")


def test_compare_value_of_the_wrong_type_is_rejected():
    sm = StateMachine()
    fails(sm, c.txn([c.compare(b"a", "version", "=", b"1")]), "INVALID_ARGUMENT")
    fails(sm, c.txn([c.compare(b"a", "value", "=", 1)]), "INVALID_ARGUMENT")


def test_duplicate_key_check_is_order_dependent_like_etcd():
    """etcd checks a nested txn's puts only against deletes that came before it."""
    sm = StateMachine()
    put_then_delete = c.txn([], [c.txn([], [c.put(b"a", b"1")]), c.txn([], [c.delete_range(b"a")])])
    out = sm.apply(put_then_delete)
    assert out["succeeded"] and get(sm, b"a") is None and sm.revision == 2
    delete_then_put = c.txn([], [c.txn([], [c.delete_range(b"a")]), c.txn([], [c.put(b"a", b"1")])])
    fails(sm, delete_then_put, "INVALID_ARGUMENT")
