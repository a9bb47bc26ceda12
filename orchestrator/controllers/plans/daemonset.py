"""DaemonSet: one pod on every eligible node, rolled node by node.

`plan(ds, nodes, pods, now)` is pure and keeps the rules of Kubernetes' DaemonSet controller:
- A node is eligible when the template's nodeSelector and required node affinity select it and
  its NoSchedule/NoExecute taints are tolerated, counting the tolerations Kubernetes adds to
  every daemon pod (not-ready and unreachable NoExecute, the pressure and unschedulable taints
  NoSchedule, network-unavailable for host-network pods).
- Pods are placed through the scheduler, as Kubernetes does since 1.12: each pod carries a
  required node affinity on `metadata.name` for its node, and no nodeName.
- An eligible node without a pod gets one; extra pods on a node and pods on nodes no longer
  eligible are deleted; a failed pod is deleted so that a new one replaces it.
- RollingUpdate (maxUnavailable 1, maxSurge 0 by default): pods of an old template are deleted
  while the number of eligible nodes without an available pod stays within maxUnavailable; with
  maxSurge, the new pod starts beside the old one, which goes once the new one is available.
  OnDelete replaces a pod only when someone deletes it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from orchestrator.api import pods as podinfo
from orchestrator.api.meta import field as get
from orchestrator.api.meta import labels
from orchestrator.api.scheduling import node_selected, tolerates
from orchestrator.controllers.plans.revisions import template_hash

REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}


@dataclass
class DaemonPlan:
    create: list[dict] = field(default_factory=list)   # pod bodies
    delete: list[str] = field(default_factory=list)    # pod names
    status: dict = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after_s: float | None = None


def daemon_tolerations(template_spec: dict) -> list[dict]:
    """The template's tolerations plus those Kubernetes adds to every daemon pod."""
    tolerations = list(template_spec.get("tolerations") or [])
    extra = DAEMON_TOLERATIONS + ([HOST_NETWORK_TOLERATION] if template_spec.get("hostNetwork") else [])
    for toleration in extra:
        if not any(t.get("key") == toleration["key"] and t.get("effect") == toleration["effect"] for t in tolerations):
            tolerations.append(dict(toleration))
    return tolerations


def eligible(ds: dict, node: dict) -> bool:
    template_spec = get(ds, "spec", "template", "spec", default={})
    probe = {"metadata": {}, "spec": {**template_spec, "tolerations": daemon_tolerations(template_spec)}}
    if not node_selected(probe, node):
        return False
    tolerations = probe["spec"]["tolerations"]
    return all(tolerates(tolerations, t) for t in get(node, "spec", "taints", default=[])
               if t.get("effect") in ("NoSchedule", "NoExecute"))


def pod_for_node(ds: dict, node_name: str, revision: str) -> dict:
    template = copy.deepcopy(get(ds, "spec", "template", default={}))
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    meta.setdefault("labels", {}).update({REVISION_LABEL: revision,
                                          GENERATION_LABEL: str(ds["metadata"].get("generation", 1))})
    meta["generateName"] = f"{ds['metadata']['name']}-"
    meta["namespace"] = ds["metadata"]["namespace"]
    meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds["metadata"]["name"],
                                "uid": ds["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    spec["tolerations"] = daemon_tolerations(spec)
    affinity = spec.setdefault("affinity", {})
    # the scheduler places the pod: a required term naming this node replaces any other required terms
    affinity.setdefault("nodeAffinity", {})["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    spec.pop("nodeName", None)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def target_node(pod: dict) -> str:
    """The node a daemon pod is for: where it runs, or the node its affinity names."""
    if podinfo.node_name(pod):
        return podinfo.node_name(pod)
    terms = get(pod, "spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                "nodeSelectorTerms", default=[])
    for term in terms:
        for expression in term.get("matchFields") or []:
            if expression.get("key") == "metadata.name" and expression.get("values"):
                return expression["values"][0]
    return ""


def _resolve(value, total: int, default) -> int:
    value = default if value is None else value
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)  # DaemonSets round percentages up
    return int(value)


def plan(ds: dict, nodes: list[dict], pods: list[dict], now: float) -> DaemonPlan:
    result = DaemonPlan()
    spec = ds.get("spec") or {}
    revision = template_hash(spec.get("template") or {})
    min_ready_s = spec.get("minReadySeconds", 0)
    wanted = {n["metadata"]["name"] for n in nodes if eligible(ds, n)}
    by_node: dict[str, list[dict]] = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        by_node.setdefault(target_node(pod), []).append(pod)

    for node_name, on_node in sorted(by_node.items()):
        if node_name not in wanted:
            result.delete += [p["metadata"]["name"] for p in on_node]
            continue
        failed = [p for p in on_node if podinfo.phase(p) == "Failed"]
        result.delete += [p["metadata"]["name"] for p in failed]
        if failed:
            result.events.append(("Warning", "FailedDaemonPod",
                                  f"Found failed daemon pod {ds['metadata']['namespace']}/"
                                  f"{failed[0]['metadata']['name']} on node {node_name}, will try to kill it"))
        alive = sorted((p for p in on_node if p not in failed),
                       key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
        by_node[node_name] = alive

    missing = sorted(n for n in wanted if not by_node.get(n))
    result.create += [pod_for_node(ds, n, revision) for n in missing]
    _roll(ds, spec, wanted, by_node, revision, min_ready_s, now, result)
    result.status = _status(ds, wanted, by_node, revision, min_ready_s, now)
    return result


def _roll(ds, spec, wanted, by_node, revision, min_ready_s, now, result) -> None:
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge"), len(wanted), 0)
    max_unavailable = _resolve(rolling.get("maxUnavailable"), len(wanted), 1 if surge == 0 else 0)

    def available(pod: dict) -> bool:
        return podinfo.is_available(pod, min_ready_s, now)

    doomed = set(result.delete)
    unavailable, surging, outdated = 0, 0, []
    for node in sorted(wanted):
        alive = [p for p in by_node.get(node, []) if p["metadata"]["name"] not in doomed]
        new = [p for p in alive if labels(p).get(REVISION_LABEL) == revision]
        old = [p for p in alive if p not in new]
        extras = new[1:] + old[1:]
        if new and old:
            if available(new[0]):
                extras += old[:1]  # the replacement is up: the old pod goes
            else:
                surging += 1
        elif old:
            outdated.append(old[0])
        result.delete += [p["metadata"]["name"] for p in extras]
        if not any(available(p) for p in alive):
            unavailable += 1
    if strategy.get("type") == "OnDelete":
        return
    for old in outdated:
        if not available(old):
            result.delete.append(old["metadata"]["name"])  # replacing a pod that does not serve costs nothing
        elif surging < surge:
            result.create.append(pod_for_node(ds, target_node(old), revision))
            surging += 1
        elif unavailable < max_unavailable:
            result.delete.append(old["metadata"]["name"])
            unavailable += 1


def _status(ds, wanted, by_node, revision, min_ready_s, now) -> dict:
    scheduled = [n for n in wanted if by_node.get(n)]
    running = [p for n in wanted for p in by_node.get(n, [])[:1]]
    return {"desiredNumberScheduled": len(wanted),
            "currentNumberScheduled": len(scheduled),
            "numberMisscheduled": sum(1 for n, ps in by_node.items() if n not in wanted and ps),
            "numberReady": sum(1 for p in running if podinfo.is_ready(p)),
            "numberAvailable": sum(1 for p in running if podinfo.is_available(p, min_ready_s, now)),
            "numberUnavailable": len(wanted) - sum(1 for p in running if podinfo.is_available(p, min_ready_s, now)),
            "updatedNumberScheduled": sum(1 for n in wanted if any(
                labels(p).get(REVISION_LABEL) == revision for p in by_node.get(n, []))),
            "observedGeneration": ds["metadata"].get("generation", 1)}
