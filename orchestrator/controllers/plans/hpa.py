"""HorizontalPodAutoscaler (autoscaling/v2): how many replicas, from CPU figures and history.

`recommend(hpa, current_replicas, samples, history, now)` is pure and keeps Kubernetes' rules:
- Utilization is the pods' CPU use over their CPU requests (Resource metric `cpu`, target
  `averageUtilization`, or `averageValue` in millicores). The raw recommendation is
  ceil(current ready pods x use / target). Within the tolerance (10%) nothing changes.
- Pods without figures count as using nothing when scaling up and their full request when
  scaling down; pods not yet ready count as using nothing when scaling up (so a burst of new
  pods does not feed on itself).
- Behavior: each direction keeps a stabilization window (scale-up 0 s, scale-down 300 s by
  default) over which the most conservative recommendation wins, and rate policies (scale-up:
  the larger of 100% or 4 pods per 15 s; scale-down: 100% per 15 s); min and max replicas clamp.
- Conditions AbleToScale, ScalingActive and ScalingLimited with Kubernetes' reasons, and
  `currentMetrics` as `kubectl get hpa` shows them (TARGETS "cpu: 47%/50%").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from orchestrator.api import quantity
from orchestrator.api.meta import field as get

TOLERANCE = 0.1
DEFAULT_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                                 {"type": "Pods", "value": 4, "periodSeconds": 15}]}
DEFAULT_SCALE_DOWN = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                      "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


@dataclass(frozen=True)
class PodSample:
    """One pod of the target: its CPU request and use (millicores; use None when unknown)."""
    name: str
    request_milli: int
    use_milli: int | None
    ready: bool = True


@dataclass
class Recommendation:
    desired: int
    metric: dict | None            # the currentMetrics entry, None when no figure was usable
    conditions: list[tuple[str, str, str, str]] = field(default_factory=list)  # type, status, reason, message
    raw: int = 0                   # before behavior and limits (kept in the history for stabilization)


def _cpu_target(hpa: dict) -> tuple[str, int] | None:
    for metric in get(hpa, "spec", "metrics", default=[]):
        if metric.get("type") == "Resource" and get(metric, "resource", "name") == "cpu":
            target = get(metric, "resource", "target", default={})
            if target.get("type") == "Utilization" and target.get("averageUtilization"):
                return "Utilization", int(target["averageUtilization"])
            if target.get("type") == "AverageValue" and target.get("averageValue"):
                return "AverageValue", quantity.milli_cpu(str(target["averageValue"]))
    return None


def raw_recommendation(target: tuple[str, int], current: int, samples: list[PodSample]) -> tuple[int, dict | None]:
    kind, wanted = target
    measured = [s for s in samples if s.use_milli is not None and s.ready]
    if not measured or (kind == "Utilization" and not all(s.request_milli for s in measured)):
        return current, None
    use, request = sum(s.use_milli for s in measured), sum(s.request_milli for s in measured)
    utilization = 100 * use / request if request else 0
    ratio = (utilization / wanted) if kind == "Utilization" else (use / len(measured)) / wanted
    shown = {"type": "Resource", "resource": {"name": "cpu", "current": {
        "averageUtilization": round(utilization), "averageValue": f"{round(use / len(measured))}m"}}}
    missing = [s for s in samples if s.use_milli is None or not s.ready]
    if missing:
        # redo the ratio with the pods without figures counted pessimistically for the direction
        up = ratio > 1
        extra_use = sum(0 if up else s.request_milli for s in missing)
        extra_request = sum(s.request_milli for s in missing)
        if kind == "Utilization":
            total_request = request + extra_request
            ratio = (100 * (use + extra_use) / total_request / wanted) if total_request else ratio
        else:
            ratio = ((use + extra_use) / (len(measured) + len(missing))) / wanted
        if (up and ratio < 1) or (not up and ratio > 1):
            return current, shown  # the missing pods would reverse the direction: stay
        count = len(measured) + len(missing)
    else:
        count = len(measured)
    if abs(ratio - 1.0) <= TOLERANCE:
        return current, shown
    return math.ceil(ratio * count), shown


def _rule(hpa: dict, direction: str) -> dict:
    default = DEFAULT_SCALE_UP if direction == "scaleUp" else DEFAULT_SCALE_DOWN
    rule = dict(default)
    rule.update(get(hpa, "spec", "behavior", direction, default={}))
    return rule


def _limit(rule: dict, current: int, events: list[tuple[float, int]], now: float, up: bool) -> int:
    """The most the policies allow from `current`, given the scale events (time, delta) so far."""
    bounds = []
    for policy in rule.get("policies") or []:
        period = policy.get("periodSeconds", 15)
        # replicas at the start of the period: what this direction's scalings within it changed, undone
        changed = sum(delta for t, delta in events if now - t < period and (delta > 0) == up)
        base = current - changed
        if policy.get("type") == "Pods":
            bound = base + policy["value"] if up else base - policy["value"]
        elif up:
            bound = math.ceil(base * (1 + policy["value"] / 100))
        else:
            bound = math.floor(base * (1 - policy["value"] / 100))
        bounds.append(bound)
    if not bounds:
        return current
    pick = rule.get("selectPolicy", "Max")
    if pick == "Disabled":
        return current
    if up:
        return max(bounds) if pick == "Max" else min(bounds)
    return min(bounds) if pick == "Max" else max(bounds)


def recommend(hpa: dict, current: int, samples: list[PodSample], history: list[tuple[float, int]],
              events: list[tuple[float, int]], now: float) -> Recommendation:
    """history: (time, raw recommendation) of earlier passes; events: (time, replica delta) of scalings."""
    spec = hpa.get("spec") or {}
    low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
    target = _cpu_target(hpa)
    if target is None:
        return Recommendation(current, None, [("ScalingActive", "False", "FailedGetResourceMetric",
                                               "the HPA has no cpu Resource metric with a target")])
    raw, shown = raw_recommendation(target, current, samples)
    if shown is None:
        return Recommendation(
            current,
            None,
            [
                (
                    "AbleToScale",
                    "True",
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale",
                ),
                (
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    "the HPA was unable to compute the replica count: unable to get metrics for resource cpu",
                ),
            ],
            raw=current,
        )
    up_rule, down_rule = _rule(hpa, "scaleUp"), _rule(hpa, "scaleDown")
    window = [
        (t, r)
        for t, r in history
        if now - t < max(up_rule["stabilizationWindowSeconds"], down_rule["stabilizationWindowSeconds"])
    ]
    desired = raw
    if raw > current:
        recent = [r for t, r in window if now - t < up_rule["stabilizationWindowSeconds"]] + [raw]
        desired = max(current, min(recent))
        desired = min(desired, _limit(up_rule, current, events, now, up=True))
    elif raw < current:
        recent = [r for t, r in window if now - t < down_rule["stabilizationWindowSeconds"]] + [raw]
        desired = min(current, max(recent))
        desired = max(desired, _limit(down_rule, current, events, now, up=False))
    conditions = [
        ("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        if desired == current
        else (
            "AbleToScale",
            "True",
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {max(low, min(high, desired))}",
        ),
        (
            "ScalingActive",
            "True",
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count from cpu resource utilization "
            "(percentage of request)",
        ),
    ]
    if desired > high:
        conditions.append(
            (
                "ScalingLimited",
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        )
    elif desired < low:
        conditions.append(
            (
                "ScalingLimited",
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        )
    else:
        conditions.append(
            ("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range")
        )
    return Recommendation(max(low, min(high, desired)), shown, conditions, raw=raw)
