"""Has the cluster converged? (pure) What a chaos run checks once its faults are healed.

Given what the API holds (Deployments, ReplicaSets, pods, Services, EndpointSlices) and what the
workload was told succeeded (`acked`: names it created and did not delete, names whose deletion
was acknowledged), the problems are:
- an acknowledged Deployment or Service missing, or one whose deletion was acknowledged present;
- a Deployment whose ready replicas or Running pods differ from spec.replicas;
- a ReplicaSet with more or fewer active pods than its spec.replicas (a duplicate or a loss);
- a pod whose controller (ReplicaSet) is gone, or a ReplicaSet whose Deployment is gone (orphans);
- a Service whose ready endpoints are not exactly the IPs of its ready pods.
An empty list means converged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.api import pods as podinfo
from orchestrator.api.meta import controller_of
from orchestrator.api.meta import field as get
from orchestrator.api.selectors import labels_match, selector_requirements


@dataclass
class Acked:
    deployments: set[str] = field(default_factory=set)          # "ns/name" created, not deleted
    services: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)              # "kind:ns/name" whose delete was acknowledged


def key(obj: dict) -> str:
    return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"


def problems(deployments: list[dict], replicasets: list[dict], pods: list[dict], services: list[dict],
             slices: list[dict], acked: Acked, namespace: str | None = None) -> list[str]:
    def ours(obj: dict) -> bool:
        return namespace is None or obj["metadata"].get("namespace") == namespace
    deployments = [d for d in deployments if ours(d) and not d["metadata"].get("deletionTimestamp")]
    replicasets = [r for r in replicasets if ours(r) and not r["metadata"].get("deletionTimestamp")]
    pods = [p for p in pods if ours(p)]
    services = [s for s in services if ours(s)]
    found: list[str] = []
    present = {key(d) for d in deployments}
    for name in sorted(acked.deployments - present):
        found.append(f"deployment {name} was created (acknowledged) but is missing")
    for name in sorted(acked.services - {key(s) for s in services}):
        found.append(f"service {name} was created (acknowledged) but is missing")
    for entry in sorted(acked.deleted):
        kind, _, name = entry.partition(":")
        pool = present if kind == "deployment" else {key(s) for s in services}
        if name in pool:
            found.append(f"{kind} {name} was deleted (acknowledged) but is still there")
    active = [p for p in pods if podinfo.is_active(p)]
    by_owner: dict[str, list[dict]] = {}
    for pod in active:
        ref = controller_of(pod)
        if ref:
            by_owner.setdefault(ref.get("uid", ""), []).append(pod)
    rs_uids = {r["metadata"]["uid"] for r in replicasets}
    dep_uids = {d["metadata"]["uid"] for d in deployments}
    for pod in active:
        ref = controller_of(pod)
        if ref and ref.get("kind") == "ReplicaSet" and ref.get("uid") not in rs_uids:
            found.append(f"pod {key(pod)} is an orphan: its ReplicaSet {ref.get('name')} is gone")
    for rs in replicasets:
        ref = controller_of(rs)
        if ref and ref.get("kind") == "Deployment" and ref.get("uid") not in dep_uids:
            found.append(f"replicaset {key(rs)} is an orphan: its Deployment {ref.get('name')} is gone")
        wanted = get(rs, "spec", "replicas", default=0)
        have = len(by_owner.get(rs["metadata"]["uid"], []))
        if have != wanted:
            found.append(f"replicaset {key(rs)} has {have} active pods for {wanted} replicas")
    for deployment in deployments:
        wanted = get(deployment, "spec", "replicas", default=1)
        owned = [rs for rs in replicasets if (controller_of(rs) or {}).get("uid") == deployment["metadata"]["uid"]]
        running = [p for rs in owned for p in by_owner.get(rs["metadata"]["uid"], [])
                   if podinfo.phase(p) == "Running" and podinfo.is_ready(p)]
        if len(running) != wanted:
            found.append(f"deployment {key(deployment)} has {len(running)} ready Running pods for {wanted} replicas")
    for service in services:
        selector = get(service, "spec", "selector")
        if not selector:
            continue
        requirements = selector_requirements({"matchLabels": selector})
        expected = {podinfo.pod_ip(p) for p in active
                    if p["metadata"].get("namespace") == service["metadata"].get("namespace")
                    and labels_match(requirements, p) and podinfo.is_ready(p) and podinfo.pod_ip(p)}
        ready = set()
        for endpoint_slice in slices:
            if (endpoint_slice["metadata"].get("namespace") == service["metadata"].get("namespace") and
                    (endpoint_slice["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
                    == service["metadata"]["name"]):
                for endpoint in endpoint_slice.get("endpoints") or []:
                    if get(endpoint, "conditions", "ready", default=True):
                        ready.update(endpoint.get("addresses") or [])
        if ready != expected:
            found.append(f"service {key(service)} has ready endpoints {sorted(ready)}, its ready pods are "
                         f"{sorted(expected)}")
    return found
