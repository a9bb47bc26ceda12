"""ReplicaSet: as many active pods as spec.replicas, owned through a controller ownerReference.

Pods are created in slow-start batches (1, 2, 4, ...: a failing template costs one pod, not a
hundred) and the excess is deleted not-yet-scheduled first, then not-ready, then newest.
Expectations (as Kubernetes' controller has) keep a ReplicaSet from acting again on a count the
informer has not caught up with, so no pod is created twice.
"""

from __future__ import annotations

import copy
import time

from orchestrator.api import pods, timestamps
from orchestrator.api.meta import controller_of, split_key
from orchestrator.api.pods import is_active, is_available, is_ready
from orchestrator.client.api import PODS, REPLICASETS, APIStatusError
from orchestrator.controllers.base import Controller, ignore_missing
from orchestrator.controllers.expectations import Expectations


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.sets = ctx.informers.informer(REPLICASETS)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_index("owner", lambda p: [ref["uid"] for ref in [controller_of(p)] if ref])
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)
        self.expectations = Expectations()

    def _pod_event(self, pod: dict) -> None:
        self.enqueue_owner(pod, "ReplicaSet")

    def owned(self, rs: dict) -> list[dict]:
        return self.pods.by_index("owner", rs["metadata"]["uid"])

    async def reconcile(self, key: str) -> None:
        rs = self.sets.get(key)
        if rs is None:
            return
        pods = self.owned(rs)
        active = [p for p in pods if is_active(p)]
        wanted = (rs.get("spec") or {}).get("replicas", 1)
        uid = rs["metadata"]["uid"]
        if not rs["metadata"].get("deletionTimestamp") and self.expectations.satisfied(uid, pods, time.monotonic()):
            if len(active) < wanted:
                await self.create_pods(rs, wanted - len(active))
            elif len(active) > wanted:
                await self.delete_pods(rs, active, len(active) - wanted)
        await self.update_status(rs, self.owned(rs))

    async def create_pods(self, rs: dict, missing: int) -> None:
        """Until the informer shows every pod created here, the ReplicaSet is not planned again
        (Expectations). Counting on active pods instead (the count this would reach) kept a
        ReplicaSet waiting out the timeout whenever more of its pods were deleted meanwhile, as
        when a node's pods are evicted one by one: one replacement, then 30 s for the rest."""
        names: list[str] = []
        batch = 1
        try:
            while len(names) < missing:
                size = min(batch, missing - len(names))
                failures = 0
                for _ in range(size):
                    try:
                        pod = await self.api.create(PODS, rs["metadata"]["namespace"], pod_from_template(rs))
                    except APIStatusError as err:
                        failures += 1
                        self.ctx.events.record(rs, "ReplicaSet", "Warning", "FailedCreate", f"Error creating: {err}")
                        continue
                    names.append(pod["metadata"]["name"])
                    # one event per pod, in Kubernetes' words (kubectl describe rs / kubectl events)
                    self.ctx.events.record(rs, "ReplicaSet", "Normal", "SuccessfulCreate",
                                           f"Created pod: {pod['metadata']['name']}")
                if failures:
                    return  # slow start: stop at the first failing batch
                batch *= 2
        finally:
            self.expectations.expect(rs["metadata"]["uid"], names, [], time.monotonic())

    async def delete_pods(self, rs: dict, active: list[dict], excess: int) -> None:
        def rank(pod: dict):
            return (bool(pods.node_name(pod)), is_ready(pod),
                    -(timestamps.epoch(pod["metadata"].get("creationTimestamp")) or 0.0))
        doomed = sorted(active, key=rank)[:excess]
        self.expectations.expect(rs["metadata"]["uid"], [], [p["metadata"]["name"] for p in doomed], time.monotonic())
        for pod in doomed:
            await ignore_missing(self.api.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"]))
            self.ctx.events.record(rs, "ReplicaSet", "Normal", "SuccessfulDelete",
                                   f"Deleted pod: {pod['metadata']['name']}")

    async def update_status(self, rs: dict, pods: list[dict]) -> None:
        now = time.time()
        active = [p for p in pods if is_active(p)]
        min_ready = (rs.get("spec") or {}).get("minReadySeconds", 0)
        selector = ((rs.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        status = {"replicas": len(active), "readyReplicas": sum(is_ready(p) for p in active),
                  "availableReplicas": sum(is_available(p, min_ready, now) for p in active),
                  "fullyLabeledReplicas": sum(all((p["metadata"].get("labels") or {}).get(k) == v
                                                  for k, v in selector.items()) for p in active),
                  "observedGeneration": rs["metadata"].get("generation", 1)}
        if {k: (rs.get("status") or {}).get(k, 0) for k in status} != status:
            namespace, name = split_key(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}")
            await ignore_missing(self.api.patch(REPLICASETS, namespace, name, {"status": status}, subresource="status"))
        if min_ready and any(is_active(p) and is_ready(p) and not is_available(p, min_ready, now) for p in active):
            self.queue.add_after(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}", min_ready)


def pod_from_template(rs: dict) -> dict:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    meta = template.get("metadata") or {}
    meta.pop("name", None)
    meta["generateName"] = rs["metadata"]["name"] + "-"
    meta["namespace"] = rs["metadata"]["namespace"]
    meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
                                "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}
