"""Random sequences of every kv operation against the naive model in kv_model.py.

Each rule applies one command to the store and to the model and compares answers, error codes
included; invariants compare the whole current key space after every step. Snapshot-restore and
retried writes are rules too, so the store is swapped for its restored copy mid-run.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from kvstore import KVError, StateMachine, snapshot
from kvstore import commands as c
from tests.kvtools import Strict
from tests.stateful.kv_model import KV, Model, ModelError, inside

KEYS = [b"a", b"a/1", b"a/2", b"b", b"c", b"c/x"]
keys = st.sampled_from(KEYS)
values = st.binary(max_size=3)
range_ends = st.one_of(st.none(), st.just(b"\0"), keys,
                       keys.map(c.prefix_end))
CLIENTS = ["client-1", b"client-2"]


def kv_tuple(kv: dict) -> tuple:
    return (kv["key"], kv["value"], kv["create_revision"], kv["mod_revision"], kv["version"], kv["lease"])


def model_kv(key: bytes, kv: KV | None) -> tuple | None:
    return None if kv is None else (key, *kv)


def range_view(result: dict) -> dict:
    return {"kvs": [kv_tuple(kv) for kv in result["kvs"]], "count": result["count"], "more": result["more"]}


@st.composite
def txn_ops(draw, depth=0):
    kinds = ["put", "delete_range", "range"] + (["txn"] if depth == 0 else [])
    ops = []
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=3)):
        if kind == "put":
            ops.append(c.put(draw(keys), draw(values), prev_kv=draw(st.booleans())))
        elif kind == "delete_range":
            ops.append(c.delete_range(draw(keys), draw(range_ends), prev_kv=draw(st.booleans())))
        elif kind == "range":
            ops.append(c.range_(draw(keys), draw(range_ends), revision=draw(st.sampled_from([0, 0, 2, 5])),
                                limit=draw(st.integers(0, 2))))
        else:
            ops.append(draw(txns(depth + 1)))
    return ops


@st.composite
def compares(draw, model=None):
    """A compare; with a model, its value is often the key's actual value or next to it, so
    that = against != and > against >= are told apart (random values almost never tie)."""
    target = draw(st.sampled_from(["value", "version", "create_revision", "mod_revision", "lease"]))
    key = draw(keys)
    kv = model.current().get(key) if model is not None else None
    if target == "value":
        near = [kv.value] if kv else []
        value = draw(st.one_of(values, st.sampled_from(near))) if near else draw(values)
    else:
        actual = getattr(kv, target) if kv else 0
        value = draw(st.one_of(st.integers(0, 12), st.sampled_from([max(actual - 1, 0), actual, actual + 1])))
    return c.compare(key, target, draw(st.sampled_from(["=", "!=", "<", ">"])), value,
                     draw(st.one_of(st.none(), range_ends)))


@st.composite
def txns(draw, depth=0, model=None):
    return c.txn(draw(st.lists(compares(model), max_size=2)), draw(txn_ops(depth)), draw(txn_ops(depth)))


garbage = st.one_of(
    st.dictionaries(st.sampled_from(["op", "key", "value", "range_end", "lease", "revision", "id", "now", "ttl"]),
                    st.one_of(st.none(), st.integers(-3, 3), st.text("XYZ", max_size=3), st.binary(max_size=3),
                              st.booleans(), st.floats()), max_size=5),
    # every command below misses a required field or has one of the wrong type or range
    st.fixed_dictionaries({"op": st.sampled_from(["put", "range", "compact", "lease_grant", "nope"])},
                          optional={"key": st.one_of(st.just(b""), st.text(max_size=2), st.integers()),
                                    "value": st.one_of(st.text(max_size=2), st.none()),
                                    "revision": st.one_of(st.integers(-5, 0), st.text(max_size=1))}),
    st.fixed_dictionaries({"op": st.just("txn"), "success": st.lists(st.integers(), min_size=1, max_size=2)}),
    st.lists(st.integers(), max_size=3),
    # commands with exactly one thing wrong, each a limit the store must keep
    st.sampled_from([
        c.put(b"", b"v"), c.range_(b""), c.delete_range(b""),
        c.put(b"k" * 8193, b"v"), c.range_(b"a", b"z" * 8193),
        c.put(b"k", b"x" * 1_572_864),
        c.txn([], [c.put(b"a", b"1"), c.put(b"a", b"2")]),
        c.txn([c.compare(b"", "version", "=", 0)]),
        {"op": "range", "key": b"a", "limit": -1},
        {"op": "put", "key": b"a", "value": b"v", "lease": -5},
        c.lease_grant(10**10, now=0.0),
        {**c.put(b"a", b"v"), "seq": 3},
        {"op": "watch", "key": b"a"},
    ]),
)


class KVStoreMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.store = Strict(StateMachine())
        self.model = Model()
        self.now = 1000.0
        self.seqs = {client: 0 for client in CLIENTS}
        self.sent: dict[tuple, dict] = {}

    # --- the comparison -----------------------------------------------------------------

    def both(self, command: dict, model_op):
        """Apply to store and model; both must fail with the same code or both succeed."""
        try:
            expected = model_op()
        except ModelError as err:
            expected_error = err.code
        else:
            expected_error = None
        try:
            result = self.store.apply(command)
        except KVError as err:
            assert err.code == expected_error, f"store failed with {err}, model expected {expected_error}"
            return None, None
        assert expected_error is None, f"store answered {result}, model expected {expected_error}"
        assert result["header"]["revision"] == self.model.revision
        return result, expected

    def maybe_tagged(self, command: dict, tag: bool) -> tuple[dict, tuple | None]:
        if not tag:
            return command, None
        client = CLIENTS[len(self.sent) % len(CLIENTS)]
        self.seqs[client] += 1
        return c.tagged(command, client, self.seqs[client]), (client, self.seqs[client])

    def remember(self, tag, command, result):
        if tag is not None and result is not None:
            self.model.remember(*tag, result)
            self.sent[tag] = command

    # --- key-value rules ----------------------------------------------------------------

    @rule(key=keys, value=values, data=st.data(), prev=st.booleans(), tag=st.booleans())
    def put(self, key, value, data, prev, tag):
        # mostly leases that exist, so that revocation and expiry have keys to delete
        lease = data.draw(st.sampled_from([0, 99] + sorted(self.model.leases) * 3), label="lease")
        command, tagged = self.maybe_tagged(c.put(key, value, lease=lease, prev_kv=prev), tag)
        result, prev_kv = self.both(command, lambda: self.model.do_put(key, value, lease))
        if result is not None:
            shown = kv_tuple(result["prev_kv"]) if "prev_kv" in result else None
            assert shown == (model_kv(key, prev_kv) if prev else None)
        self.remember(tagged, command, result)

    @rule(key=keys, end=range_ends, prev=st.booleans(), tag=st.booleans())
    def delete(self, key, end, prev, tag):
        command, tagged = self.maybe_tagged(c.delete_range(key, end, prev_kv=prev), tag)
        result, gone = self.both(command, lambda: self.model.do_delete(key, end))
        if result is not None:
            assert result["deleted"] == len(gone)
            if prev:
                assert [kv_tuple(kv) for kv in result["prev_kvs"]] == [model_kv(k, kv) for k, kv in gone]
        self.remember(tagged, command, result)

    def a_revision(self, data) -> int:
        """Revisions worth asking about: current (0), any past one, the edges around the
        compaction point and the current revision. Drawn blindly from a fixed range, almost
        every revision would be in the future and the boundaries would hardly ever come up."""
        model = self.model
        edges = [model.compact_revision - 1, model.compact_revision, model.compact_revision + 1,
                 model.revision, model.revision + 1]
        return data.draw(st.one_of(st.just(0), st.integers(0, model.revision + 1),
                                   st.sampled_from([e for e in edges if e >= 0])),
                         label="revision")

    @rule(key=keys, end=range_ends, data=st.data(), limit=st.integers(0, 3),
          keys_only=st.booleans(), count_only=st.booleans())
    def range(self, key, end, data, limit, keys_only, count_only):
        revision = self.a_revision(data)
        command = c.range_(key, end, revision=revision, limit=limit, keys_only=keys_only, count_only=count_only)
        result, expected = self.both(
            command, lambda: self.model.range(key, end, revision, limit, keys_only, count_only))
        if result is not None:
            assert range_view(result) == expected

    @rule(data=st.data(), tag=st.booleans())
    def txn(self, data, tag):
        txn = data.draw(txns(model=self.model), label="txn")
        command, tagged = self.maybe_tagged(txn, tag)
        result, expected = self.both(command, lambda: self.model.do_txn(txn))
        if result is not None:
            self.check_txn_result(result, expected)
        self.remember(tagged, command, result)

    def check_txn_result(self, result, expected):
        ok, responses = expected
        assert result["succeeded"] is ok
        assert len(result["responses"]) == len(responses)
        for got, (kind, want) in zip(result["responses"], responses, strict=True):
            if kind == "txn":
                self.check_txn_result(got["response_txn"], want)
            elif kind == "range":
                assert range_view(got["response_range"]) == want
            elif kind == "delete":
                assert got["response_delete_range"]["deleted"] == len(want)
            else:
                assert "response_put" in got

    @rule(data=st.data())
    def compact(self, data):
        revision = self.a_revision(data)
        self.both(c.compact(revision), lambda: self.model.compact(revision))

    @rule(data=st.data(), key=keys, end=range_ends)
    def watch(self, data, key, end):
        start = self.a_revision(data)
        try:
            expected = [(rev, [(t, k, model_kv(k, kv), model_kv(k, prev)) for t, k, kv, prev in events
                               if inside(k, key, end)])
                        for rev, events in self.model.watch(start or self.model.revision + 1)]
            expected = [(rev, events) for rev, events in expected if events]
        except ModelError as err:
            with pytest.raises(KVError) as info:
                self.store.watch_events(start, key, end, prev_kv=True)
            assert info.value.code == err.code
            return
        got = self.store.watch_events(start, key, end, prev_kv=True)
        assert [(g["revision"], [self.event_view(e) for e in g["events"]]) for g in got] == expected

    @staticmethod
    def event_view(event):
        kv = event["kv"]
        prev = kv_tuple(event["prev_kv"]) if "prev_kv" in event else None
        if event["type"] == "DELETE":
            assert (kv["mod_revision"], kv["version"]) != (0, None)
            return ("DELETE", kv["key"], None, prev)
        return ("PUT", kv["key"], kv_tuple(kv), prev)

    # --- leases ---------------------------------------------------------------------------

    @rule(ttl=st.integers(-1, 8), lease_id=st.sampled_from([0, 0, 1, 2, 3]))
    def grant(self, ttl, lease_id):
        result, expected = self.both(c.lease_grant(ttl, self.now, lease_id),
                                     lambda: self.model.grant(ttl, self.now, lease_id))
        if result is not None:
            assert (result["id"], result["ttl"]) == expected

    @rule(lease_id=st.sampled_from([1, 2, 3, 4, 99]))
    def revoke(self, lease_id):
        self.both(c.lease_revoke(lease_id), lambda: self.model.revoke(lease_id))

    @rule(lease_id=st.sampled_from([1, 2, 3, 4, 99]))
    def keepalive(self, lease_id):
        result, ttl = self.both(c.lease_keepalive(lease_id, self.now),
                                lambda: self.model.keepalive(lease_id, self.now))
        if result is not None:
            assert result["ttl"] == ttl

    @rule(seconds=st.floats(0, 6, allow_nan=False))
    def time_passes_and_leases_expire(self, seconds):
        self.now += seconds
        result, revoked = self.both(c.lease_expire(self.now), lambda: self.model.expire(self.now))
        assert result["revoked"] == revoked

    @precondition(lambda self: self.model.leases)
    @rule()
    def time_reaches_a_deadline_exactly(self):
        """A lease is due at its deadline itself (deadline <= now), not a moment later."""
        self.now = max(self.now, min(deadline for _, deadline in self.model.leases.values()))
        result, revoked = self.both(c.lease_expire(self.now), lambda: self.model.expire(self.now))
        assert result["revoked"] == revoked

    @rule(clock_jump=st.floats(-500, 500, allow_nan=False), extend=st.floats(0, 2, allow_nan=False))
    def leader_changes(self, clock_jump, extend):
        self.now += clock_jump  # the new leader's clock has another origin
        self.both(c.lease_promote(self.now, extend), lambda: self.model.promote(self.now, extend))

    @rule(lease_id=st.sampled_from([1, 2, 3, 99]))
    def time_to_live(self, lease_id):
        result, (ttl, granted, attached) = self.both(
            c.lease_time_to_live(lease_id, self.now, keys=True),
            lambda: self.model.time_to_live(lease_id, self.now))
        assert (result["ttl"], result["granted_ttl"], result.get("keys", [])) == (ttl, granted, attached)

    # --- exactly once, snapshots, bad input ------------------------------------------------

    @precondition(lambda self: self.model.recent)
    @rule(data=st.data())
    def retry_a_tagged_write(self, data):
        client = data.draw(st.sampled_from(sorted(self.model.recent, key=str)))
        seq = data.draw(st.sampled_from(self.model.recent[client]))
        revision = self.store.revision
        again = self.store.apply_ok(self.sent[(client, seq)])
        assert again == self.model.results[(client, seq)]
        assert self.store.revision == revision

    @rule()
    def snapshot_and_restore(self):
        data = snapshot.dump(self.store.machine)
        self.store = Strict(snapshot.load(data))
        assert snapshot.dump(self.store.machine) == data

    @rule(command=garbage)
    def bad_input_changes_nothing(self, command):
        before = snapshot.dump(self.store.machine)
        with pytest.raises(KVError) as info:
            self.store.apply(command)
        assert info.value.code in ("INVALID_ARGUMENT", "TOO_LARGE")
        assert snapshot.dump(self.store.machine) == before

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def same_keys_and_revision(self):
        assert self.store.revision == self.model.revision
        everything = self.store.apply_ok(c.range_(b"\0", b"\0"))
        assert [kv_tuple(kv) for kv in everything["kvs"]] == [
            model_kv(k, kv) for k, kv in sorted(self.model.current().items())]
        status = self.store.apply_ok({"op": "status"})
        assert status["keys"] == len(self.model.current())
        assert status["compact_revision"] == self.model.compact_revision
        assert status["leases"] == len(self.model.leases)

    @invariant()
    def leases_agree(self):
        """Every lease's TTLs and attached keys, after every step."""
        for lease_id in sorted(self.model.leases):
            got = self.store.apply_ok(c.lease_time_to_live(lease_id, self.now, keys=True))
            ttl, granted, attached = self.model.time_to_live(lease_id, self.now)
            assert (got["ttl"], got["granted_ttl"], got.get("keys", [])) == (ttl, granted, attached)

    @invariant()
    def watch_feed_agrees_at_the_compaction_boundary(self):
        """From the compact revision the feed replays; one below it, COMPACTED."""
        compact = self.model.compact_revision
        if compact >= 2:
            with pytest.raises(KVError) as info:
                self.store.watch_events(compact - 1, b"\0", b"\0")
            assert info.value.code == "COMPACTED"
            with pytest.raises(KVError) as info:
                self.store.apply(c.range_(b"\0", b"\0", revision=compact - 1))
            assert info.value.code == "COMPACTED"
        start = max(compact, 1)
        expected = [(rev, [(t, k, model_kv(k, kv), model_kv(k, prev)) for t, k, kv, prev in events])
                    for rev, events in self.model.watch(start)]
        got = self.store.watch_events(start, b"\0", b"\0", prev_kv=True)
        assert [(g["revision"], [self.event_view(e) for e in g["events"]]) for g in got] == expected

    @invariant()
    def range_options_agree(self):
        """Fixed queries with every range option, after every step: the rule that draws them
        at random reaches the interesting cases (more keys than the limit) too rarely."""
        model = self.model
        past = max(model.compact_revision, model.revision - 2, 1)
        queries = [
            (b"\0", b"\0", 0, 2, False, False),
            (b"a", c.prefix_end(b"a"), 0, 1, True, False),
            (b"a", b"c", 0, 0, False, True),
            (b"a/1", b"c/x", past, 2, False, False),
            (b"c", b"\0", past, 0, True, False),
        ]
        for key, end, revision, limit, keys_only, count_only in queries:
            got = self.store.apply_ok(c.range_(key, end, revision=revision, limit=limit,
                                            keys_only=keys_only, count_only=count_only))
            assert range_view(got) == model.range(key, end, revision, limit, keys_only, count_only)


TestKVStore = KVStoreMachine.TestCase
TestKVStore.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow])
