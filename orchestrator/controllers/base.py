"""What every controller shares: the informers, a work queue, an event recorder and metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orchestrator.api.meta import object_key
from orchestrator.client.api import APIClient, APIStatusError
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory
from orchestrator.client.workqueue import WorkQueue
from orchestrator.metrics import Counter

log = logging.getLogger("ketch.controllers")


@dataclass
class Context:
    api: APIClient
    informers: InformerFactory
    events: EventRecorder
    reconciles: Counter
    errors: Counter


class Controller:
    name = "controller"
    workers = 4

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.queue = WorkQueue(self.name)

    def enqueue(self, obj: dict) -> None:
        self.queue.add(object_key(obj))

    def enqueue_owner(self, obj: dict, kind: str) -> None:
        """Queue the controller-owner (of the given kind) of obj, if it has one."""
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == kind:
                namespace = obj["metadata"].get("namespace")
                self.queue.add(f"{namespace}/{ref['name']}" if namespace else ref["name"])

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    async def _handle(self, key: str) -> None:
        self.ctx.reconciles.labels(controller=self.name).inc()
        await self.reconcile(key)

    def _failed(self, key: str, err: Exception) -> None:
        self.ctx.errors.labels(controller=self.name).inc()
        log.info("event=reconcile_failed controller=%s key=%s error=%s", self.name, key, err)

    async def run(self) -> None:
        await self.queue.run(self._handle, self.workers, self._failed)


async def ignore_missing(coroutine) -> None:
    try:
        await coroutine
    except APIStatusError as err:
        if err.code not in (404, 409):
            raise
