"""The watch cache's fan-out. A watch from a resourceVersion this API server's cache has not reached
yet (the client saw it on another API server of the same kv store, whose cache is ahead) must not
replay what the client has seen. Pod watches of one spec.nodeName are found by node, not offered
every pod event."""

from __future__ import annotations

import json

import trio

from orchestrator.api.resources import BY_PATH
from orchestrator.apiserver.storage import WatchCache

PODS = BY_PATH[("", "v1", "pods")]


def put(cache: WatchCache, name: str, revision: int, node: str = "") -> None:
    value = json.dumps({"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": node}}).encode()
    cache._apply({"type": "PUT", "kv": {"key": f"/registry/pods/default/{name}".encode(), "version": 1,
                                        "mod_revision": revision, "value": value}})
    cache.revision = revision


def received(watcher) -> list[int]:
    out = []
    while True:
        try:
            out.append(watcher.receive.receive_nowait().revision)
        except trio.WouldBlock:
            return out


async def test_a_watch_from_ahead_of_the_cache_skips_what_the_client_saw_and_gets_the_rest():
    cache = WatchCache(PODS)
    put(cache, "a", 5)
    initial, watcher = cache.subscribe(8, lambda obj: True)  # seen up to 8 on another API server
    assert initial == []
    for name, revision in (("b", 6), ("c", 8), ("d", 9)):
        put(cache, name, revision)
    assert received(watcher) == [9]
    cache.unsubscribe(watcher)


async def test_a_watch_from_within_the_cache_gets_the_window_then_every_live_event():
    cache = WatchCache(PODS)
    for name, revision in (("a", 5), ("b", 6)):
        put(cache, name, revision)
    initial, watcher = cache.subscribe(5, lambda obj: True)
    assert [e.revision for e in initial] == [6]
    put(cache, "c", 7)
    assert received(watcher) == [7]
    cache.unsubscribe(watcher)


async def test_pod_watches_of_one_node_see_only_that_nodes_pods_and_are_never_asked_about_others():
    asked: list[str] = []

    def on(node: str):
        def accept(obj: dict) -> bool:
            asked.append(node)
            return obj["spec"]["nodeName"] == node
        accept.node = node
        return accept
    cache = WatchCache(PODS)
    _, node_a = cache.subscribe(None, on("a"))
    _, node_b = cache.subscribe(None, on("b"))
    _, unbound = cache.subscribe(None, on(""))
    _, everything = cache.subscribe(None, lambda obj: True)
    put(cache, "p1", 1, node="a")
    put(cache, "p2", 2)
    put(cache, "p3", 3, node="b")
    assert (received(node_a), received(node_b), received(unbound), received(everything)) == ([1], [3], [2], [1, 2, 3])
    assert asked == ["a", "", "b"]  # each event offered to its node's watch only
    for watcher in (node_a, node_b, unbound, everything):
        cache.unsubscribe(watcher)
    assert not cache.by_node and not cache.unindexed and not cache.watchers
