"""The disruption controller: keeps each PodDisruptionBudget's status (expected and healthy pods,
disruptions allowed) current from the pods it covers, forgetting granted evictions once their
pods are seen going (the arithmetic is orchestrator.api.disruption's, shared with the API
server's eviction subresource)."""

from __future__ import annotations

import time

from orchestrator.api import timestamps
from orchestrator.api.disruption import DISRUPTION_TIMEOUT_S, budget_status, covers
from orchestrator.api.meta import object_key
from orchestrator.client.api import PODS, resource
from orchestrator.controllers import actions
from orchestrator.controllers.base import Controller


class DisruptionController(Controller):
    name = "disruption"
    workers = 2

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.pdb_resource = resource("poddisruptionbudgets", "policy")
        self.budgets = ctx.informers.informer(self.pdb_resource)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_index("namespace", lambda p: [p["metadata"]["namespace"]])
        self.budgets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)

    def _pod_event(self, pod: dict) -> None:
        for budget in self.budgets.items():
            if covers(budget, pod):
                self.queue.add(object_key(budget))

    async def reconcile(self, key: str) -> None:
        budget = self.budgets.get(key)
        if budget is None:
            return
        now = time.time()
        pods = self.pods.by_index("namespace", budget["metadata"]["namespace"])
        granted = (budget.get("status") or {}).get("disruptedPods") or {}
        alive = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
        disrupted = {name: timestamps.epoch(when) or now for name, when in granted.items() if name in alive}
        status = budget_status(budget, pods, now, disrupted)
        kept = {name: granted[name] for name, when in disrupted.items() if now - when < DISRUPTION_TIMEOUT_S}
        if kept:
            status["disruptedPods"] = kept
            self.queue.add_after(key, DISRUPTION_TIMEOUT_S)
        # the API server's eviction subresource charges this status too: never overwrite a grant unseen
        await actions.write_status(self.api, self.pdb_resource, budget, status, compare=True)
