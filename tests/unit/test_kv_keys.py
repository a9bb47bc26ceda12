"""Put, range and delete_range, rule by rule, as etcd v3 documents them."""

import pytest

from kvstore import StateMachine
from kvstore import commands as c
from tests.kvtools import fails, filled, get, keys_of, values_of


def test_empty_store_is_at_revision_1():
    sm = StateMachine()
    assert sm.apply(c.range_(b"a"))["header"]["revision"] == 1


def test_each_write_advances_the_revision_by_one():
    sm = StateMachine()
    revisions = [sm.apply(c.put(b"k%d" % i, b"v"))["header"]["revision"] for i in range(3)]
    assert revisions == [2, 3, 4]


def test_put_creates_with_version_1_and_create_equals_mod_revision():
    sm = StateMachine()
    sm.apply(c.put(b"foo", b"bar"))
    assert get(sm, b"foo") == {"key": b"foo", "value": b"bar", "create_revision": 2,
                               "mod_revision": 2, "version": 1, "lease": 0}


def test_put_again_bumps_version_and_mod_revision_keeps_create_revision():
    sm = filled((b"foo", b"1"), (b"other", b"x"), (b"foo", b"2"))
    kv = get(sm, b"foo")
    assert (kv["value"], kv["create_revision"], kv["mod_revision"], kv["version"]) == (b"2", 2, 4, 2)


def test_recreated_key_starts_over_at_version_1():
    sm = filled((b"foo", b"1"), (b"foo", b"2"))
    sm.apply(c.delete_range(b"foo"))
    sm.apply(c.put(b"foo", b"3"))
    kv = get(sm, b"foo")
    assert (kv["version"], kv["create_revision"], kv["mod_revision"]) == (1, 5, 5)


def test_put_prev_kv_answers_the_previous_value_only_when_asked():
    sm = filled((b"foo", b"1"))
    assert "prev_kv" not in sm.apply(c.put(b"foo", b"2"))
    assert sm.apply(c.put(b"foo", b"3", prev_kv=True))["prev_kv"]["value"] == b"2"
    assert "prev_kv" not in sm.apply(c.put(b"new", b"x", prev_kv=True))


def test_put_empty_value_is_allowed():
    sm = filled((b"foo", b""))
    assert get(sm, b"foo")["value"] == b""


RANGE_TABLE = [
    # (key, range_end, expected keys)          etcd rule
    (b"b", None, [b"b"]),                       # single key
    (b"zz", None, []),                          # missing single key
    (b"b", b"d", [b"b", b"ba", b"c"]),           # half-open [b, d)
    (b"b", c.prefix_end(b"b"), [b"b", b"ba"]),  # prefix b
    (b"c", b"\0", [b"c", b"d", b"e"]),           # "\0" means every key >= key
    (b"\0", b"\0", [b"a", b"b", b"ba", b"c", b"d", b"e"]),  # everything
    (b"d", b"b", []),                           # end before start: nothing
    (b"b", b"b", []),                           # empty interval
]


@pytest.mark.parametrize("key,range_end,expected", RANGE_TABLE)
def test_range_intervals(key, range_end, expected):
    sm = filled(*[(k, b"v") for k in [b"e", b"c", b"a", b"ba", b"d", b"b"]])
    assert keys_of(sm.apply(c.range_(key, range_end))) == expected


def test_range_results_are_sorted_by_key():
    sm = filled(*[(k, b"v") for k in [b"z", b"a", b"m", b"b"]])
    assert keys_of(sm.apply(c.range_(b"\0", b"\0"))) == [b"a", b"b", b"m", b"z"]


def test_range_limit_sets_more_and_count_counts_everything():
    sm = filled(*[(b"k%d" % i, b"v") for i in range(5)])
    result = sm.apply(c.range_(b"k", c.prefix_end(b"k"), limit=2))
    assert keys_of(result) == [b"k0", b"k1"]
    assert (result["count"], result["more"]) == (5, True)
    result = sm.apply(c.range_(b"k", c.prefix_end(b"k"), limit=5))
    assert (len(result["kvs"]), result["count"], result["more"]) == (5, 5, False)


def test_range_keys_only_drops_values():
    sm = filled((b"a", b"value"))
    kv = sm.apply(c.range_(b"a", keys_only=True))["kvs"][0]
    assert (kv["key"], kv["value"], kv["version"]) == (b"a", b"", 1)


def test_range_count_only_returns_no_kvs():
    sm = filled((b"a", b"1"), (b"b", b"2"))
    result = sm.apply(c.range_(b"a", b"\0", count_only=True))
    assert (result["kvs"], result["count"], result["more"]) == ([], 2, False)


def test_range_at_a_past_revision_sees_the_past():
    sm = filled((b"a", b"1"), (b"b", b"1"), (b"a", b"2"))
    sm.apply(c.delete_range(b"b"))
    assert values_of(sm.apply(c.range_(b"\0", b"\0", revision=2))) == {b"a": b"1"}
    assert values_of(sm.apply(c.range_(b"\0", b"\0", revision=3))) == {b"a": b"1", b"b": b"1"}
    assert values_of(sm.apply(c.range_(b"\0", b"\0", revision=4))) == {b"a": b"2", b"b": b"1"}
    assert values_of(sm.apply(c.range_(b"\0", b"\0"))) == {b"a": b"2"}


def test_range_header_is_the_current_revision_even_for_a_past_read():
    sm = filled((b"a", b"1"), (b"a", b"2"))
    assert sm.apply(c.range_(b"a", revision=2))["header"]["revision"] == 3


def test_range_at_a_future_revision_fails():
    sm = filled((b"a", b"1"))
    err = fails(sm, c.range_(b"a", revision=3), "FUTURE_REVISION")
    assert err.details["current_revision"] == 2


def test_delete_answers_deleted_count_and_prev_kvs():
    sm = filled((b"a", b"1"), (b"b", b"2"), (b"c", b"3"))
    result = sm.apply(c.delete_range(b"a", b"c", prev_kv=True))
    assert result["deleted"] == 2
    assert [kv["value"] for kv in result["prev_kvs"]] == [b"1", b"2"]
    assert keys_of(sm.apply(c.range_(b"\0", b"\0"))) == [b"c"]


def test_delete_of_nothing_does_not_advance_the_revision():
    sm = filled((b"a", b"1"))
    result = sm.apply(c.delete_range(b"x"))
    assert (result["deleted"], result["header"]["revision"]) == (0, 2)


def test_delete_range_removes_keys_in_one_revision():
    sm = filled((b"a", b"1"), (b"b", b"2"))
    assert sm.apply(c.delete_range(b"\0", b"\0"))["header"]["revision"] == 4
    events = sm.watch_events(4, b"\0", b"\0")
    assert [(e["type"], e["kv"]["key"]) for e in events[0]["events"]] == [
        ("DELETE", b"a"), ("DELETE", b"b")]


def test_status_counts_keys_and_revisions():
    sm = filled((b"a", b"1"), (b"b", b"2"))
    sm.apply(c.delete_range(b"a"))
    status = sm.apply({"op": "status"})
    assert (status["revision"], status["keys"], status["compact_revision"]) == (4, 1, 0)
    assert status["db_size"] > 0
