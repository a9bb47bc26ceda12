"""`ketch cloud-controller-manager`: the lab cloud controller's adapter. Informers on Services and
Nodes, the host list reread from the cluster file when it changes (`ketch lab add-worker` edits
it), one pass of the pure plan (cloud/plan.py) whenever anything changes, under its own leader
Lease (kube-system/cloud-controller-manager) like Kubernetes' cloud-controller-manager."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import trio

from orchestrator.client.api import NODES, SERVICES, APIClient, APIStatusError, Unreachable
from orchestrator.client.component import run_elected
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory
from orchestrator.client.workqueue import WorkQueue
from orchestrator.cloud.plan import LabHost, plan
from orchestrator.lab import config as cluster_config
from orchestrator.metrics import Counter, Registry

log = logging.getLogger("ketch.cloud")
EVERYTHING = "all"


class CloudController:
    def __init__(self, api: APIClient, config_path: Path, identity: str | None = None) -> None:
        self.api = api
        self.config_path = Path(config_path)
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.factory = InformerFactory(api)
        self.services = self.factory.informer(SERVICES)
        self.nodes = self.factory.informer(NODES)
        self.events = EventRecorder(api, "cloud-controller-manager")
        self.queue = WorkQueue("cloud")
        self.metrics = Registry()
        self.passes = Counter("cloud_controller_passes_total", "Passes of the lab cloud controller.",
                              registry=self.metrics)
        for informer in (self.services, self.nodes):
            informer.add_handler(self._changed, lambda old, new: self._changed(new), self._changed)
        self._config_stamp = 0

    def _changed(self, _obj: dict) -> None:
        self.queue.add(EVERYTHING)

    def hosts(self) -> tuple[list[LabHost], str, str]:
        config = cluster_config.load(self.config_path)
        return ([LabHost(h.name, h.address, h.zone, h.worker) for h in config.hosts], config.lb_pool,
                config.name)

    async def watch_config(self) -> None:
        while True:
            try:
                stamp = self.config_path.stat().st_mtime_ns
            except OSError:
                stamp = 0
            if stamp != self._config_stamp:
                self._config_stamp = stamp
                self.queue.add(EVERYTHING)
            await trio.sleep(1)

    async def reconcile(self, _key: str) -> None:
        self.passes.inc()
        hosts, pool, region = self.hosts()
        result = plan(self.services.items(), self.nodes.items(), hosts, pool, region)
        for namespace, name, status in result.service_status:
            await self._patch(SERVICES, namespace, name, {"status": status}, "status")
        for namespace, name, wanted in result.service_annotations:
            await self._patch(SERVICES, namespace, name, {"metadata": {"annotations": wanted}})
        for name, patch in result.node_patches:
            await self._patch(NODES, None, name, patch)
        for name, status in result.node_status:
            await self._patch(NODES, None, name, {"status": status}, "status")
        for name in result.delete_nodes:
            log.info("event=node_deleted node=%s reason=host_removed", name)
            try:
                await self.api.delete(NODES, None, name)
            except APIStatusError as err:
                if err.code != 404:
                    raise
        for obj, kind, event_type, reason, message in result.events:
            self.events.record(obj, kind, event_type, reason, message)

    async def _patch(self, res, namespace, name, patch, subresource=None) -> None:
        try:
            await self.api.patch(res, namespace, name, patch, subresource=subresource)
        except APIStatusError as err:
            if err.code != 404:
                raise

    async def lead(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watch_config)
            await self.queue.run(self.reconcile, 1, lambda key, err: log.info("event=pass_failed error=%s", err))

    async def run(self, metrics_bind: str | None = None) -> None:
        try:
            await run_elected(self.api, "cloud-controller-manager", self.identity, self.factory, self.events,
                              self.metrics, metrics_bind, self.lead)
        except Unreachable as err:
            log.warning("event=api_unreachable error=%s", err)
