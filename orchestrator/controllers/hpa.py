"""The HorizontalPodAutoscaler controller: every sync period, for each HPA, read the target's scale
and its pods' CPU figures (metrics.k8s.io, which the API server serves from the kubelets, as
metrics-server does), run the pure recommendation (plans/hpa.py) with this HPA's history, scale
the target through its scale subresource, and write the status `kubectl get hpa` shows."""

from __future__ import annotations

import time

from orchestrator.api import pods as podinfo
from orchestrator.api import quantity, timestamps
from orchestrator.api.meta import field, object_key, split_key
from orchestrator.api.resources import BY_KIND
from orchestrator.api.selectors import labels_match, parse_label_selector
from orchestrator.client.api import PODS, APIStatusError, Unreachable, path, resource
from orchestrator.controllers import actions
from orchestrator.controllers.base import Controller
from orchestrator.controllers.plans.hpa import PodSample, recommend

HISTORY_S = 600  # the longest stabilization window kept (Kubernetes allows up to an hour; labs use less)


class HPAController(Controller):
    name = "horizontalpodautoscaler"
    workers = 2

    def __init__(self, ctx, sync_s: float = 15.0) -> None:
        super().__init__(ctx)
        self.sync_s = sync_s
        self.hpa_resource = resource("horizontalpodautoscalers", "autoscaling")
        self.hpas = ctx.informers.informer(self.hpa_resource)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_index("namespace", lambda p: [p["metadata"]["namespace"]])
        self.hpas.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._forget)
        self.history: dict[str, list[tuple[float, int]]] = {}   # key -> (time, raw recommendation)
        self.scalings: dict[str, list[tuple[float, int]]] = {}  # key -> (time, replica delta)

    def _forget(self, hpa: dict) -> None:
        key = object_key(hpa)
        self.history.pop(key, None)
        self.scalings.pop(key, None)

    async def reconcile(self, key: str) -> None:
        hpa = self.hpas.get(key)
        if hpa is None:
            return
        self.queue.add_after(key, self.sync_s)  # level-triggered: look again every sync period
        namespace, _ = split_key(key)
        ref = field(hpa, "spec", "scaleTargetRef", default={})
        group = (ref.get("apiVersion") or "").partition("/")[0] if "/" in (ref.get("apiVersion") or "") else ""
        target = BY_KIND.get((group, ref.get("kind")))
        now = time.time()
        if target is None or "scale" not in target.subresources:
            return await self.write(hpa, None, now, [("AbleToScale", "False", "FailedGetScale",
                                                      f"the HPA controller was unable to get the target's current "
                                                      f"scale: no scale subresource for {ref.get('kind')}")])
        try:
            scale = await self.api.request("GET", path(target, namespace, ref.get("name"), "scale"))
        except (APIStatusError, Unreachable) as err:
            return await self.write(hpa, None, now, [("AbleToScale", "False", "FailedGetScale",
                                                      f"the HPA controller was unable to get the target's current "
                                                      f"scale: {err}")])
        current = field(scale, "spec", "replicas", default=0)
        samples = await self.samples(namespace, field(scale, "status", "selector", default=""))
        history = [(t, r) for t, r in self.history.get(key, []) if now - t < HISTORY_S]
        scalings = [(t, d) for t, d in self.scalings.get(key, []) if now - t < HISTORY_S]
        result = recommend(hpa, current, samples, history, scalings, now)
        self.history[key] = history + [(now, result.raw)]
        self.scalings[key] = scalings
        if current == 0:
            result.desired = 0  # scaled to zero by hand: autoscaling is off until scaled up again
        if result.desired != current:
            await self.api.patch(target, namespace, ref["name"], {"spec": {"replicas": result.desired}},
                                 subresource="scale")
            self.scalings[key].append((now, result.desired - current))
            direction = "above" if result.desired > current else "below"
            self.ctx.events.record(hpa, "HorizontalPodAutoscaler", "Normal", "SuccessfulRescale",
                                   f"New size: {result.desired}; reason: cpu resource utilization (percentage of "
                                   f"request) {direction} target")
        await self.write(hpa, result, now, result.conditions, current)

    async def samples(self, namespace: str, selector: str) -> list[PodSample]:
        requirements = parse_label_selector(selector)
        members = [p for p in self.pods.by_index("namespace", namespace)
                   if requirements and labels_match(requirements, p) and podinfo.is_active(p)]
        try:
            listing = await self.api.request("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
        except (APIStatusError, Unreachable):
            listing = {"items": []}
        usage = {m["metadata"]["name"]: sum(quantity.milli_cpu(c.get("usage", {}).get("cpu", "0"))
                                            for c in m.get("containers") or [])
                 for m in listing.get("items") or []}
        return [PodSample(p["metadata"]["name"], podinfo.requests(p).get("cpu", 0),
                          usage.get(p["metadata"]["name"]), podinfo.is_ready(p)) for p in members]

    async def write(self, hpa: dict, result, now: float, conditions, current: int | None = None) -> None:
        status = dict(hpa.get("status") or {})
        stamp = timestamps.format_epoch(now)
        previous = {c.get("type"): c for c in status.get("conditions") or []}
        status["conditions"] = [{"type": kind, "status": state, "reason": reason, "message": message,
                                 "lastTransitionTime": (previous.get(kind) or {}).get("lastTransitionTime", stamp)
                                 if (previous.get(kind) or {}).get("status") == state else stamp}
                                for kind, state, reason, message in conditions]
        if result is not None:
            status["currentReplicas"] = current
            status["desiredReplicas"] = result.desired
            status["currentMetrics"] = [result.metric] if result.metric else None
            if result.desired != current:
                status["lastScaleTime"] = stamp
        status = {k: v for k, v in status.items() if v is not None}
        await actions.write_status(self.api, self.hpa_resource, hpa, status)
