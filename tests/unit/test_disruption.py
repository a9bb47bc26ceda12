"""PodDisruptionBudgets: the status a budget shows, and which evictions it allows."""

import pytest

from orchestrator.api.disruption import EvictionRefused, budget_status, charged, decide_eviction

NOW = 1_000.0


def pdb(**spec) -> dict:
    return {"metadata": {"name": "web-pdb", "namespace": "default", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def pod(name: str, ready=True, app="web") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


THREE = [pod("a"), pod("b"), pod("c"), pod("other", app="db")]


@pytest.mark.parametrize("spec, desired, allowed", [
    ({"minAvailable": 2}, 2, 1),
    ({"minAvailable": "50%"}, 2, 1),       # 1.5 rounded up
    ({"maxUnavailable": 1}, 2, 1),
    ({"maxUnavailable": "34%"}, 1, 2),     # 1.02 rounded up: 2 may be unavailable
    ({"minAvailable": 3}, 3, 0),
])
def test_status_from_min_available_or_max_unavailable(spec, desired, allowed):
    status = budget_status(pdb(**spec), THREE, NOW)
    assert (status["expectedPods"], status["currentHealthy"]) == (3, 3)
    assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (desired, allowed)


def test_granted_evictions_count_until_seen_or_timed_out():
    assert budget_status(pdb(minAvailable=1), THREE, NOW, {"a": NOW - 5})["disruptionsAllowed"] == 1
    assert budget_status(pdb(minAvailable=1), THREE, NOW, {"a": NOW - 500})["disruptionsAllowed"] == 2


def test_eviction_allowed_then_refused_with_kubernetes_words():
    budget = pdb(minAvailable=2)
    budget["status"] = budget_status(budget, THREE, NOW)
    assert decide_eviction(pod("a"), [budget]) is budget
    after = charged(budget, "a", "2026-01-01T00:00:00Z")
    with pytest.raises(EvictionRefused) as refused:
        decide_eviction(pod("b"), [after])
    assert refused.value.code == 429
    assert refused.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert refused.value.detail == "The disruption budget web-pdb needs 2 healthy pods and has 3 currently"


def test_unready_pods_and_uncovered_pods_go_freely_and_two_budgets_refuse():
    budget = pdb(minAvailable=3)
    budget["status"] = budget_status(budget, THREE, NOW)
    assert decide_eviction(pod("x", ready=False), [budget]) is None
    assert decide_eviction(pod("other", app="db"), [budget]) is None
    with pytest.raises(EvictionRefused) as refused:
        decide_eviction(pod("a"), [budget, {**budget, "metadata": {**budget["metadata"], "name": "second"}}])
    assert refused.value.code == 500
