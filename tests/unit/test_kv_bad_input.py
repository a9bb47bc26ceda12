"""Limits and bad input: typed errors, and the state is unchanged."""

import msgpack
import pytest

from kvstore import StateMachine
from kvstore import commands as c
from kvstore.codec import decode
from kvstore.errors import ErrorCode, KVError
from kvstore.requests import MAX_KEY_BYTES, MAX_REQUEST_BYTES
from tests.kvtools import fails, filled


@pytest.fixture
def sm():
    return filled((b"a", b"1"), (b"b", b"2"))


def test_a_request_over_1_5_mib_is_too_large(sm):
    err = fails(sm, c.put(b"big", b"x" * MAX_REQUEST_BYTES), "TOO_LARGE")
    assert err.details["limit"] == 1_572_864


def test_a_txn_over_1_5_mib_in_total_is_too_large(sm):
    ops = [c.put(b"k%d" % i, b"x" * (MAX_REQUEST_BYTES // 4)) for i in range(5)]
    fails(sm, c.txn([], ops), "TOO_LARGE")


def test_a_value_just_under_the_limit_is_accepted():
    sm = StateMachine()
    sm.apply(c.put(b"k", b"x" * (MAX_REQUEST_BYTES - 1024)))
    assert sm.revision == 2


BAD_COMMANDS = [
    ("not a map", [1, 2]),
    ("no op", {"key": b"a"}),
    ("unknown op", {"op": "frobnicate"}),
    ("op not a string", {"op": 3}),
    ("empty key", c.put(b"", b"v")),
    ("key too long", c.put(b"k" * (MAX_KEY_BYTES + 1), b"v")),
    ("key not bytes", {"op": "put", "key": "a", "value": b"v"}),
    ("value missing", {"op": "put", "key": b"a"}),
    ("value not bytes", {"op": "put", "key": b"a", "value": 5}),
    ("negative limit", {"op": "range", "key": b"a", "limit": -1}),
    ("bool as limit", {"op": "range", "key": b"a", "limit": True}),
    ("int as flag", {"op": "range", "key": b"a", "keys_only": 1}),
    ("negative revision", {"op": "range", "key": b"a", "revision": -3}),
    ("negative lease", c.put(b"a", b"v", lease=-1)),
    ("unknown txn op", {"op": "txn", "success": [{"op": "compact", "revision": 1}]}),
    ("txn op not a map", {"op": "txn", "success": [b"x"]}),
    ("bad compare target", c.txn([c.compare(b"a", "colour", "=", 1)])),
    ("bad compare result", c.txn([c.compare(b"a", "version", ">=", 1)])),
    ("compare not a map", {"op": "txn", "compare": [5]}),
    ("compact at 0", c.compact(0)),
    ("compact not int", {"op": "compact", "revision": "3"}),
    ("lease without now", {"op": "lease_grant", "ttl": 5}),
    ("lease with NaN now", c.lease_grant(5, now=float("nan"))),
    ("lease ttl too large", c.lease_grant(10**10, now=0)),
    ("huge lease id", c.lease_grant(5, now=0, lease_id=2**63)),
    ("bad client id", {**c.put(b"a", b"v"), "client_id": 5, "seq": 1}),
    ("seq without client", {**c.put(b"a", b"v"), "seq": 1}),
    ("negative seq", c.tagged(c.put(b"a", b"v"), b"x", -1)),
    ("nesting too deep", {"op": "txn", "success": [{"op": "txn", "success": [
        {"op": "txn", "success": [{"op": "txn", "success": [{"op": "txn", "success": [
            {"op": "txn", "success": [{"op": "txn", "success": [{"op": "txn", "success": [
                {"op": "txn"}]}]}]}]}]}]}]}]}),
]


@pytest.mark.parametrize("name,command", BAD_COMMANDS, ids=[n for n, _ in BAD_COMMANDS])
def test_bad_commands_are_invalid_and_change_nothing(sm, name, command):
    fails(sm, command, "INVALID_ARGUMENT")


@pytest.mark.parametrize("frame", [b"\xc1", b"\x92\x01", b"\xdb\xff\xff\xff\xff", b""])
def test_malformed_msgpack_is_invalid_argument(frame):
    with pytest.raises(KVError) as info:
        decode(frame)
    assert info.value.code == "INVALID_ARGUMENT"


def test_apply_safely_turns_errors_into_values(sm):
    out = sm.apply_safely(c.put(b"", b"v"))
    assert isinstance(out, KVError) and out.code == ErrorCode.INVALID_ARGUMENT
    wire = out.to_wire()  # how it leaves the member: an error frame that survives msgpack
    assert KVError.from_wire(msgpack.unpackb(msgpack.packb(wire))) == out
