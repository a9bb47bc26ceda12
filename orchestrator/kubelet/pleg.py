"""What the runtime shows, cached and kept fresh (adapter), as the kubelet's PLEG does: a relist
every second (and on demand after acting, calls coalesced so one listing serves everyone who was
waiting) groups containers by pod and tells the sync which pods changed."""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

import trio

from orchestrator.kubelet.model import RUNNING

log = logging.getLogger("ketch.kubelet.pleg")


def _signature(containers: list) -> tuple:
    return tuple(sorted((c.id, c.state, c.exit_code) for c in containers))


class ContainerCache:
    def __init__(self, list_containers: Callable[[], Awaitable[list]], on_change: Callable[[str], None]) -> None:
        self.list_containers = list_containers
        self.on_change = on_change
        self.by_pod: dict[str, list] = {}
        self.by_id: dict[str, object] = {}
        self.listed_at = float("-inf")  # monotonic start of the newest completed relist
        self.lock = trio.Lock()
        self.ready = trio.Event()

    def of(self, uid: str) -> list:
        return list(self.by_pod.get(uid, []))

    def uids(self) -> set[str]:
        return set(self.by_pod)

    def put(self, container) -> None:
        """A container the kubelet just started (seen before the next relist)."""
        self.by_id[container.id] = container
        mine = [c for c in self.by_pod.get(container.pod_uid, []) if c.id != container.id]
        self.by_pod[container.pod_uid] = mine + [container]

    def forget(self, container_id: str) -> None:
        """A container the kubelet just removed (gone before the next relist)."""
        gone = self.by_id.pop(container_id, None)
        if gone is not None:
            self.by_pod[gone.pod_uid] = [c for c in self.by_pod.get(gone.pod_uid, []) if c.id != container_id]
            if not self.by_pod[gone.pod_uid]:
                del self.by_pod[gone.pod_uid]

    async def relist(self, fresh_after: float | None = None) -> None:
        """A listing that started after fresh_after (monotonic; default: now)."""
        fresh_after = time.monotonic() if fresh_after is None else fresh_after
        async with self.lock:
            if self.listed_at >= fresh_after:
                return  # someone listed while we waited for the lock
            started = time.monotonic()
            containers = await self.list_containers()
            grouped: dict[str, list] = {}
            for container in containers:
                grouped.setdefault(container.pod_uid, []).append(container)
            changed = {uid for uid in set(grouped) | set(self.by_pod)
                       if _signature(grouped.get(uid, [])) != _signature(self.by_pod.get(uid, []))}
            self.by_pod, self.by_id = grouped, {c.id: c for c in containers}
            self.listed_at = started
            self.ready.set()
        for uid in changed:
            self.on_change(uid)

    async def wait_exited(self, container_id: str, timeout_s: float) -> bool:
        """True once the container is no longer running (or gone) within timeout_s."""
        with trio.move_on_after(timeout_s):
            delay = 0.05
            while True:
                await self.relist()
                container = self.by_id.get(container_id)
                if container is None or container.state != RUNNING:
                    return True
                await trio.sleep(delay)
                delay = min(delay * 2, 0.5)
        return False

    async def run(self, period_s: float, on_error: Callable[[Exception], None]) -> None:
        while True:
            try:
                await self.relist()
            except Exception as err:  # noqa: BLE001 - a failed listing is retried next period
                on_error(err)
            await trio.sleep(period_s)
