"""Leases: grant, attach, keepalive, expiry by the leader's time, revoke, time-to-live, promote."""

from kvstore import StateMachine
from kvstore import commands as c
from kvstore.leases import MIN_LEASE_TTL_S
from tests.kvtools import fails, get


def test_grant_allocates_ids_and_answers_the_ttl():
    sm = StateMachine()
    first = sm.apply(c.lease_grant(10, now=100.0))
    second = sm.apply(c.lease_grant(10, now=100.0))
    assert first["ttl"] == 10 and first["id"] != second["id"]


def test_grant_with_a_chosen_id_and_duplicate_id():
    sm = StateMachine()
    assert sm.apply(c.lease_grant(10, now=0, lease_id=42))["id"] == 42
    fails(sm, c.lease_grant(10, now=0, lease_id=42), "INVALID_ARGUMENT")
    assert sm.apply(c.lease_grant(10, now=0))["id"] != 42


def test_short_ttl_is_raised_to_the_minimum_like_etcd():
    sm = StateMachine()
    assert sm.apply(c.lease_grant(0, now=0))["ttl"] == MIN_LEASE_TTL_S


def test_grant_does_not_advance_the_revision():
    sm = StateMachine()
    assert sm.apply(c.lease_grant(10, now=0))["header"]["revision"] == 1


def test_put_with_an_unknown_lease_fails():
    fails(StateMachine(), c.put(b"a", b"1", lease=7), "LEASE_NOT_FOUND")


def test_put_with_a_lease_attaches_the_key():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=0))["id"]
    sm.apply(c.put(b"a", b"1", lease=lease))
    assert get(sm, b"a")["lease"] == lease
    assert sm.apply(c.lease_time_to_live(lease, now=0, keys=True))["keys"] == [b"a"]


def test_putting_without_the_lease_detaches_the_key():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=0))["id"]
    sm.apply(c.put(b"a", b"1", lease=lease))
    sm.apply(c.put(b"a", b"2"))
    sm.apply(c.lease_revoke(lease))
    assert get(sm, b"a")["value"] == b"2"


def test_revoke_deletes_attached_keys_in_one_revision():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=0))["id"]
    sm.apply(c.put(b"a", b"1", lease=lease))
    sm.apply(c.put(b"b", b"1", lease=lease))
    sm.apply(c.put(b"c", b"1"))
    out = sm.apply(c.lease_revoke(lease))
    assert out["header"]["revision"] == 5
    assert [e["kv"]["key"] for e in sm.watch_events(5, b"\0", b"\0")[0]["events"]] == [b"a", b"b"]
    assert get(sm, b"a") is None and get(sm, b"c") is not None
    fails(sm, c.lease_revoke(lease), "LEASE_NOT_FOUND")


def test_expiry_is_decided_by_the_time_in_the_command():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=100.0))["id"]
    sm.apply(c.put(b"a", b"1", lease=lease))
    assert sm.apply(c.lease_expire(now=109.9))["revoked"] == []
    assert get(sm, b"a") is not None
    assert sm.apply(c.lease_expire(now=110.0))["revoked"] == [lease]
    assert get(sm, b"a") is None


def test_keepalive_moves_the_deadline():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=100.0))["id"]
    assert sm.apply(c.lease_keepalive(lease, now=108.0))["ttl"] == 10
    assert sm.apply(c.lease_expire(now=115.0))["revoked"] == []
    assert sm.apply(c.lease_expire(now=118.0))["revoked"] == [lease]


def test_keepalive_of_an_expired_lease_fails_even_before_revocation():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=100.0))["id"]
    fails(sm, c.lease_keepalive(lease, now=110.0), "LEASE_NOT_FOUND")
    fails(sm, c.lease_keepalive(999, now=100.0), "LEASE_NOT_FOUND")


def test_several_expired_leases_are_revoked_one_revision_each():
    sm = StateMachine()
    ids = [sm.apply(c.lease_grant(5, now=0))["id"] for _ in range(3)]
    for i, lease in enumerate(ids):
        sm.apply(c.put(b"k%d" % i, b"", lease=lease))
    out = sm.apply(c.lease_expire(now=5.0))
    assert out["revoked"] == sorted(ids) and out["header"]["revision"] == 4 + 3


def test_time_to_live_reports_remaining_and_granted_ttl():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=100.0))["id"]
    ttl = sm.apply(c.lease_time_to_live(lease, now=103.5))
    assert (ttl["ttl"], ttl["granted_ttl"]) == (7, 10)
    assert "keys" not in ttl
    assert sm.apply(c.lease_time_to_live(lease, now=111.0))["ttl"] == -1


def test_time_to_live_of_an_unknown_lease_is_minus_one_like_etcd():
    assert StateMachine().apply(c.lease_time_to_live(5, now=0))["ttl"] == -1


def test_promote_restarts_deadlines_on_the_new_leaders_clock():
    sm = StateMachine()
    lease = sm.apply(c.lease_grant(10, now=1000.0))["id"]  # old leader's clock
    sm.apply(c.lease_promote(now=5.0, extend=1.5))           # new leader's clock starts low
    assert sm.apply(c.lease_expire(now=16.0))["revoked"] == []
    assert sm.apply(c.lease_expire(now=16.5))["revoked"] == [lease]


def test_lease_leases_lists_ids():
    sm = StateMachine()
    ids = sorted(sm.apply(c.lease_grant(10, now=0))["id"] for _ in range(2))
    assert sm.apply({"op": "lease_leases"})["leases"] == [{"id": i} for i in ids]
