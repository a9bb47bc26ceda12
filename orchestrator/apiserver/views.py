"""Resources served in more than one shape, stored once (pure), as Kubernetes converts between
the versions of a kind on the way in and out:

- events.k8s.io/v1 Events are core/v1 Events (pkg/apis/events/v1 conversion): `regarding` is
  `involvedObject`, `note` is `message`, `reportingController` is `reportingComponent`, and the core
  fields the newer shape dropped live on under `deprecated...` names. So `kubectl events` and
  `kubectl describe` (core) see what components report through either group.
- autoscaling/v1 HorizontalPodAutoscalers (what `kubectl autoscale` sends) are autoscaling/v2 ones:
  `targetCPUUtilizationPercentage` is a Resource cpu Utilization metric; the v2 metrics and
  behavior v1 cannot express travel in the annotations Kubernetes uses for them, so a v1 client
  that writes an autoscaler back loses nothing.

Each view is (stored -> served, served -> stored).
"""

from __future__ import annotations

import json

# (events.k8s.io/v1 name, core/v1 name)
EVENT_RENAMES = (("regarding", "involvedObject"), ("note", "message"), ("reportingController", "reportingComponent"),
                 ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
                 ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"))
TO_CORE = dict(EVENT_RENAMES)
FROM_CORE = {core: new for new, core in EVENT_RENAMES}
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"


def event_to_core(obj: dict) -> dict:
    return {TO_CORE.get(key, key): value for key, value in obj.items()}


def event_from_core(obj: dict) -> dict:
    return {FROM_CORE.get(key, key): value for key, value in obj.items()}


def _is_cpu_utilization(metric: dict) -> bool:
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    return metric.get("type") == "Resource" and resource.get("name") == "cpu" and target.get("type") == "Utilization"


def hpa_to_v1(obj: dict) -> dict:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    metrics = spec.get("metrics") or []
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    others = [m for m in metrics if m is not cpu]
    meta = dict(obj.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    if others:
        annotations[METRICS_ANNOTATION] = json.dumps(others, separators=(",", ":"))
    if spec.get("behavior"):
        annotations[BEHAVIOR_ANNOTATION] = json.dumps(spec["behavior"], separators=(",", ":"))
    if annotations:
        meta["annotations"] = annotations
    v1_spec = {k: spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
    if cpu is not None:
        v1_spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"].get("averageUtilization")
    v1_status = {k: status[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
                 if k in status}
    current = next((m for m in status.get("currentMetrics") or [] if (m.get("resource") or {}).get("name") == "cpu"),
                   None)
    if current and "averageUtilization" in ((current.get("resource") or {}).get("current") or {}):
        v1_status["currentCPUUtilizationPercentage"] = current["resource"]["current"]["averageUtilization"]
    out = {k: v for k, v in obj.items() if k not in ("spec", "status", "metadata")}
    return {**out, "metadata": meta, "spec": v1_spec, **({"status": v1_status} if "status" in obj else {})}


def hpa_from_v1(obj: dict) -> dict:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = dict(obj.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    metrics = []
    if spec.get("targetCPUUtilizationPercentage") is not None:
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": spec["targetCPUUtilizationPercentage"]}}})
    v2_spec = {k: spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
    for annotation, apply in ((METRICS_ANNOTATION, lambda v: metrics.extend(v if isinstance(v, list) else [])),
                              (BEHAVIOR_ANNOTATION, lambda v: v2_spec.__setitem__("behavior", v))):
        text = annotations.pop(annotation, None)
        if text:
            try:
                apply(json.loads(text))
            except ValueError:
                pass  # a hand-edited annotation that is not JSON: as Kubernetes, ignore it
    if metrics:
        v2_spec["metrics"] = metrics
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)  # only ours were there
    v2_status = {k: status[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
                 if k in status}
    if status.get("currentCPUUtilizationPercentage") is not None:
        v2_status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
    out = {k: v for k, v in obj.items() if k not in ("spec", "status", "metadata")}
    return {**out, "metadata": meta, "spec": v2_spec, **({"status": v2_status} if "status" in obj else {})}


VIEWS = {("events.k8s.io", "v1", "Event"): (event_from_core, event_to_core),
         ("autoscaling", "v1", "HorizontalPodAutoscaler"): (hpa_to_v1, hpa_from_v1)}
