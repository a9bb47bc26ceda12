"""The StatefulSet controller: informers on StatefulSets, their pods and claims; the pure plan
(plans/statefulset.py) says which claims and pods to create (in order), which pods to delete, and
the status `kubectl rollout status statefulset` reads."""

from __future__ import annotations

import time

from orchestrator.api.meta import controller_of, split_key
from orchestrator.client.api import PODS, resource
from orchestrator.controllers import actions
from orchestrator.controllers.base import Controller
from orchestrator.controllers.plans.statefulset import plan


class StatefulSetController(Controller):
    name = "statefulset"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.sets_resource = resource("statefulsets", "apps")
        self.claims_resource = resource("persistentvolumeclaims")
        self.sets = ctx.informers.informer(self.sets_resource)
        self.pods = ctx.informers.informer(PODS)
        self.claims = ctx.informers.informer(self.claims_resource)
        self.pods.add_index("owner", lambda p: [ref["uid"] for ref in [controller_of(p)] if ref])
        self.claims.add_index("namespace", lambda c: [c["metadata"]["namespace"]])
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)

    def _pod_event(self, pod: dict) -> None:
        self.enqueue_owner(pod, "StatefulSet")

    async def reconcile(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        namespace, _ = split_key(key)
        result = plan(sts, self.pods.by_index("owner", sts["metadata"]["uid"]),
                      self.claims.by_index("namespace", namespace), time.time())
        await actions.create_each(self.api, self.claims_resource, namespace, result.create_claims)
        await actions.delete_each(self.api, PODS, namespace, result.delete)
        await actions.create_each(self.api, PODS, namespace, result.create)
        for name in dict.fromkeys(result.delete):
            result.events.append(("Normal", "SuccessfulDelete",
                                  f"delete Pod {name} in StatefulSet {sts['metadata']['name']} successful"))
        await actions.write_status(self.api, self.sets_resource, sts, result.status)
        actions.record(self.ctx.events, sts, "StatefulSet", result.events)
