"""What every control plane process does the same way: logging, kubeconfig, signals, and
running its work only while it holds its leader Lease (with events and metrics around it)."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Awaitable, Callable

import trio

from orchestrator.client import kubeconfig
from orchestrator.client.api import APIClient
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory
from orchestrator.client.leader import LeaderElector
from orchestrator.metrics import Registry

RELEASE_TIMEOUT_S = 2.0


def run_component(name: str, kubeconfig_path: str, work: Callable[[APIClient], Awaitable[None]]) -> int:
    """`ketch <name>`: exit 2 on a bad kubeconfig; otherwise run work(api) until SIGTERM/SIGINT."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    try:
        access = kubeconfig.load(kubeconfig_path)
    except kubeconfig.KubeconfigError as err:
        print(f"ketch {name}: {err}", file=sys.stderr)
        return 2

    async def main() -> None:
        async with APIClient(access, user_agent=f"ketch-{name}") as api:
            async with trio.open_nursery() as nursery:
                async def stop_on_signal() -> None:
                    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                        async for _ in signals:
                            nursery.cancel_scope.cancel()
                            return
                nursery.start_soon(stop_on_signal)
                await work(api)
                nursery.cancel_scope.cancel()
    trio.run(main)
    return 0


async def run_elected(api: APIClient, lease: str, identity: str, factory: InformerFactory, events: EventRecorder,
                      metrics: Registry, metrics_bind: str | None, lead: Callable[[], Awaitable[None]], *,
                      task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Informers, events and metrics always (a standby stays warm); lead() only while holding
    kube-system/<lease>; the Lease is released on the way out so a standby need not wait.
    The Lease has a connection of its own: behind the work's requests (a scheduler with 3,000
    bindings queued for the pool) its renewals missed the deadline and leadership was lost."""
    async with APIClient(api.access, connections=1, user_agent="ketch-leader-election") as lease_api, \
            trio.open_nursery() as nursery:
        elector = LeaderElector(lease_api, lease, identity)
        nursery.start_soon(events.run)
        if metrics_bind:
            await nursery.start(metrics.serve, metrics_bind)
        await nursery.start(factory.run)
        task_status.started()
        try:
            await elector.run(lead)
        finally:
            # shielded from the stop, bounded by its own deadline (a throttled API could hold it)
            with trio.CancelScope(shield=True, deadline=trio.current_time() + RELEASE_TIMEOUT_S):
                await elector.release()
