"""A watch from a resourceVersion this API server's cache has not reached yet (the client saw it on
another API server of the same kv store) waits for the cache, or gets Kubernetes' 504."""

from __future__ import annotations

import pytest
import trio

from orchestrator.api.resources import BY_PATH
from orchestrator.apiserver import errors
from orchestrator.apiserver.storage import WatchCache, WatchEvent

PODS = BY_PATH[("", "v1", "pods")]


def pod(name: str, revision: int) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": str(revision)}}


async def test_a_watch_from_a_revision_the_cache_reaches_soon_waits_and_replays_nothing_older():
    cache = WatchCache(PODS, revision=5, oldest=0)
    cache.events.extend(WatchEvent("ADDED", pod(f"p{r}", r), r) for r in range(1, 6))

    async def catch_up():
        await trio.sleep(0.05)
        cache.events.extend(WatchEvent("ADDED", pod(f"p{r}", r), r) for r in (6, 7))
        cache.revision = 7
    async with trio.open_nursery() as nursery:
        nursery.start_soon(catch_up)
        await cache.caught_up(7, timeout_s=2)
    initial, watcher = cache.subscribe(7, lambda obj: True)
    assert initial == []  # the client has seen everything up to 7
    cache.unsubscribe(watcher)
    initial, watcher = cache.subscribe(6, lambda obj: True)
    assert [e.revision for e in initial] == [7]
    cache.unsubscribe(watcher)


async def test_a_revision_the_cache_does_not_reach_is_a_504_too_large_resource_version():
    cache = WatchCache(PODS, revision=5, oldest=0)
    with pytest.raises(errors.APIError) as raised:
        await cache.caught_up(9, timeout_s=0.05)
    status = raised.value.status()
    assert (status["code"], status["reason"]) == (504, "Timeout")
    assert status["message"] == "Too large resource version: 9, current: 5"
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
