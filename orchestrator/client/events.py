"""Events, as components record them for `kubectl describe` (core/v1 Event objects)."""

from __future__ import annotations

import logging
import secrets

import trio

from orchestrator.api import timestamps
from orchestrator.client.api import EVENTS, APIClient, APIStatusError, Unreachable

log = logging.getLogger("ketch.client.events")


class EventRecorder:
    """Fire and forget: events go out from a background task; a full buffer drops them (logged),
    so recording never slows the component down."""

    def __init__(self, api: APIClient, component: str, buffer: int = 1000) -> None:
        self.api, self.component = api, component
        self.send, self.receive = trio.open_memory_channel(buffer)

    def record(self, obj: dict, kind: str, event_type: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        stamp = timestamps.now()
        namespace = meta.get("namespace") or "default"
        event = {"metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
                 "involvedObject": {"kind": kind, "namespace": meta.get("namespace", ""), "name": meta["name"],
                                    "uid": meta.get("uid", ""), "apiVersion": obj.get("apiVersion", "v1"),
                                    "resourceVersion": meta.get("resourceVersion", "")},
                 "reason": reason, "message": message, "type": event_type, "count": 1,
                 "source": {"component": self.component}, "reportingComponent": self.component,
                 "firstTimestamp": stamp, "lastTimestamp": stamp}
        try:
            self.send.send_nowait(event)
        except trio.WouldBlock:
            log.warning("event=event_dropped reason=%s object=%s", reason, meta["name"])

    async def run(self) -> None:
        async for event in self.receive:
            try:
                await self.api.create(EVENTS, event["metadata"]["namespace"], event)
            except (APIStatusError, Unreachable) as err:
                log.warning("event=event_not_recorded reason=%s error=%s", event["reason"], err)
