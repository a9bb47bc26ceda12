"""The Deployment's rolling update, planned (pure): how big each ReplicaSet should be now.

Kubernetes' rules (deployment controller, rolling.go):
- the new ReplicaSet grows while all ReplicaSets together stay within replicas + maxSurge;
- old ReplicaSets shrink while at least replicas - maxUnavailable pods stay available.
Availability is counted per ReplicaSet and never above its size: a ReplicaSet asked to shrink
still has its extra pods until its controller deletes them (the not-ready ones first), so
counting them would let a second pass, made before the deletion is seen, cut twice and drop
below the bound. As Kubernetes' maxScaledDown, nothing is scaled down while the pods the new
ReplicaSet has not made available yet would be needed to keep the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SetState:
    name: str
    replicas: int  # spec.replicas
    available: int  # its pods that are available (active, Ready for minReadySeconds)


def plan_rolling_update(replicas: int, max_surge: int, max_unavailable: int, new: SetState,
                        old: list[SetState]) -> dict[str, int]:
    """The new sizes of the ReplicaSets that change. `old` is oldest first (scaled down first)."""
    sizes = {rs.name: rs.replicas for rs in [new, *old]}
    if not old:
        sizes[new.name] = replicas
    else:
        room = replicas + max_surge - sum(sizes.values())
        if new.replicas > replicas:  # scaled down in the middle of a rollout: the new set never exceeds it
            sizes[new.name] = replicas
        elif room > 0 and new.replicas < replicas:
            sizes[new.name] = min(replicas, new.replicas + room)
        _scale_down_old(sizes, replicas - max_unavailable, new, old)
    return {name: size for name, size in sizes.items()
            if size != next(rs.replicas for rs in [new, *old] if rs.name == name)}


def _scale_down_old(sizes: dict[str, int], min_available: int, new: SetState, old: list[SetState]) -> None:
    new_unavailable = max(0, sizes[new.name] - new.available)
    budget = sum(sizes.values()) - min_available - new_unavailable
    if budget <= 0:
        return
    for rs in old:  # pods that are not available cost no availability: they go first
        cut = min(budget, max(0, sizes[rs.name] - rs.available))
        sizes[rs.name] -= cut
        budget -= cut
    available = sum(min(rs.available, sizes[rs.name]) for rs in [new, *old])
    removable = min(budget, available - min_available)
    for rs in old:
        cut = min(sizes[rs.name], max(0, removable))
        sizes[rs.name] -= cut
        removable -= cut


def resolve(value, replicas: int, round_up: bool) -> int:
    """maxSurge / maxUnavailable: a number, or a percentage of replicas (surge rounds up)."""
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * replicas / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def surge_and_unavailable(deployment: dict) -> tuple[int, int]:
    spec = deployment.get("spec") or {}
    replicas = spec.get("replicas", 1)
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = resolve(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
    return (surge, 1) if surge == 0 and unavailable == 0 else (surge, unavailable)
