"""Snapshots restore to an identical state; the encoding is canonical and versioned."""

import pytest

from kvstore import StateMachine, snapshot
from kvstore import commands as c
from kvstore.codec import encode
from kvstore.errors import KVError


def busy_machine() -> StateMachine:
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(30, now=10.0))["id"]
    for i in range(20):
        sm.apply(c.tagged(c.put(b"k%02d" % (i % 7), b"v%d" % i), b"client", i))
    sm.apply(c.put(b"leased", b"x", lease=lease))
    sm.apply(c.delete_range(b"k03"))
    sm.apply(c.compact(12))
    sm.apply(c.txn([], [c.put(b"t1", b""), c.delete_range(b"k05")]))
    return sm


def test_restore_answers_exactly_like_the_original():
    original = busy_machine()
    restored = snapshot.load(snapshot.dump(original))
    queries = [c.range_(b"\0", b"\0"), c.range_(b"\0", b"\0", revision=12),
               c.range_(b"k", c.prefix_end(b"k"), revision=20), {"op": "status"},
               c.lease_time_to_live(1, now=20.0, keys=True), {"op": "lease_leases"}]
    for query in queries:
        assert restored.apply(query) == original.apply(query)
    assert restored.watch_events(12, b"\0", b"\0", True) == original.watch_events(12, b"\0", b"\0", True)
    assert snapshot.dump(restored) == snapshot.dump(original)


def test_restored_machine_goes_on_like_the_original():
    original = busy_machine()
    restored = snapshot.load(snapshot.dump(original))
    later = [c.tagged(c.put(b"k00", b"v19"), b"client", 19),  # a duplicate: not applied again
             c.lease_expire(now=100.0), c.put(b"new", b"1"), c.compact(25)]
    for command in later:
        assert restored.apply_safely(command) == original.apply_safely(command)
    assert snapshot.dump(restored) == snapshot.dump(original)


@pytest.mark.parametrize("data,reason", [
    (b"\x00garbage", "malformed"),
    (encode({"format": "something-else"}), "not a ketch kv snapshot"),
    (encode({"format": "ketch-kv-snapshot", "version": 99}), "unsupported snapshot version"),
    (encode({"format": "ketch-kv-snapshot", "version": 1}), "corrupt snapshot"),
])
def test_bad_snapshots_are_refused_with_a_reason(data, reason):
    with pytest.raises(KVError) as info:
        snapshot.load(data)
    assert info.value.code == "INVALID_ARGUMENT" and reason in info.value.message
