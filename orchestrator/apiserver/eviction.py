"""The eviction subresource's budget check (POST pods/NAME/eviction), as Kubernetes' eviction REST:
- a pod that is Pending, finished or already being deleted is deleted without asking any budget;
- otherwise the one PodDisruptionBudget selecting it (orchestrator.api.disruption decides) must
  allow a disruption, and the grant is charged to the budget's status (disruptionsAllowed less
  one, the pod under disruptedPods) by a compare-and-swap on the budget *before* the pod is
  deleted, so two evictions racing for the last disruption cannot both win;
- a refusal is 429 TooManyRequests with Kubernetes' message and a DisruptionBudget cause (kubectl
  drain retries it every 5 s), and 500 when several budgets select the pod."""

from __future__ import annotations

from orchestrator.api import disruption, timestamps
from orchestrator.api.resources import BY_PATH
from orchestrator.apiserver import errors
from orchestrator.apiserver.storage import Store

BUDGETS = BY_PATH[("policy", "v1", "poddisruptionbudgets")]


def ignores_budgets(pod: dict) -> bool:
    """Kubernetes' canIgnorePDB: such a pod's eviction disrupts nothing the budget counts."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Pending", "Succeeded", "Failed") or bool(pod["metadata"].get("deletionTimestamp"))


def refusal(err: disruption.EvictionRefused) -> errors.APIError:
    if err.code == 429:
        return errors.APIError(429, "TooManyRequests", err.message,
                               {"causes": [{"reason": "DisruptionBudget", "message": err.detail}]})
    return errors.APIError(err.code, "InternalError", err.message)


def decide(pod: dict, budgets: list[dict]) -> dict | None:
    try:
        return disruption.decide_eviction(pod, budgets)
    except disruption.EvictionRefused as err:
        raise refusal(err) from None


async def charge_budget(store: Store, pod: dict, dry: bool = False) -> None:
    """Take one disruption from the budget covering `pod`, or raise the refusal (APIError). A dry
    run is refused as the real one would be, and charges nothing."""
    if ignores_budgets(pod):
        return
    namespace = pod["metadata"]["namespace"]
    budgets, _, _ = await store.list(BUDGETS, namespace, resource_version="0")
    budget = decide(pod, budgets)
    if budget is None or dry:
        return
    stamp = timestamps.now()

    def take(current: dict) -> dict | None:
        chosen = decide(pod, [current])  # decided again on each read: the conflict loop may re-read
        return None if chosen is None else disruption.charged(current, pod["metadata"]["name"], stamp)
    await store.guaranteed_write(BUDGETS, namespace, budget["metadata"]["name"], take)
