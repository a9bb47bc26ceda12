"""Real kv member processes on loopback, stopped by pid after every test (also on failure)."""

from __future__ import annotations

import pytest
import trio

from kvstore.client import KVClient
from kvstore.local_cluster import LocalCluster


@pytest.fixture
def kv_cluster(tmp_path):
    clusters: list[LocalCluster] = []

    def make(members: int = 3, **kw) -> LocalCluster:
        cluster = LocalCluster(tmp_path / f"cluster{len(clusters)}", members, **kw)
        clusters.append(cluster)
        cluster.start()
        cluster.wait_ready()
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.fixture
async def ready_cluster(kv_cluster):
    """Three members with a leader elected: requests are answered, not refused for lack of one."""
    cluster = kv_cluster(3)
    await leader_of(cluster)
    return cluster


async def leader_of(cluster: LocalCluster, timeout_s: float = 15.0) -> int:
    """Index of the member that leads, once a leader is elected and known to a member."""
    async with KVClient(cluster.endpoints, cluster.token, timeout_s=timeout_s) as kv:
        with trio.fail_after(timeout_s):
            while True:
                status = await kv.status()
                peers = [node.peer for node in cluster.nodes]
                if status.get("leader") in peers:
                    return peers.index(status["leader"])
                await trio.sleep(0.1)


def client_for(cluster: LocalCluster, *members: int, **kw) -> KVClient:
    """A client that talks only to the given members (all if none given)."""
    endpoints = [cluster.nodes[i].client for i in members] if members else cluster.endpoints
    return KVClient(endpoints, cluster.token, **kw)
