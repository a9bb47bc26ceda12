"""The scheduling framework (pure): a pod, the nodes as NodeInfo, plugins at extension points.

A cycle runs PreFilter (once per pod), Filter (per node: any plugin may reject it with a
reason), Score (per feasible node, 0..100 times the plugin's weight) and picks the highest
total. When no node fits, the reasons are counted as kube-scheduler does, and the message is
kubectl describe's "0/3 nodes are available: 3 Insufficient cpu." Reserve and Bind are the
scheduler's own steps (scheduler.py): the pod is assumed on its node in the cache at once, and
bound in the background.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.api import quantity
from orchestrator.api.nodes import is_unschedulable
from orchestrator.api.nodes import taints as node_taints
from orchestrator.api.pods import requests as pod_requests

DEFAULT_MILLI_CPU, DEFAULT_MEMORY = 100, 200 * 1024 * 1024  # what scoring assumes for "no request"


def nonzero_requests(requests: dict[str, int]) -> dict[str, int]:
    """What scoring counts: a pod without a cpu or memory request still takes the defaults."""
    return {"cpu": requests.get("cpu") or DEFAULT_MILLI_CPU, "memory": requests.get("memory") or DEFAULT_MEMORY}


def affinity_terms(pod: dict, kind: str) -> list[dict]:
    """The pod's required terms of kind podAffinity or podAntiAffinity."""
    return ((((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {})
            .get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def owner_uids(pod: dict) -> set[str]:
    return {o["uid"] for o in pod["metadata"].get("ownerReferences") or [] if o.get("uid")}


@dataclass
class NodeInfo:
    """A node and the pods on it, with what a scheduling cycle reads of them kept at hand (the
    name, labels and allocatable are plain attributes: a cycle reads them for every node)."""
    node: dict
    pods: list[dict] = field(default_factory=list)
    requested: collections.Counter = field(default_factory=collections.Counter)
    nonzero: collections.Counter = field(default_factory=collections.Counter)  # requests with the defaults
    # pods with required anti-affinity, as Kubernetes' NodeInfo keeps them: a cycle checks these
    # against the new pod instead of every pod in the cluster
    anti_affinity_pods: list[dict] = field(default_factory=list)
    owners: collections.Counter = field(default_factory=collections.Counter)  # owner uid -> pods here it owns

    def __post_init__(self) -> None:
        self.set_node(self.node)

    def set_node(self, node: dict) -> None:
        self.node = node
        self.name: str = node["metadata"]["name"]
        self.labels: dict[str, str] = node["metadata"].get("labels") or {}
        self.allocatable = quantity.resources((node.get("status") or {}).get("allocatable"))
        self.unschedulable = is_unschedulable(node)
        self.taints: list[dict] = node_taints(node)

    def add_pod(self, pod: dict) -> None:
        requests = pod_requests(pod)
        self.pods.append(pod)
        self.requested.update(requests)
        self.nonzero.update(nonzero_requests(requests))
        self.owners.update(owner_uids(pod))
        if affinity_terms(pod, "podAntiAffinity"):
            self.anti_affinity_pods.append(pod)

    def remove_pod(self, uid: str) -> None:
        for i, pod in enumerate(self.pods):
            if pod["metadata"]["uid"] == uid:
                requests = pod_requests(pod)
                self.requested.subtract(requests)
                self.nonzero.subtract(nonzero_requests(requests))
                for owner in owner_uids(pod):
                    self.owners[owner] -= 1
                    if self.owners[owner] <= 0:
                        del self.owners[owner]
                del self.pods[i]
                self.anti_affinity_pods = [p for p in self.anti_affinity_pods if p["metadata"]["uid"] != uid]
                return


UNSCHEDULABLE = "Unschedulable"


@dataclass
class CycleState:
    """Data a PreFilter computes once per pod for its Filter and Score."""
    data: dict[str, Any] = field(default_factory=dict)


class Plugin(Protocol):
    name: str


@dataclass
class ScheduleResult:
    node: str | None
    feasible: int
    evaluated: int
    reasons: collections.Counter
    scores: dict[str, int] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """kube-scheduler's FitError text: "0/3 nodes are available: 1 ..., 2 Insufficient cpu." """
        parts = sorted(f"{count} {reason}" for reason, count in self.reasons.items())
        return f"0/{self.evaluated} nodes are available: {', '.join(parts)}."


def feasible_nodes_to_find(total: int) -> int:
    """kube-scheduler's adaptive percentageOfNodesToScore: every node up to 100, then a share
    that falls from 50% as clusters grow (never under 5%, never under 100 nodes)."""
    if total <= 100:
        return total
    percent = max(5, 50 - total // 125)
    return max(100, total * percent // 100)


SKIP = "Skip"  # from prefilter: this plugin's Filter has nothing to check for the pod; from prescore: its Score


@dataclass
class Framework:
    """Plugins in order; each may have prefilter, filter, prescore, score (with `weight` and
    `normalize`). As kube-scheduler's PreFilter and PreScore may answer Skip, a plugin whose
    check cannot matter for this pod (no affinity term, no spread constraint, no preferred
    term) is left out of the per-node loops, which are most of a cycle's time."""
    plugins: list
    next_start: int = 0  # where the next search begins, so every node gets its turn

    def __post_init__(self) -> None:
        self.prefilters = [p for p in self.plugins if hasattr(p, "prefilter")]
        self.filters = [p for p in self.plugins if hasattr(p, "filter")]
        self.scorers = [p for p in self.plugins if hasattr(p, "score")]

    def schedule(self, pod: dict, nodes: list[NodeInfo]) -> ScheduleResult:
        state = CycleState()
        skipped = {p.name for p in self.prefilters if p.prefilter(state, pod, nodes) == SKIP}
        filters = [p.filter for p in self.filters if p.name not in skipped]
        feasible, reasons = [], collections.Counter()
        wanted = feasible_nodes_to_find(len(nodes))
        start = self.next_start % len(nodes) if nodes else 0
        searched = 0
        for info in itertools.chain(nodes[start:], nodes[:start]):
            if len(feasible) >= wanted:
                break
            searched += 1
            failed = None
            for check in filters:
                failed = check(state, pod, info)
                if failed:
                    break
            if failed:
                for reason in failed if isinstance(failed, list) else [failed]:
                    reasons[reason] += 1
            else:
                feasible.append(info)
        self.next_start = start + searched
        if not feasible:
            return ScheduleResult(None, 0, len(nodes), reasons)
        totals = [0] * len(feasible)
        for plugin in self.scorers:
            if hasattr(plugin, "prescore") and plugin.prescore(state, pod, feasible) == SKIP:
                continue  # the same score for every node: it cannot change the choice
            raw = [plugin.score(state, pod, info) for info in feasible]
            if hasattr(plugin, "normalize"):
                raw = plugin.normalize(raw)
            weight = getattr(plugin, "weight", 1)
            totals = [total + value * weight for total, value in zip(totals, raw, strict=True)]
        best = max(range(len(feasible)), key=lambda i: (totals[i], -len(feasible[i].pods), feasible[i].name))
        return ScheduleResult(feasible[best].name, len(feasible), len(nodes), reasons,
                              {info.name: total for info, total in zip(feasible, totals, strict=True)})
