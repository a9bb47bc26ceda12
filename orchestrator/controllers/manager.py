"""`ketch controller-manager`: every controller, sharing informers, under one leader election.

    ketch controller-manager --kubeconfig K [--cluster-cidr 10.244.0.0/16] [--node-cidr-mask 24]
        [--node-monitor-grace-seconds 8] [--pod-eviction-seconds 10] [--local-path-root DIR]
        [--horizontal-pod-autoscaler-sync-seconds 15] [--metrics-bind HOST:PORT]

Only the holder of the kube-system/kube-controller-manager Lease runs the controllers; a
standby keeps its informers warm and takes over when the Lease is not renewed.
"""

from __future__ import annotations

import logging
import os
import socket

import trio

from orchestrator.client.api import APIClient
from orchestrator.client.component import run_elected
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory
from orchestrator.controllers.base import Context
from orchestrator.controllers.cronjob import CronJobController
from orchestrator.controllers.daemonset import DaemonSetController
from orchestrator.controllers.deployment import DeploymentController
from orchestrator.controllers.disruption import DisruptionController
from orchestrator.controllers.endpoints import EndpointsController
from orchestrator.controllers.gc import GarbageCollector, NamespaceController
from orchestrator.controllers.hpa import HPAController
from orchestrator.controllers.job import JobController
from orchestrator.controllers.nodes import NodeIPAMController, NodeLifecycleController
from orchestrator.controllers.replicaset import ReplicaSetController
from orchestrator.controllers.serviceaccounts import RootCAPublisher, ServiceAccountsController
from orchestrator.controllers.statefulset import StatefulSetController
from orchestrator.controllers.storage import VolumeController
from orchestrator.metrics import Counter, Registry

log = logging.getLogger("ketch.controller-manager")


class ControllerManager:
    def __init__(self, api: APIClient, *, cluster_cidr: str = "10.244.0.0/16", node_cidr_mask: int = 24,
                 grace_s: float = 8.0, eviction_s: float = 10.0, identity: str | None = None,
                 local_path_root: str = "/var/lib/ketch/local-path", hpa_sync_s: float = 15.0) -> None:
        self.api = api
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.metrics = Registry()
        self.leading = False
        reconciles = Counter("controller_reconciles_total", "Reconciles by controller.", ["controller"],
                             registry=self.metrics)
        errors = Counter("controller_reconcile_errors_total", "Failed reconciles by controller.", ["controller"],
                         registry=self.metrics)
        self.factory = InformerFactory(api)
        self.ctx = Context(api, self.factory, EventRecorder(api, "controller-manager"), reconciles, errors)
        self.controllers = [ReplicaSetController(self.ctx), DeploymentController(self.ctx),
                            EndpointsController(self.ctx), NodeLifecycleController(self.ctx, grace_s, eviction_s),
                            NodeIPAMController(self.ctx, cluster_cidr, node_cidr_mask), GarbageCollector(self.ctx),
                            NamespaceController(self.ctx), ServiceAccountsController(self.ctx),
                            JobController(self.ctx), CronJobController(self.ctx), DaemonSetController(self.ctx),
                            StatefulSetController(self.ctx), DisruptionController(self.ctx),
                            VolumeController(self.ctx, local_path_root), HPAController(self.ctx, hpa_sync_s)]
        if api.access.ca_pem:  # the CA the kubeconfig trusts is the cluster's
            self.controllers.append(RootCAPublisher(self.ctx, api.access.ca_pem))
        self.metrics.gauge_of("controller_queue_depth", "Keys waiting, all controllers.",
                              lambda: sum(len(c.queue) for c in self.controllers))
        self.metrics.gauge_of("controller_manager_leader", "1 while this instance leads.", lambda: int(self.leading))

    async def lead(self) -> None:
        self.leading = True
        try:
            for informer in self.factory.informers.values():  # a new leader looks at everything once
                for obj in informer.items():
                    for handler in informer.handlers:
                        if handler.on_add:
                            handler.on_add(obj)
            async with trio.open_nursery() as nursery:
                for controller in self.controllers:
                    nursery.start_soon(controller.run)
        finally:
            self.leading = False

    async def run(self, metrics_bind: str | None = None, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await run_elected(self.api, "kube-controller-manager", self.identity, self.factory, self.ctx.events,
                          self.metrics, metrics_bind, self.lead, task_status=task_status)
