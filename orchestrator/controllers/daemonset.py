"""The DaemonSet controller: informers on DaemonSets, Nodes and pods; a DaemonSet is looked at when
it, one of its pods, or any node changes, and the pure plan (plans/daemonset.py) says which pods
to create (placed by the scheduler) and delete, and the status `kubectl rollout status` reads."""

from __future__ import annotations

import time

from orchestrator.api.meta import controller_of, object_key, split_key
from orchestrator.client.api import NODES, PODS, resource
from orchestrator.controllers import actions
from orchestrator.controllers.base import Controller
from orchestrator.controllers.expectations import Expectations
from orchestrator.controllers.plans.daemonset import plan


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.sets_resource = resource("daemonsets", "apps")
        self.sets = ctx.informers.informer(self.sets_resource)
        self.nodes = ctx.informers.informer(NODES)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_index("owner", lambda p: [ref["uid"] for ref in [controller_of(p)] if ref])
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)
        self.nodes.add_handler(self._node_event, self._node_changed, self._node_event)
        self.expectations = Expectations()

    def _pod_event(self, pod: dict) -> None:
        self.enqueue_owner(pod, "DaemonSet")

    def _node_event(self, node: dict) -> None:
        for ds in self.sets.items():
            self.queue.add(object_key(ds))

    def _node_changed(self, old: dict, new: dict) -> None:
        # heartbeats change a node every few seconds; only labels, taints and schedulability matter here
        if (old["metadata"].get("labels"), old.get("spec")) != (new["metadata"].get("labels"), new.get("spec")):
            self._node_event(new)

    async def reconcile(self, key: str) -> None:
        ds = self.sets.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        namespace, _ = split_key(key)
        now, uid = time.time(), ds["metadata"]["uid"]
        pods = self.pods.by_index("owner", uid)
        if not self.expectations.satisfied(uid, pods, now):
            self.queue.add_after(key, 1.0)  # the pod events of our last writes will bring it back sooner
            return
        result = plan(ds, self.nodes.items(), pods, now)
        self.expectations.expect(uid, [], result.delete, now)
        await actions.delete_each(self.api, PODS, namespace, result.delete)
        created = await actions.create_each(self.api, PODS, namespace, result.create)
        self.expectations.expect(uid, [p["metadata"]["name"] for p in created], result.delete, now)
        for pod in created:
            result.events.append(("Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}"))
        for name in dict.fromkeys(result.delete):
            result.events.append(("Normal", "SuccessfulDelete", f"Deleted pod: {name}"))
        await actions.write_status(self.api, self.sets_resource, ds, result.status)
        actions.record(self.ctx.events, ds, "DaemonSet", result.events)
        min_ready = (ds.get("spec") or {}).get("minReadySeconds", 0)
        if min_ready and result.status["numberAvailable"] < result.status["numberReady"]:
            self.queue.add_after(key, 1.0)
