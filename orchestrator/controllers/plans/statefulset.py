"""StatefulSet: stable, ordered identities with their own storage.

`plan(sts, pods, claims, now)` is pure and keeps the rules of Kubernetes' StatefulSet controller:
- Pod i is named `<set>-<i>` (i from spec.ordinals.start), with hostname `<set>-<i>` and
  subdomain spec.serviceName, so the headless Service gives it the DNS name
  `<set>-<i>.<service>.<namespace>.svc.cluster.local`; labels `statefulset.kubernetes.io/pod-name`,
  `apps.kubernetes.io/pod-index` and `controller-revision-hash`.
- Each volumeClaimTemplate gives pod i the claim `<template>-<set>-<i>`, created before the pod
  and never deleted with it (the default retention policy), so a recreated pod finds its data.
- OrderedReady (default): pod i is created only when every pod below it is Running and Ready,
  and scale-down removes the highest ordinal first, one at a time, while the rest are healthy.
  Parallel: every missing pod is created and every condemned pod deleted at once.
- A failed pod is deleted, so it is recreated with the same name.
- RollingUpdate with `partition` p: pods with ordinal >= p and an old revision are deleted
  (and so recreated from the new template), highest ordinal first, one at a time, only while
  every pod is Running and Ready. OnDelete: a pod takes the new template when someone deletes it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from orchestrator.api import pods as podinfo
from orchestrator.api.meta import field as get
from orchestrator.api.meta import labels
from orchestrator.controllers.plans.revisions import template_hash

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


@dataclass
class StatefulPlan:
    create_claims: list[dict] = field(default_factory=list)
    create: list[dict] = field(default_factory=list)   # pod bodies (named)
    delete: list[str] = field(default_factory=list)    # pod names
    status: dict = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)


def ordinal_of(sts: dict, pod: dict) -> int | None:
    prefix = sts["metadata"]["name"] + "-"
    name = pod["metadata"]["name"]
    tail = name[len(prefix):] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def revision_name(sts: dict) -> str:
    return f"{sts['metadata']['name']}-{template_hash(get(sts, 'spec', 'template', default={}))}"


def claim_name(template: dict, sts: dict, ordinal: int) -> str:
    return f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"


def healthy(pod: dict) -> bool:
    return podinfo.phase(pod) == "Running" and podinfo.is_ready(pod) and not pod["metadata"].get("deletionTimestamp")


def claim_for(sts: dict, template: dict, ordinal: int) -> dict:
    claim = copy.deepcopy(template)
    meta = claim.setdefault("metadata", {})
    meta["name"] = claim_name(template, sts, ordinal)
    meta["namespace"] = sts["metadata"]["namespace"]
    meta.setdefault("labels", {}).update(get(sts, "spec", "selector", "matchLabels", default={}))
    claim.setdefault("apiVersion", "v1")
    claim.setdefault("kind", "PersistentVolumeClaim")
    claim.pop("status", None)
    return claim


def pod_for(sts: dict, ordinal: int, revision: str) -> dict:
    name = f"{sts['metadata']['name']}-{ordinal}"
    template = copy.deepcopy(get(sts, "spec", "template", default={}))
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    meta["name"] = name
    meta["namespace"] = sts["metadata"]["namespace"]
    meta.setdefault("labels", {}).update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal),
                                          REVISION_LABEL: revision})
    meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts["metadata"]["name"],
                                "uid": sts["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    spec["hostname"] = name
    if get(sts, "spec", "serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    volumes = [v for v in spec.get("volumes") or []]
    for claim in get(sts, "spec", "volumeClaimTemplates", default=[]):
        volumes = [v for v in volumes if v.get("name") != claim["metadata"]["name"]]
        volumes.append({"name": claim["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim_name(claim, sts, ordinal)}})
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def plan(sts: dict, pods: list[dict], claims: list[dict], now: float) -> StatefulPlan:
    result = StatefulPlan()
    spec = sts.get("spec") or {}
    start = get(spec, "ordinals", "start", default=0)
    replicas = spec.get("replicas", 1)
    ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
    revision = revision_name(sts)
    by_ordinal = {o: p for p in pods if (o := ordinal_of(sts, p)) is not None}
    wanted = range(start, start + replicas)
    existing_claims = {c["metadata"]["name"] for c in claims}

    for ordinal in wanted:
        for template in spec.get("volumeClaimTemplates") or []:
            if claim_name(template, sts, ordinal) not in existing_claims:
                result.create_claims.append(claim_for(sts, template, ordinal))
                existing_claims.add(claim_name(template, sts, ordinal))

    blocked = False
    for ordinal in wanted:
        pod = by_ordinal.get(ordinal)
        if pod is None:
            if not blocked:
                result.create.append(pod_for(sts, ordinal, revision))
                result.events.append(("Normal", "SuccessfulCreate",
                                      f"create Pod {sts['metadata']['name']}-{ordinal} in StatefulSet "
                                      f"{sts['metadata']['name']} successful"))
            blocked = blocked or ordered
            continue
        if podinfo.phase(pod) == "Failed" and not pod["metadata"].get("deletionTimestamp"):
            result.delete.append(pod["metadata"]["name"])  # recreated with the same name next pass
            blocked = blocked or ordered
            continue
        if not healthy(pod):
            blocked = blocked or ordered

    condemned = sorted((o for o in by_ordinal if o not in wanted), reverse=True)
    all_healthy = all(healthy(by_ordinal[o]) for o in wanted if o in by_ordinal) and \
        all(o in by_ordinal for o in wanted)
    for ordinal in condemned:
        pod = by_ordinal[ordinal]
        if pod["metadata"].get("deletionTimestamp"):
            if ordered:
                break  # one at a time: wait for it to go
            continue
        if ordered and not all_healthy:
            break
        result.delete.append(pod["metadata"]["name"])
        if ordered:
            break

    _rolling_update(sts, spec, by_ordinal, wanted, revision, ordered, all_healthy and not condemned, result)
    result.status = _status(sts, by_ordinal, wanted, revision, now)
    return result


def _rolling_update(sts, spec, by_ordinal, wanted, revision, ordered, all_healthy, result) -> None:
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return
    partition = get(strategy, "rollingUpdate", "partition", default=0)
    if any(by_ordinal[o]["metadata"].get("deletionTimestamp") for o in wanted if o in by_ordinal):
        return  # one at a time: a pod being replaced must come back first
    for ordinal in sorted(wanted, reverse=True):
        pod = by_ordinal.get(ordinal)
        if ordinal < partition or pod is None or labels(pod).get(REVISION_LABEL) == revision:
            continue
        if pod["metadata"]["name"] in result.delete:
            return
        if all_healthy:
            result.delete.append(pod["metadata"]["name"])
        return  # highest outdated ordinal first, one at a time


def _status(sts, by_ordinal, wanted, revision, now) -> dict:
    min_ready_s = get(sts, "spec", "minReadySeconds", default=0)
    live = [by_ordinal[o] for o in wanted if o in by_ordinal and not by_ordinal[o]["metadata"].get("deletionTimestamp")]
    updated = [p for p in live if labels(p).get(REVISION_LABEL) == revision]
    current = get(sts, "status", "currentRevision") or revision
    if len(updated) == len(wanted):
        current = revision  # the rollout is done: the update revision becomes the current one
    return {"observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len([p for p in by_ordinal.values() if not p["metadata"].get("deletionTimestamp")]),
            "readyReplicas": sum(1 for p in live if podinfo.is_ready(p)),
            "availableReplicas": sum(1 for p in live if podinfo.is_available(p, min_ready_s, now)),
            "currentReplicas": sum(1 for p in live if labels(p).get(REVISION_LABEL) == current),
            "updatedReplicas": len(updated),
            "currentRevision": current, "updateRevision": revision, "collisionCount": 0}
