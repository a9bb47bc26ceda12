"""Informers: list, then watch from the list's resourceVersion, into a local indexed cache.

An informer keeps `store` (key -> object; key is "namespace/name" or "name") current and calls
its handlers on every change: on_add(obj), on_update(old, new), on_delete(obj). On 410 Expired
it lists again and reports the difference as adds, updates and deletes, so handlers never miss
a change; when the API server is unreachable it retries with backoff. Handlers run inline on
the informer's task and should only enqueue work. `synced` is set after the first list.
Several controllers share one informer per resource through `InformerFactory`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import trio

from orchestrator.api.meta import object_key
from orchestrator.api.resources import Resource
from orchestrator.client.api import APIClient, APIStatusError, Unreachable, WatchExpired

log = logging.getLogger("ketch.client.informer")


@dataclass
class Handler:
    on_add: Callable[[dict], None] | None = None
    on_update: Callable[[dict, dict], None] | None = None
    on_delete: Callable[[dict], None] | None = None


@dataclass
class Informer:
    api: APIClient
    resource: Resource
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    watch_timeout_s: int = 300
    store: dict[str, dict] = field(default_factory=dict)
    handlers: list[Handler] = field(default_factory=list)
    indexers: dict[str, Callable[[dict], list[str]]] = field(default_factory=dict)
    indexes: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    synced: trio.Event = field(default_factory=trio.Event)
    resource_version: str = ""

    def add_handler(self, on_add=None, on_update=None, on_delete=None) -> None:
        self.handlers.append(Handler(on_add, on_update, on_delete))
        for obj in list(self.store.values()):  # a late handler still sees every object
            if on_add:
                on_add(obj)

    def add_index(self, name: str, index: Callable[[dict], list[str]]) -> None:
        self.indexers[name] = index
        self.indexes[name] = {}
        for key, obj in self.store.items():
            for value in index(obj):
                self.indexes[name].setdefault(value, set()).add(key)

    def by_index(self, name: str, value: str) -> list[dict]:
        return [self.store[key] for key in sorted(self.indexes[name].get(value, ())) if key in self.store]

    def get(self, key: str) -> dict | None:
        return self.store.get(key)

    def items(self) -> list[dict]:
        return list(self.store.values())

    # --- the cache ------------------------------------------------------------------------------

    def _index(self, key: str, old: dict | None, new: dict | None) -> None:
        for name, index in self.indexers.items():
            table = self.indexes[name]
            for value in index(old) if old else ():
                table.get(value, set()).discard(key)
            for value in index(new) if new else ():
                table.setdefault(value, set()).add(key)

    def _put(self, obj: dict) -> None:
        key = object_key(obj)
        old = self.store.get(key)
        self.store[key] = obj
        self._index(key, old, obj)
        for handler in self.handlers:
            if old is None and handler.on_add:
                handler.on_add(obj)
            elif old is not None and handler.on_update:
                handler.on_update(old, obj)

    def _remove(self, obj: dict) -> None:
        key = object_key(obj)
        old = self.store.pop(key, None)
        self._index(key, old, None)
        if old is not None:
            for handler in self.handlers:
                if handler.on_delete:
                    handler.on_delete(obj)

    async def _list(self) -> None:
        listing = await self.api.list(self.resource, self.namespace, label_selector=self.label_selector,
                                      field_selector=self.field_selector)
        fresh = {object_key(obj): obj for obj in listing["items"]}
        for key in list(self.store):
            if key not in fresh:
                self._remove(self.store[key])
        for key, obj in fresh.items():
            current = self.store.get(key)
            if current is None or current["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._put(obj)
        self.resource_version = listing["metadata"]["resourceVersion"]
        self.synced.set()

    async def run(self) -> None:
        backoff = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                async for event in self.api.watch(self.resource, self.namespace, resource_version=self.resource_version,
                                                  label_selector=self.label_selector,
                                                  field_selector=self.field_selector, timeout_s=self.watch_timeout_s):
                    obj = event["object"]
                    self.resource_version = obj["metadata"].get("resourceVersion", self.resource_version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._put(obj)
                    elif event["type"] == "DELETED":
                        self._remove(obj)
                backoff = 0.2
            except WatchExpired:
                need_list = True
            except (Unreachable, APIStatusError, ValueError) as err:  # ValueError: a malformed line
                log.warning("event=informer_retry resource=%s error=%s", self.resource.plural, err)
                need_list = True
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


class InformerFactory:
    """One informer per (resource, namespace, selectors), shared by every controller that asks.
    Every resync_s, each handler sees every object again as an update (old == new), so a
    controller that dropped a key still reconciles it eventually."""

    def __init__(self, api: APIClient, resync_s: float = 300.0) -> None:
        self.api = api
        self.resync_s = resync_s
        self.informers: dict[tuple, Informer] = {}
        self.nursery: trio.Nursery | None = None

    def informer(self, resource: Resource, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None) -> Informer:
        key = (resource.plural, resource.group, namespace, label_selector, field_selector)
        if key not in self.informers:
            self.informers[key] = Informer(self.api, resource, namespace, label_selector, field_selector)
            if self.nursery is not None:
                self.nursery.start_soon(self.informers[key].run)
        return self.informers[key]

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Runs every informer (also ones asked for later); started() once all have listed."""
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            for informer in self.informers.values():
                nursery.start_soon(informer.run)
            for informer in list(self.informers.values()):
                await informer.synced.wait()
            task_status.started()
            while True:
                await trio.sleep(self.resync_s)
                for informer in list(self.informers.values()):
                    for obj in informer.items():
                        for handler in informer.handlers:
                            if handler.on_update:
                                handler.on_update(obj, obj)
