"""Objects in the kv store, and one watch cache per resource (DESIGN §4).

Keys come from `Resource.key`; values are the object's JSON without `metadata.resourceVersion`,
which is the string form of the key's mod_revision, set on every read. Create is a txn on
`create_revision == 0`, update and delete a txn on `mod_revision == resourceVersion`, so two API
servers on one kv cluster never overwrite each other's writes.

A `WatchCache` per resource lists its prefix once, then follows one kv watch (with prev_kv, so a
DELETED event carries the last state). It keeps the current objects and the last EVENT_WINDOW
events, serves lists at resourceVersion "0", and fans each event out to every API watcher
through a bounded channel: a thousand watchers cost the kv store nothing extra. A watcher that
does not keep up is dropped (its stream ends; clients re-watch from their last resourceVersion),
as Kubernetes' cacher does.
"""

from __future__ import annotations

import base64
import collections
import copy
import json
import logging
from dataclasses import dataclass, field
from typing import Callable

import trio

from kvstore import commands as c
from kvstore.client import KVClient
from kvstore.errors import ErrorCode, KVError
from orchestrator.api.resources import OWNS_STORAGE, Resource
from orchestrator.apiserver import errors, jsoncodec

log = logging.getLogger("ketch.apiserver.storage")

EVENT_WINDOW = 10_000
WATCHER_BUFFER = 1_000


def encode(obj: dict) -> bytes:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    return jsoncodec.dumps({**obj, "metadata": meta})


def decode(value: bytes, mod_revision: int) -> dict:
    obj = jsoncodec.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
    return obj


def parse_resource_version(text: str | None, what: str = "resourceVersion") -> int | None:
    if text in (None, ""):
        return None
    if not text.isdigit():
        raise errors.bad_request(f"invalid {what}: {text!r}")
    return int(text)


def kv_error(err: KVError) -> errors.APIError:
    if err.code == ErrorCode.COMPACTED:
        return errors.expired(f"too old resource version: {err}")
    return errors.unavailable(f"storage is unavailable: {err}")


@dataclass
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: dict
    revision: int
    encoded: dict[str, bytes] = field(default_factory=dict)  # per output form, filled by the first sender


@dataclass(eq=False)
class Watcher:
    send: trio.MemorySendChannel
    receive: trio.MemoryReceiveChannel
    accept: Callable[[dict], bool]
    after: int = 0  # only events past this revision: the client has seen the rest
    node: str | None = None  # a pod watch of spec.nodeName=node: found through the cache's node index


@dataclass
class WatchCache:
    resource: Resource
    objects: dict[str, dict] = field(default_factory=dict)
    events: collections.deque = field(default_factory=lambda: collections.deque(maxlen=EVENT_WINDOW))
    revision: int = 0  # the cache is current up to this store revision
    oldest: int = 0  # events after this revision are all in `events`
    watchers: set = field(default_factory=set)
    # pod watches selecting one spec.nodeName (each kubelet's; "" is the scheduler's unbound pods),
    # by node: an event goes to the watches of its pod's node, not through every watch's filter
    by_node: dict = field(default_factory=dict)
    unindexed: set = field(default_factory=set)
    ready: trio.Event = field(default_factory=trio.Event)

    async def run(self, kv: KVClient) -> None:
        prefix = self.resource.key_prefix().encode()
        while True:
            try:
                listing = await kv.range(prefix, c.prefix_end(prefix))
                self.objects = {
                    kv_["key"].decode(): decode(kv_["value"], kv_["mod_revision"]) for kv_ in listing["kvs"]
                }
                self.revision = self.oldest = listing["header"]["revision"]
                self.events.clear()
                self.ready.set()
                async with kv.watch(
                    prefix, c.prefix_end(prefix), start_revision=self.revision + 1, prev_kv=True
                ) as watch:
                    async for message in watch:
                        for event in message["events"]:
                            self._apply(event)
                        self.revision = max(self.revision, message["revision"])
            except KVError as err:
                log.warning("event=watch_cache_restart resource=%s error=%s", self.resource.plural, err)
                self._drop_all_watchers()  # they resume from their last resourceVersion
                await trio.sleep(0.5)

    def _apply(self, event: dict) -> None:
        kv_ = event["kv"]
        key = kv_["key"].decode()
        if event["type"] == "PUT":
            obj = decode(kv_["value"], kv_["mod_revision"])
            kind = "ADDED" if kv_["version"] == 1 else "MODIFIED"
            self.objects[key] = obj
        else:
            previous = event.get("prev_kv")
            obj = decode(previous["value"], kv_["mod_revision"]) if previous else self.objects.get(key)
            self.objects.pop(key, None)
            if obj is None:
                return
            obj["metadata"]["resourceVersion"] = str(kv_["mod_revision"])
            kind = "DELETED"
        watch_event = WatchEvent(kind, obj, kv_["mod_revision"])
        if len(self.events) == self.events.maxlen:
            self.oldest = self.events[0].revision
        self.events.append(watch_event)
        node = (obj.get("spec") or {}).get("nodeName") or "" if self.by_node else None
        for watcher in [*self.unindexed, *self.by_node.get(node, ())]:
            if watch_event.revision > watcher.after and watcher.accept(obj):
                try:
                    watcher.send.send_nowait(watch_event)
                except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                    self._drop(watcher)

    def _drop(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        self.unindexed.discard(watcher)
        if watcher.node is not None:
            same_node = self.by_node.get(watcher.node, set())
            same_node.discard(watcher)
            if not same_node:
                self.by_node.pop(watcher.node, None)
        watcher.send.close()

    def _drop_all_watchers(self) -> None:
        for watcher in list(self.watchers):
            self._drop(watcher)
        self.ready = trio.Event()

    def subscribe(self, since: int | None, accept: Callable[[dict], bool]) -> tuple[list[WatchEvent], Watcher]:
        """Events to send first, and a watcher whose `receive` has the live ones. since=None: the
        current state as ADDED events. Raises 410 Expired if `since` is older than the window."""
        if since is None:
            initial = [
                WatchEvent("ADDED", obj, int(obj["metadata"]["resourceVersion"]))
                for _, obj in sorted(self.objects.items())
                if accept(obj)
            ]
        elif since < self.oldest:
            raise errors.expired(f"too old resource version: {since} ({self.oldest + 1})")
        else:
            initial = [e for e in self.events if e.revision > since and accept(e.object)]
        send, receive = trio.open_memory_channel(WATCHER_BUFFER)
        # With several API servers on one kv store, a client can bring a resourceVersion from one
        # whose cache is ahead of this one's: the live events up to it have been seen, skip them.
        node = getattr(accept, "node", None) if self.resource.kind == "Pod" else None
        watcher = Watcher(send, receive, accept, since or 0, node)
        self.watchers.add(watcher)
        if node is None:
            self.unindexed.add(watcher)
        else:
            self.by_node.setdefault(node, set()).add(watcher)
        return initial, watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self._drop(watcher)


DELETE = object()  # what a guaranteed_write decision returns to delete the object


class Store:
    def __init__(self, kv: KVClient) -> None:
        self.kv = kv
        self.caches = {r.storage: WatchCache(r) for r in OWNS_STORAGE}

    def cache(self, resource: Resource) -> WatchCache:
        """The watch cache of the resource's storage (shared by a resource that is another's view)."""
        return self.caches[resource.storage]

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for cache in self.caches.values():
                nursery.start_soon(cache.run, self.kv)
            for cache in self.caches.values():
                await cache.ready.wait()
            task_status.started()

    async def _call(self, coroutine):
        try:
            return await coroutine
        except KVError as err:
            raise kv_error(err) from None

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict:
        found = await self._call(self.kv.get(resource.key(namespace, name).encode()))
        if found is None:
            raise errors.not_found(resource, name)
        return decode(found["value"], found["mod_revision"])

    async def list(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        resource_version: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> tuple[list[dict], int, str | None]:
        """(objects sorted by key, list resourceVersion, continue token or None)."""
        prefix = resource.key_prefix(namespace)
        if resource_version == "0" and not limit and not continue_token:
            cache = self.cache(resource)
            await cache.ready.wait()
            items = [obj for key, obj in sorted(cache.objects.items()) if key.startswith(prefix)]
            return items, cache.revision, None
        start, revision = prefix.encode(), 0
        if continue_token:
            start, revision = _read_continue(continue_token, prefix)
        result = await self._call(
            self.kv.range(start, c.prefix_end(prefix.encode()), revision=revision, limit=limit + 1 if limit else 0)
        )
        kvs = result["kvs"]
        revision = revision or result["header"]["revision"]
        token = None
        if limit and len(kvs) > limit:
            kvs = kvs[:limit]
            token = _write_continue(kvs[-1]["key"] + b"\x00", revision)
        return [decode(k["value"], k["mod_revision"]) for k in kvs], revision, token

    async def create(self, resource: Resource, namespace: str | None, obj: dict) -> dict:
        name = obj["metadata"]["name"]
        key = resource.key(namespace, name).encode()
        result = await self._call(self.kv.txn([c.compare(key, "create_revision", "=", 0)], [c.put(key, encode(obj))]))
        if not result["succeeded"]:
            raise errors.already_exists(resource, name)
        revision = result["header"]["revision"]
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(revision)}}

    async def update(self, resource: Resource, namespace: str | None, obj: dict, expected: int) -> dict:
        name = obj["metadata"]["name"]
        key = resource.key(namespace, name).encode()
        result = await self._call(
            self.kv.txn(
                [c.compare(key, "mod_revision", "=", expected)],
                [c.put(key, encode(obj))],
                [c.range_(key, keys_only=True)],
            )
        )
        if not result["succeeded"]:
            raise self._why_not(resource, name, result)
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(result["header"]["revision"])}}

    async def delete(self, resource: Resource, namespace: str | None, name: str, expected: int) -> int:
        key = resource.key(namespace, name).encode()
        result = await self._call(
            self.kv.txn(
                [c.compare(key, "mod_revision", "=", expected)], [c.delete_range(key)], [c.range_(key, keys_only=True)]
            )
        )
        if not result["succeeded"]:
            raise self._why_not(resource, name, result)
        return result["header"]["revision"]

    @staticmethod
    def _why_not(resource: Resource, name: str, result: dict) -> errors.APIError:
        found = result["responses"][0]["response_range"]["kvs"]
        return errors.conflict(resource, name) if found else errors.not_found(resource, name)

    async def guaranteed_update(self, resource: Resource, namespace: str | None, name: str,
                                mutate: Callable[[dict], dict | None]) -> dict:
        """Read, mutate, write with the read's revision; retry on a conflict. mutate returns the
        new object, or None to leave it as it is."""
        result, _ = await self.guaranteed_write(resource, namespace, name, mutate)
        return result

    async def guaranteed_write(self, resource: Resource, namespace: str | None, name: str, decide,
                               attempts: int = 20) -> tuple[dict, bool]:
        """The one conflict loop. `decide(current)` returns the new object, None (leave it) or
        DELETE; the write or delete is a compare on the read's mod_revision, retried on a
        conflict. Returns (the object as written, or as it was when deleted or left, deleted?).

        The first try starts from the watch cache's copy (as Kubernetes' GuaranteedUpdate does),
        saving a quorum read per write: the compare refuses it if the copy was stale. Any other
        answer from the copy (an error, "nothing to change") is decided again from a quorum read."""
        cached = self.cache(resource).objects.get(resource.key(namespace, name))
        if cached is not None:
            try:
                decision = decide(cached)
                if decision is not None:
                    return await self._commit(resource, namespace, name, cached, decision)
            except errors.APIError:
                pass  # whatever the stale copy caused, the quorum read below decides
        for _ in range(attempts):
            current = await self.get(resource, namespace, name)
            decision = decide(current)
            if decision is None:
                return current, False
            try:
                return await self._commit(resource, namespace, name, current, decision)
            except errors.APIError as err:
                if err.reason != "Conflict":
                    raise
        raise errors.conflict(resource, name, "too many concurrent writers, try again")

    async def _commit(self, resource: Resource, namespace: str | None, name: str, current: dict,
                      decision) -> tuple[dict, bool]:
        expected = int(current["metadata"]["resourceVersion"])
        if decision is DELETE:
            revision = await self.delete(resource, namespace, name, expected)
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = str(revision)
            return gone, True
        return await self.update(resource, namespace, decision, expected), False

    async def lookup(self, resource: Resource, namespace: str | None, name: str) -> dict:
        """The watch cache's copy when it has one, else a quorum read (the cache may lag a create
        that just happened). For checks that tolerate a copy a moment old, such as "does the
        namespace exist"."""
        cached = self.cache(resource).objects.get(resource.key(namespace, name))
        return cached if cached is not None else await self.get(resource, namespace, name)

    async def claim(self, key: str, owner: str) -> bool:
        """Create a key if absent (allocations: cluster IPs, node ports). True if it was ours to take."""
        result = await self._call(
            self.kv.txn([c.compare(key.encode(), "create_revision", "=", 0)], [c.put(key.encode(), owner.encode())])
        )
        return result["succeeded"]

    async def release(self, key: str) -> None:
        await self._call(self.kv.delete_range(key.encode()))


def _write_continue(next_key: bytes, revision: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": next_key.decode("latin-1"), "rv": revision}).encode()).decode()


def _read_continue(token: str, prefix: str) -> tuple[bytes, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        key, revision = data["k"].encode("latin-1"), int(data["rv"])
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("invalid continue token") from None
    if not key.startswith(prefix.encode()):
        raise errors.bad_request("the continue token is for another list")
    return key, revision
