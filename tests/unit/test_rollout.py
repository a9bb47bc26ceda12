"""The Deployment's rolling update plan: Kubernetes' bounds (maxSurge, maxUnavailable) hold
whatever the informers have seen so far."""

import pytest

from orchestrator.controllers.plans.rollout import SetState, plan_rolling_update, resolve

NEW, OLD = "web-new", "web-old"


@pytest.mark.parametrize("new,old,plan", [
    # replicas 3, maxSurge 1, maxUnavailable 0 (the default 25%/25% at 3 replicas)
    ((0, 0), [(3, 3)], {NEW: 1}),                     # surge: one new pod, nothing removed yet
    ((1, 0), [(3, 3)], {}),                           # the new pod is not available: wait
    ((1, 1), [(3, 3)], {OLD: 2}),                     # it is: one old pod may go
    # The old ReplicaSet was just asked for 2 but its third pod is not deleted yet. Counting
    # that pod (4 available) would cut the old set to 1 and leave 2 ready pods: never.
    ((1, 1), [(2, 3)], {NEW: 2}),
    ((2, 1), [(2, 3)], {}),
    ((2, 2), [(2, 2)], {OLD: 1}),
    ((3, 3), [(1, 1)], {OLD: 0}),
    ((3, 3), [(0, 0)], {}),
])
def test_three_replicas_never_fewer_than_three_available(new, old, plan):
    assert plan_rolling_update(3, 1, 0, SetState(NEW, *new), [SetState(OLD, *o) for o in old]) == plan


def test_unavailable_old_pods_go_first_and_cost_no_availability():
    # replicas 4, surge 1, unavailable 1: the old set has 2 pods that never became ready
    # 5 pods, at least 3 must stay available, and the new pod may still need its place: one pod
    # may go, and it is an unready one (Kubernetes' maxScaledDown, then cleanupUnhealthyReplicas).
    assert plan_rolling_update(4, 1, 1, SetState(NEW, 1, 0), [SetState(OLD, 4, 2)]) == {OLD: 3}
    assert plan_rolling_update(4, 1, 1, SetState(NEW, 1, 1), [SetState(OLD, 3, 2)]) == {NEW: 2, OLD: 2}


def test_oldest_sets_shrink_first():
    plan = plan_rolling_update(4, 1, 1, SetState(NEW, 1, 1), [SetState("v1", 2, 2), SetState("v2", 2, 2)])
    assert plan == {"v1": 0}  # 5 available, at least 3 needed: two pods of the oldest set go


def test_scaled_down_mid_rollout_the_new_set_shrinks_too():
    # found by a cluster chaos run: scaled to 0 while an old set still ran, the new set kept its pod
    assert plan_rolling_update(0, 0, 1, SetState(NEW, 1, 1), [SetState(OLD, 1, 1)]) == {NEW: 0, OLD: 0}
    assert plan_rolling_update(2, 1, 0, SetState(NEW, 3, 3), [SetState(OLD, 1, 1)]) == {NEW: 2, OLD: 0}


def test_without_old_sets_the_new_one_takes_the_full_size():
    assert plan_rolling_update(5, 1, 1, SetState(NEW, 2, 2), []) == {NEW: 5}


@pytest.mark.parametrize("value,replicas,round_up,expected", [
    ("25%", 3, True, 1), ("25%", 3, False, 0), ("50%", 5, False, 2), (2, 10, True, 2), (None, 4, False, 0),
])
def test_percentages_resolve_as_kubernetes_rounds_them(value, replicas, round_up, expected):
    assert resolve(value, replicas, round_up) == expected
