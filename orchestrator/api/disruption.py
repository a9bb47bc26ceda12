"""PodDisruptionBudgets (policy/v1): how many pods may go, and whether an eviction may proceed.

Shared by the disruption controller (which keeps a budget's status) and the API server's
eviction subresource (which asks before deleting a pod), as in Kubernetes:
- expected pods are the pods the selector matches (not being deleted, not finished);
  `minAvailable` (a number, or a percentage of expected rounded up) or `maxUnavailable`
  (expected minus a number or a rounded-up percentage) gives desiredHealthy;
- currentHealthy counts matching pods that are Ready; disruptionsAllowed is
  currentHealthy - desiredHealthy, less the evictions already granted and not yet seen
  (status.disruptedPods), never below 0;
- an eviction of a pod that is not Ready is allowed while the budget is met (the default
  IfHealthyBudget policy) or always (AlwaysAllow); of a Ready pod only while disruptionsAllowed
  is above 0, and it then takes one disruption; a pod covered by more than one budget cannot
  be evicted.
"""

from __future__ import annotations

import math

from orchestrator.api import pods
from orchestrator.api.meta import field
from orchestrator.api.selectors import labels_match, selector_requirements

DISRUPTION_TIMEOUT_S = 120  # a granted eviction not seen within this long no longer counts (Kubernetes: 2 min)


class EvictionRefused(Exception):
    """code 429 (the budget would break) or 500 (several budgets); the message is Kubernetes'."""

    def __init__(self, code: int, message: str, budget: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.budget, self.detail = code, message, budget, detail


def covers(pdb: dict, pod: dict) -> bool:
    selector = field(pdb, "spec", "selector")
    if selector is None or pod["metadata"].get("namespace") != pdb["metadata"].get("namespace"):
        return False
    requirements = selector_requirements(selector)
    return bool(requirements) and labels_match(requirements, pod)


def _resolve(value, expected: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * expected / 100)
    return int(value)


def budget_status(pdb: dict, all_pods: list[dict], now: float, disrupted: dict[str, float] | None = None) -> dict:
    """The status a budget should show; `disrupted` maps pod names to when their eviction was granted."""
    matching = [p for p in all_pods if covers(pdb, p) and pods.is_active(p)]
    expected = len(matching)
    healthy = sum(1 for p in matching if pods.is_ready(p))
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _resolve(spec["maxUnavailable"], expected))
    else:
        desired = _resolve(spec.get("minAvailable", 1), expected)
    live = {p["metadata"]["name"] for p in matching}
    pending = {name: when for name, when in (disrupted or {}).items()
               if name in live and now - when < DISRUPTION_TIMEOUT_S}
    allowed = max(0, healthy - desired - len(pending))
    return {"expectedPods": expected, "currentHealthy": healthy, "desiredHealthy": desired,
            "disruptionsAllowed": allowed, "observedGeneration": pdb["metadata"].get("generation", 1),
            "conditions": [{"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False",
                            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods", "message": ""}]}


def decide_eviction(pod: dict, budgets: list[dict]) -> dict | None:
    """The budget to charge (None: nothing to charge), or EvictionRefused. Budgets carry their status."""
    matching = [b for b in budgets if covers(b, pod)]
    if not matching:
        return None
    if len(matching) > 1:
        raise EvictionRefused(500, "This pod has more than one PodDisruptionBudget, which the eviction "
                                   "subresource does not support.")
    budget = matching[0]
    status = budget.get("status") or {}
    healthy, desired = status.get("currentHealthy", 0), status.get("desiredHealthy", 0)
    if not pods.is_ready(pod):
        policy = field(budget, "spec", "unhealthyPodEvictionPolicy", default="IfHealthyBudget")
        if policy == "AlwaysAllow" or healthy >= desired:
            return None  # an unready pod does not count against the budget
    if status.get("observedGeneration", 0) < budget["metadata"].get("generation", 1):
        raise EvictionRefused(429, "Cannot evict pod as it would violate the pod's disruption budget.",
                              budget["metadata"]["name"], "The disruption budget is still being processed "
                                                          "by the server.")
    if status.get("disruptionsAllowed", 0) <= 0:
        raise EvictionRefused(429, "Cannot evict pod as it would violate the pod's disruption budget.",
                              budget["metadata"]["name"],
                              f"The disruption budget {budget['metadata']['name']} needs {desired} healthy pods "
                              f"and has {healthy} currently")
    return budget


def charged(budget: dict, pod_name: str, stamp: str) -> dict:
    """The budget's status after granting one eviction (written with a compare on its resourceVersion)."""
    status = dict(budget.get("status") or {})
    status["disruptionsAllowed"] = status.get("disruptionsAllowed", 0) - 1
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: stamp}
    return {**budget, "status": status}
