"""Which pods may go on which nodes: taints and tolerations, node selectors and node affinity.
Shared by the scheduler's filters, node lifecycle eviction and the DaemonSet controller."""

from __future__ import annotations

from orchestrator.api import nodes, pods
from orchestrator.api.meta import field, labels


def toleration_matches(toleration: dict, taint: dict) -> bool:
    """Kubernetes' Toleration.ToleratesTaint: effect (empty matches all), then Exists (empty key
    matches every key) or Equal on key and value."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", "")


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    return any(toleration_matches(t, taint) for t in tolerations or [])


def untolerated_taint(pod: dict, node: dict, effects=("NoSchedule", "NoExecute")) -> dict | None:
    """The first taint of the node with one of `effects` that the pod does not tolerate."""
    tolerations = pods.tolerations(pod)
    return next((t for t in nodes.taints(node) if t.get("effect") in effects and not tolerates(tolerations, t)), None)


def toleration_seconds(tolerations: list[dict], taint: dict, default_s: float | None) -> float | None:
    """For how long a NoExecute taint is tolerated: None for ever, `default_s` when no toleration matches."""
    for toleration in tolerations or []:
        if toleration_matches(toleration, taint):
            seconds = toleration.get("tolerationSeconds")
            return None if seconds is None else float(seconds)
    return default_s


def node_term_matches(term: dict, node: dict) -> bool:
    """One NodeSelectorTerm: every matchExpression on labels and matchField on metadata.name holds."""
    node_labels = labels(node)
    for expression in term.get("matchExpressions") or []:
        key, op, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        value = node_labels.get(key)
        ok = {
            "In": value in values,
            "NotIn": value not in values,
            "Exists": key in node_labels,
            "DoesNotExist": key not in node_labels,
            "Gt": value is not None and value.isdigit() and bool(values) and int(value) > int(values[0]),
            "Lt": value is not None and value.isdigit() and bool(values) and int(value) < int(values[0]),
        }.get(op, False)
        if not ok:
            return False
    for expression in term.get("matchFields") or []:
        if expression.get("key") == "metadata.name":
            inside = node["metadata"]["name"] in (expression.get("values") or [])
            if (expression.get("operator") == "In") != inside:
                return False
    return bool(term.get("matchExpressions") or term.get("matchFields"))


def node_selected(pod: dict, node: dict) -> bool:
    """nodeSelector and required node affinity (any of its terms) both hold."""
    node_labels = labels(node)
    if any(node_labels.get(k) != v for k, v in (pods.spec(pod).get("nodeSelector") or {}).items()):
        return False
    terms = field(
        pods.affinity(pod, "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"
    )
    return not terms or any(node_term_matches(term, node) for term in terms)
