"""What every controller shares: the informers, a work queue, an event recorder and metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orchestrator.client.api import APIClient, APIStatusError
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory, object_key
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
        self.ctx.reconciles.inc(controller=self.name)
        await self.reconcile(key)

    def _failed(self, key: str, err: Exception) -> None:
        self.ctx.errors.inc(controller=self.name)
        log.info("event=reconcile_failed controller=%s key=%s error=%s", self.name, key, err)

    async def run(self) -> None:
        await self.queue.run(self._handle, self.workers, self._failed)


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return namespace or None, name


def controller_of(obj: dict) -> dict | None:
    return next((ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("controller")), None)


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def is_active(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


async def ignore_missing(coroutine) -> None:
    try:
        await coroutine
    except APIStatusError as err:
        if err.code not in (404, 409):
            raise
