"""`ketch controller-manager`: every controller, sharing informers, under one leader election.

    ketch controller-manager --kubeconfig K [--cluster-cidr 10.244.0.0/16] [--node-cidr-mask 24]
        [--node-monitor-grace-seconds 8] [--pod-eviction-seconds 10] [--metrics-bind HOST:PORT]

Only the holder of the kube-system/kube-controller-manager Lease runs the controllers; a
standby keeps its informers warm and takes over when the Lease is not renewed.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys

import trio

from orchestrator.client.api import APIClient
from orchestrator.client.component import run_component, run_elected
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory
from orchestrator.controllers.base import Context
from orchestrator.controllers.deployment import DeploymentController
from orchestrator.controllers.endpoints import EndpointsController
from orchestrator.controllers.gc import GarbageCollector, NamespaceController
from orchestrator.controllers.nodes import NodeIPAMController, NodeLifecycleController
from orchestrator.controllers.replicaset import ReplicaSetController
from orchestrator.metrics import Counter, Gauge, Registry

log = logging.getLogger("ketch.controller-manager")


class ControllerManager:
    def __init__(self, api: APIClient, *, cluster_cidr: str = "10.244.0.0/16", node_cidr_mask: int = 24,
                 grace_s: float = 8.0, eviction_s: float = 10.0, identity: str | None = None) -> None:
        self.api = api
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.metrics = Registry()
        self.leading = False
        reconciles = self.metrics.add(Counter("controller_reconciles_total", "Reconciles by controller."))
        errors = self.metrics.add(Counter("controller_reconcile_errors_total", "Failed reconciles by controller."))
        self.factory = InformerFactory(api)
        self.ctx = Context(api, self.factory, EventRecorder(api, "controller-manager"), reconciles, errors)
        self.controllers = [ReplicaSetController(self.ctx), DeploymentController(self.ctx),
                            EndpointsController(self.ctx), NodeLifecycleController(self.ctx, grace_s, eviction_s),
                            NodeIPAMController(self.ctx, cluster_cidr, node_cidr_mask), GarbageCollector(self.ctx),
                            NamespaceController(self.ctx)]
        self.metrics.add(Gauge("controller_queue_depth", "Keys waiting, all controllers.",
                               lambda: sum(len(c.queue) for c in self.controllers)))
        self.metrics.add(Gauge("controller_manager_leader", "1 while this instance leads.", lambda: int(self.leading)))

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


def add_manager_parser(subparsers) -> None:
    parser = subparsers.add_parser("controller-manager", help="run the controllers")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16")
    parser.add_argument("--node-cidr-mask", type=int, default=24)
    parser.add_argument("--node-monitor-grace-seconds", type=float, default=8.0)
    parser.add_argument("--pod-eviction-seconds", type=float, default=10.0,
                        help="how long pods without a toleration stay on an unreachable node (Kubernetes: 300)")
    parser.add_argument("--metrics-bind", default=None)
    parser.add_argument("--identity", default=None)


def run_manager(args) -> int:
    try:
        ipaddress.IPv4Network(args.cluster_cidr)
        if not 8 <= args.node_cidr_mask <= 30:
            raise ValueError("--node-cidr-mask must be 8..30")
    except ValueError as err:
        print(f"ketch controller-manager: {err}", file=sys.stderr)
        return 2
    return run_component("controller-manager", args.kubeconfig, lambda api: ControllerManager(
        api, cluster_cidr=args.cluster_cidr, node_cidr_mask=args.node_cidr_mask,
        grace_s=args.node_monitor_grace_seconds, eviction_s=args.pod_eviction_seconds,
        identity=args.identity).run(args.metrics_bind))
