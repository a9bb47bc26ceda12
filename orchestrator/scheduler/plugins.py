"""Scheduler plugins, each Kubernetes' namesake in behaviour and in the reasons it gives."""

from __future__ import annotations

import collections
import math

from orchestrator.api import pods
from orchestrator.api.pods import requests as pod_requests
from orchestrator.api.scheduling import node_term_matches, tolerates
from orchestrator.api.selectors import selector_requirements
from orchestrator.scheduler.framework import (
    SKIP,
    CycleState,
    NodeInfo,
    affinity_terms,
    nonzero_requests,
)
from orchestrator.scheduler.volumebinding import VolumeBinding, VolumeObjects


def _selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); none matches nothing."""
    return selector is not None and all(r.matches(labels) for r in selector_requirements(selector))


class NodeName:
    name = "NodeName"

    def prefilter(self, state, pod, nodes):
        return None if pods.node_name(pod) else SKIP

    def filter(self, state: CycleState, pod: dict, info: NodeInfo):
        wanted = pods.node_name(pod)
        return "node(s) didn't match the requested node name" if wanted and wanted != info.name else None


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def filter(self, state, pod, info):
        if not info.unschedulable:
            return None
        taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
        return None if tolerates(pods.tolerations(pod), taint) else "node(s) were unschedulable"


class TaintToleration:
    name, weight = "TaintToleration", 3

    def filter(self, state, pod, info):
        if not info.taints:
            return None
        tolerations = pods.tolerations(pod)
        for taint in info.taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
                shown = f"{taint.get('key')}: {taint.get('value')}" if taint.get("value") else taint.get("key")
                return f"node(s) had untolerated taint {{{shown}}}"
        return None

    def prescore(self, state, pod, feasible):
        return None if any(info.taints for info in feasible) else SKIP

    def score(self, state, pod, info):
        if not info.taints:
            return 100
        tolerations = pods.tolerations(pod)
        bad = sum(1 for t in info.taints
                  if t.get("effect") == "PreferNoSchedule" and not tolerates(tolerations, t))
        return max(0, 100 - 50 * bad)


class NodeAffinity:
    name, weight = "NodeAffinity", 2

    def prefilter(self, state, pod, nodes):
        spec = pod.get("spec") or {}
        node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
        return None if spec.get("nodeSelector") or node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") \
            else SKIP

    def filter(self, state, pod, info):
        spec = pod.get("spec") or {}
        labels = info.labels
        if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
            return "node(s) didn't match Pod's node affinity/selector"
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
        if required and not any(node_term_matches(term, info.node) for term in required):
            return "node(s) didn't match Pod's node affinity/selector"
        return None

    def prescore(self, state, pod, feasible):
        state.data["preferred"] = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}) \
            .get("preferredDuringSchedulingIgnoredDuringExecution") or []
        return None if state.data["preferred"] else SKIP

    def score(self, state, pod, info):
        return sum(p.get("weight", 0) for p in state.data["preferred"]
                   if node_term_matches(p.get("preference") or {}, info.node))

    def normalize(self, scores):
        top = max(scores) or 1
        return [100 * value // top for value in scores]


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def prefilter(self, state, pod, nodes):
        state.data["requests"] = pod_requests(pod)

    def filter(self, state, pod, info):
        reasons = []
        for resource, wanted in state.data["requests"].items():
            if wanted <= 0:
                continue
            free = info.allocatable.get(resource, 0) - info.requested.get(resource, 0)
            if wanted > free:
                reasons.append("Too many pods" if resource == "pods" else f"Insufficient {resource}")
        return reasons or None


def _node_fractions(state, pod: dict, feasible: list[NodeInfo]) -> None:
    """Each feasible node's cpu and memory share taken with the pod on it, once per cycle for
    both resource scorers."""
    if "fractions" in state.data:
        return
    requests = nonzero_requests(pod_requests(pod))
    fractions = state.data["fractions"] = {}
    for info in feasible:
        out = []
        for resource in ("cpu", "memory"):
            allocatable = info.allocatable.get(resource, 0)
            if allocatable > 0:
                out.append(min(1.0, (info.nonzero[resource] + requests[resource]) / allocatable))
        fractions[info.name] = out


class LeastAllocated:
    name = "NodeResourcesLeastAllocated"

    def prescore(self, state, pod, feasible):
        _node_fractions(state, pod, feasible)

    def score(self, state, pod, info):
        fractions = state.data["fractions"][info.name]
        return int(100 * (1 - sum(fractions) / len(fractions))) if fractions else 0


class BalancedAllocation:
    name = "NodeResourcesBalancedAllocation"

    def prescore(self, state, pod, feasible):
        _node_fractions(state, pod, feasible)

    def score(self, state, pod, info):
        fractions = state.data["fractions"][info.name]
        if len(fractions) < 2:
            return 100
        if len(fractions) == 2:  # cpu and memory: the standard deviation of two values
            deviation = abs(fractions[0] - fractions[1]) / 2
        else:
            mean = sum(fractions) / len(fractions)  # statistics.pstdev is exact (Fractions) and slow here
            deviation = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
        return int(100 * (1 - deviation))


def _term_namespaces(term: dict, pod: dict) -> set[str]:
    return set(term.get("namespaces") or [pod["metadata"].get("namespace")])


class InterPodAffinity:
    """Required pod affinity and anti-affinity, both ways (an existing pod's anti-affinity keeps
    the new pod away too), per topology domain."""
    name = "InterPodAffinity"

    def prefilter(self, state, pod, nodes):
        domain_of = {}  # (topologyKey, node name) -> value
        pods_by_domain: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
        anti_by_domain: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)  # their anti-affinity
        keys = {t.get("topologyKey") for kind in ("podAffinity", "podAntiAffinity") for t in affinity_terms(pod, kind)}
        keys |= {t.get("topologyKey") for info in nodes for p in info.anti_affinity_pods
                 for t in affinity_terms(p, "podAntiAffinity")}
        if not keys:
            state.data["affinity"] = None  # no term on either side: nothing to check on any node
            return SKIP
        for info in nodes:
            for key in keys:
                if key in info.labels:
                    domain_of[(key, info.name)] = info.labels[key]
                    pods_by_domain[(key, info.labels[key])].extend(info.pods)
                    anti_by_domain[(key, info.labels[key])].extend(info.anti_affinity_pods)
        state.data["affinity"] = (domain_of, pods_by_domain, anti_by_domain)

    def filter(self, state, pod, info):
        if state.data["affinity"] is None:
            return None
        domain_of, pods_by_domain, anti_by_domain = state.data["affinity"]
        labels = pod["metadata"].get("labels") or {}
        for term in affinity_terms(pod, "podAntiAffinity"):
            value = domain_of.get((term.get("topologyKey"), info.name))
            if value is not None and any(
                p["metadata"].get("namespace") in _term_namespaces(term, pod)
                and _selector_matches(term.get("labelSelector"), p["metadata"].get("labels") or {})
                for p in pods_by_domain[(term.get("topologyKey"), value)]
            ):
                return "node(s) didn't match pod anti-affinity rules"
        for key_value, members in anti_by_domain.items():
            for existing in members:
                for term in affinity_terms(existing, "podAntiAffinity"):
                    if (
                        term.get("topologyKey") != key_value[0]
                        or domain_of.get((key_value[0], info.name)) != key_value[1]
                    ):
                        continue
                    if pod["metadata"].get("namespace") in _term_namespaces(term, existing) and _selector_matches(
                        term.get("labelSelector"), labels
                    ):
                        return "node(s) didn't match pod anti-affinity rules"
        for term in affinity_terms(pod, "podAffinity"):
            value = domain_of.get((term.get("topologyKey"), info.name))
            matches = value is not None and any(
                p["metadata"].get("namespace") in _term_namespaces(term, pod)
                and _selector_matches(term.get("labelSelector"), p["metadata"].get("labels") or {})
                for p in pods_by_domain[(term.get("topologyKey"), value)]
            )
            self_match = _selector_matches(term.get("labelSelector"), labels)  # the first pod of a group
            if not matches and not (self_match and not any(pods_by_domain.values())):
                return "node(s) didn't match pod affinity rules"
        return None


class PodTopologySpread:
    """topologySpreadConstraints: DoNotSchedule filters on maxSkew, ScheduleAnyway scores. Pods a
    controller owns and that have no constraints are spread softly over hostname and zone, as
    Kubernetes' default constraints do."""

    name, weight = "PodTopologySpread", 2
    DEFAULTS = [("kubernetes.io/hostname", 3), ("topology.kubernetes.io/zone", 5)]

    def prefilter(self, state, pod, nodes):
        constraints = (pod.get("spec") or {}).get("topologySpreadConstraints") or []
        counts = {}
        namespace = pod["metadata"].get("namespace")
        for constraint in constraints:
            key = constraint.get("topologyKey")
            domains = collections.Counter()
            for info in nodes:
                if key not in info.labels:
                    continue
                domains[info.labels[key]] += sum(
                    1
                    for p in info.pods
                    if p["metadata"].get("namespace") == namespace
                    and _selector_matches(constraint.get("labelSelector"), p["metadata"].get("labels") or {})
                )
            counts[id(constraint)] = domains
        state.data["spread"] = (constraints, counts)
        owner = next((o.get("uid") for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
        siblings = {}
        if owner and not constraints:
            siblings = {key: collections.Counter() for key, _ in self.DEFAULTS}
            for info in nodes:
                count = info.owners.get(owner)
                if count:
                    for key, domains in siblings.items():
                        if key in info.labels:
                            domains[info.labels[key]] += count
        state.data["siblings"] = siblings
        hard = any(c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule" for c in constraints)
        return None if hard else SKIP

    def filter(self, state, pod, info):
        constraints, counts = state.data["spread"]
        for constraint in constraints:
            if constraint.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
                continue
            key = constraint.get("topologyKey")
            if key not in info.labels:
                return "node(s) didn't match pod topology spread constraints (missing required label)"
            domains = counts[id(constraint)]
            if domains[info.labels[key]] + 1 - min(domains.values(), default=0) > constraint.get("maxSkew", 1):
                return "node(s) didn't match pod topology spread constraints"
        return None

    def prescore(self, state, pod, feasible):
        constraints, _ = state.data["spread"]
        soft = any(c.get("whenUnsatisfiable") == "ScheduleAnyway" for c in constraints)
        return None if soft or state.data["siblings"] else SKIP

    def score(self, state, pod, info):
        constraints, counts = state.data["spread"]
        penalty = 0
        for constraint in constraints:
            key = constraint.get("topologyKey")
            if constraint.get("whenUnsatisfiable") == "ScheduleAnyway" and key in info.labels:
                penalty += counts[id(constraint)][info.labels[key]]
        for key, weight in self.DEFAULTS:
            if key in state.data["siblings"] and key in info.labels:
                penalty += weight * state.data["siblings"][key][info.labels[key]]
        return -penalty

    def normalize(self, scores):
        low, high = min(scores), max(scores)
        return [100 if high == low else int(100 * (value - low) / (high - low)) for value in scores]


def default_plugins(volume_objects: VolumeObjects | None = None) -> list:
    """Kubernetes' default profile; with volume_objects (claims, volumes, classes), VolumeBinding too."""
    return [
        NodeName(),
        NodeUnschedulable(),
        TaintToleration(),
        *([VolumeBinding(volume_objects)] if volume_objects is not None else []),
        NodeAffinity(),
        NodeResourcesFit(),
        InterPodAffinity(),
        PodTopologySpread(),
        LeastAllocated(),
        BalancedAllocation(),
    ]
