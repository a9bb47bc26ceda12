"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

A candidate takes the Lease when it is free or when its holder has not renewed it for
lease_duration_s *as this candidate has observed* (its own monotonic clock, so clocks across
machines need not agree). The leader renews every retry_period_s; if it cannot renew within
renew_deadline_s it stops leading at once (its work is cancelled) before anyone else may take
over. Every write is a compare-and-swap on the Lease's resourceVersion, so two candidates never
both hold it. Lab defaults are short (6 s lease, 4 s renew deadline, 1 s retry; Kubernetes uses
15/10/2) so that a failover shows within seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

import trio

from orchestrator.api.timestamps import now_micro
from orchestrator.client.api import LEASES, APIClient, APIStatusError, Unreachable

log = logging.getLogger("ketch.client.leader")


class LeaderElector:
    def __init__(self, api: APIClient, name: str, identity: str, namespace: str = "kube-system", *,
                 lease_duration_s: float = 6.0, renew_deadline_s: float = 4.0, retry_period_s: float = 1.0) -> None:
        self.api, self.name, self.identity, self.namespace = api, name, identity, namespace
        self.lease_duration_s, self.renew_deadline_s, self.retry_period_s = \
            lease_duration_s, renew_deadline_s, retry_period_s
        self.leading = False
        self.transitions = 0
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0

    async def try_acquire_or_renew(self) -> bool:
        now = time.monotonic()
        try:
            lease = await self.api.get(LEASES, self.namespace, self.name)
        except APIStatusError as err:
            if err.code != 404:
                raise
            await self.api.create(LEASES, self.namespace, {
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0)})
            return True
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity", ""), spec.get("renewTime", ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        holder = record[0]
        duration = spec.get("leaseDurationSeconds", self.lease_duration_s)
        if holder and holder != self.identity and now < self._observed_at + duration:
            return False  # someone else holds it and has renewed recently
        transitions = spec.get("leaseTransitions", 0) + (holder != self.identity)
        lease["spec"] = {**self._spec(transitions),
                         "acquireTime": spec.get("acquireTime") if holder == self.identity else now_micro()}
        await self.api.update(LEASES, lease)  # fails with 409 if anyone wrote it since our read
        return True

    def _spec(self, transitions: int) -> dict:
        stamp = now_micro()
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration_s),
                "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": transitions}

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (APIStatusError, Unreachable) as err:
            log.info("event=lease_attempt_failed lease=%s identity=%s error=%s", self.name, self.identity, err)
            return False

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign forever; run lead() while leading, cancel it the moment leadership is lost."""
        while True:
            while not await self._attempt():
                await trio.sleep(self.retry_period_s)
            self.leading = True
            self.transitions += 1
            log.info("event=became_leader lease=%s identity=%s", self.name, self.identity)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lead)
                last_renewal = time.monotonic()
                while True:
                    await trio.sleep(self.retry_period_s)
                    with trio.move_on_after(max(0.1, last_renewal + self.renew_deadline_s - time.monotonic())):
                        if await self._attempt():
                            last_renewal = time.monotonic()
                    if time.monotonic() - last_renewal > self.renew_deadline_s:
                        break
                nursery.cancel_scope.cancel()
            self.leading = False
            log.warning("event=lost_leadership lease=%s identity=%s", self.name, self.identity)

    async def release(self) -> None:
        """Give the Lease up (on a clean stop) so a standby need not wait for it to expire."""
        try:
            lease = await self.api.get(LEASES, self.namespace, self.name)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.api.update(LEASES, lease)
        except (APIStatusError, Unreachable):
            pass
