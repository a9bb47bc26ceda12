"""The replicated kv service on real member processes: replication, failover, durability."""

from __future__ import annotations

import pytest
import trio

from kvstore import commands as c
from kvstore.errors import KVError
from tests.integration.conftest import client_for, leader_of


@pytest.mark.parametrize("members", [3, 5])
async def test_writes_through_any_member_are_read_on_every_member(kv_cluster, members):
    cluster = kv_cluster(members)
    for writer in range(members):
        async with client_for(cluster, writer) as kv:
            await kv.put(b"from/%d" % writer, b"v%d" % writer)
    for reader in range(members):
        async with client_for(cluster, reader) as kv:
            result = await kv.range(b"from/", c.prefix_end(b"from/"))
            assert [kv_["value"] for kv_ in result["kvs"]] == [b"v%d" % i for i in range(members)]


async def test_txn_watch_and_lease_across_members(kv_cluster):
    cluster = kv_cluster(3)
    async with client_for(cluster, 0) as writer, client_for(cluster, 1) as watcher:
        async with watcher.watch(b"job/", c.prefix_end(b"job/"), prev_kv=True) as groups:
            lease = (await writer.lease_grant(30))["id"]
            await writer.put(b"job/1", b"new", lease=lease)
            cas = await writer.txn(
                [c.compare(b"job/1", "value", "=", b"new")], [c.put(b"job/1", b"taken", lease=lease)]
            )
            assert cas["succeeded"]
            await writer.lease_revoke(lease)
            seen = []
            with trio.fail_after(10):
                async for group in groups:
                    seen += [(e["type"], e["kv"].get("value")) for e in group["events"]]
                    if len(seen) == 3:
                        break
    assert seen == [("PUT", b"new"), ("PUT", b"taken"), ("DELETE", b"")]


async def test_killing_the_leader_under_load_loses_no_acknowledged_write_and_applies_none_twice(kv_cluster):
    cluster = kv_cluster(3)
    attempted: set[bytes] = set()
    acked: set[bytes] = set()
    ambiguous: set[bytes] = set()

    async def writer(n: int, kv) -> None:
        for i in range(10_000):
            key = b"w%d/%05d" % (n, i)
            attempted.add(key)
            try:
                await kv.put(key, b"x")
                acked.add(key)
            except KVError as err:
                assert err.details.get("ambiguous") is not None, err
                ambiguous.add(key)

    leader = await leader_of(cluster)
    async with client_for(cluster, timeout_s=15) as kv:
        async with trio.open_nursery() as nursery:
            for n in range(8):
                nursery.start_soon(writer, n, kv)
            await trio.sleep(1.5)
            before_kill = len(acked)
            cluster.kill(leader)
            await trio.sleep(4)
            nursery.cancel_scope.cancel()
        assert before_kill > 0 and len(acked) > before_kill, "writes did not resume after the kill"
        everything = await kv.range(b"w", c.prefix_end(b"w"))
    stored = {kv_["key"]: kv_["version"] for kv_ in everything["kvs"]}
    assert acked <= stored.keys(), f"lost {len(acked - stored.keys())} acknowledged writes"
    assert set(stored.values()) == {1}, "a write was applied twice"
    assert stored.keys() <= attempted  # nothing appeared from nowhere


async def test_a_killed_leader_is_replaced_in_the_next_term_without_a_split_vote(kv_cluster):
    """Both followers see the leader's connections close at the same instant. They must still
    elect one of them at the first try: a split vote makes every client wait a whole election
    timeout more (it did in 4 of 8 kills while the followers' election deadlines were written
    with one clock and read with another)."""
    cluster = kv_cluster(3)
    for _ in range(4):
        leader = await leader_of(cluster)
        async with client_for(cluster, leader) as kv:
            term = (await kv.status())["raft_term"]
        cluster.kill(leader)
        survivors = [i for i in range(3) if i != leader]
        async with client_for(cluster, *survivors, timeout_s=10) as kv:
            await kv.put(b"after-kill", b"x")  # waits for the new leader
            status = await kv.status()
        assert status["raft_term"] == term + 1, f"the election after the kill took {status['raft_term'] - term} terms"
        cluster.restart(leader)
        cluster.wait_ready()


async def test_killing_every_member_and_restarting_keeps_every_acknowledged_write(kv_cluster):
    cluster = kv_cluster(3)
    async with client_for(cluster) as kv:
        for i in range(200):
            await kv.put(b"k%03d" % i, b"v%d" % i)
        revision = (await kv.put(b"last", b"x"))["header"]["revision"]
    for i in range(3):
        cluster.kill(i)
    for i in range(3):
        cluster.restart(i)
    cluster.wait_ready()
    async with client_for(cluster, timeout_s=20) as kv:
        result = await kv.range(b"k", c.prefix_end(b"k"))
        assert [kv_["value"] for kv_ in result["kvs"]] == [b"v%d" % i for i in range(200)]
        assert (await kv.put(b"after", b"y"))["header"]["revision"] == revision + 1


async def test_an_isolated_leader_does_not_answer_stale_linearizable_reads(kv_cluster):
    cluster = kv_cluster(3)
    leader = await leader_of(cluster)
    async with client_for(cluster) as kv:
        await kv.put(b"k", b"before")
    followers = [i for i in range(3) if i != leader]
    for i in followers:
        cluster.pause(i)
    try:
        async with client_for(cluster, leader, timeout_s=3) as kv:
            with pytest.raises(KVError) as info:
                await kv.range(b"k")
            assert info.value.code == "UNAVAILABLE"
            served = await kv.range(b"k", serializable=True)
            assert served["kvs"][0]["value"] == b"before"
    finally:
        for i in followers:
            cluster.resume(i)


async def test_leases_expire_and_keepalive_keeps_them_across_a_failover(kv_cluster):
    cluster = kv_cluster(3)
    async with client_for(cluster) as kv:
        short = (await kv.lease_grant(2))["id"]
        kept = (await kv.lease_grant(3))["id"]
        await kv.put(b"short", b"1", lease=short)
        await kv.put(b"kept", b"1", lease=kept)
        async with kv.watch(b"short") as groups, trio.open_nursery() as nursery:
            await nursery.start(kv.keep_lease_alive, kept)
            with trio.fail_after(10):
                async for group in groups:
                    assert group["events"][0]["type"] == "DELETE"
                    break
            cluster.kill(await leader_of(cluster))
            await trio.sleep(5)  # longer than the kept lease's TTL, with a leader change inside
            assert await kv.get(b"kept") is not None
            assert await kv.get(b"short") is None
            nursery.cancel_scope.cancel()


async def test_watch_replays_old_revisions_and_refuses_compacted_ones(kv_cluster):
    cluster = kv_cluster(3)
    async with client_for(cluster) as kv:
        revisions = [(await kv.put(b"w", b"%d" % i))["header"]["revision"] for i in range(5)]
        async with kv.watch(b"w", start_revision=revisions[1]) as groups:
            got = []
            with trio.fail_after(10):
                async for group in groups:
                    got += [(e["kv"]["mod_revision"], e["kv"]["value"]) for e in group["events"]]
                    if len(got) == 4:
                        break
        assert got == [(revisions[i], b"%d" % i) for i in range(1, 5)]
        await kv.compact(revisions[3])
        with pytest.raises(KVError) as info:
            async with kv.watch(b"w", start_revision=revisions[0]) as groups:
                async for _ in groups:
                    pass
        assert info.value.code == "COMPACTED" and info.value.details["compact_revision"] == revisions[3]


async def test_a_watch_replaying_more_than_a_frame_holds_gets_every_event_in_pieces(kv_cluster):
    """Found with 1,000 hollow nodes registering at once: a watch push over the frame limit ended
    the API server's kv client. 40 values of 100 KB (4 MB) replayed from the start arrive whole,
    in order, in pushes each saying how far it has seen."""
    cluster = kv_cluster(1)
    async with client_for(cluster) as kv:
        revisions = [(await kv.put(b"big/%02d" % i, bytes([i]) * 100_000))["header"]["revision"] for i in range(40)]
        async with kv.watch(b"big/", b"big0", start_revision=revisions[0]) as groups:
            got, pushes = [], []
            with trio.fail_after(20):
                async for group in groups:
                    pushes.append(group["revision"])
                    got += [e["kv"]["mod_revision"] for e in group["events"]]
                    assert group["revision"] >= got[-1]
                    if len(got) == 40:
                        break
        assert got == revisions and len(pushes) > 1 and pushes == sorted(pushes)
        await kv.put(b"alive", b"yes")  # the client is still connected and serving


async def test_a_watch_resumes_on_another_member_when_its_member_dies(kv_cluster):
    cluster = kv_cluster(3)
    leader = await leader_of(cluster)
    watched = (leader + 1) % 3  # a follower: killing it leaves a quorum
    async with client_for(cluster, leader) as writer, client_for(cluster, watched, (watched + 1) % 3) as kv:
        async with kv.watch(b"feed/", c.prefix_end(b"feed/")) as groups:
            await writer.put(b"feed/1", b"a")
            got = []
            with trio.fail_after(20):
                async for group in groups:
                    got += [e["kv"]["value"] for e in group["events"]]
                    if got == [b"a"]:
                        cluster.kill(watched)
                        for value in (b"b", b"c"):
                            await writer.put(b"feed/" + value, value)
                    if len(got) == 3:
                        break
    assert got == [b"a", b"b", b"c"]


async def test_a_dead_member_is_replaced_through_membership_changes(kv_cluster):
    cluster = kv_cluster(3)
    leader = await leader_of(cluster)
    dead = (leader + 1) % 3
    async with client_for(cluster, leader, timeout_s=20) as kv:
        for i in range(50):
            await kv.put(b"data/%02d" % i, b"v")
        cluster.kill(dead)
        await kv.member_remove(cluster.nodes[dead].peer)
        cluster.forget(dead)
        new = cluster.add_node()
        members = await kv.member_add(cluster.nodes[new].peer)
        assert cluster.nodes[new].peer in members["members"]
        assert cluster.nodes[dead].peer not in members["members"]
    cluster.restart(new)
    cluster.wait_ready()
    async with client_for(cluster, new, timeout_s=20) as kv:
        with trio.fail_after(20):
            while (await kv.range(b"data/", c.prefix_end(b"data/"), serializable=True))["count"] < 50:
                await trio.sleep(0.2)
    # The new member votes: with the old leader gone too, it and the last original member
    # are a quorum of three and keep accepting writes.
    cluster.kill(leader)
    survivor = next(i for i in range(3) if i not in (leader, dead))
    async with client_for(cluster, survivor, new, timeout_s=30) as kv:
        await kv.put(b"after", b"replacement")
        assert (await kv.get(b"after"))["value"] == b"replacement"
