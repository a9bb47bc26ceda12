"""Label and field selectors, parsed once per request and matched against objects.

Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`, comma-ANDed.
Field selectors: `path=v`, `path==v`, `path!=v` on the fields each kind supports (as Kubernetes:
metadata.name and metadata.namespace everywhere, and per kind the ones kubectl, the kubelet and
the scheduler use). An unsupported field is a SelectorError (the API server's 400, as in Kubernetes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message is Kubernetes' (the API server answers 400 with it)."""


_SET_EXPR = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value in self.values
        if self.op == "!=":
            return not present or value not in self.values
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # !exists


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    requirements = []
    for part in _split_top_level(text):
        if match := _SET_EXPR.match(part):
            values = frozenset(v.strip() for v in match.group(3).split(",") if v.strip())
            requirements.append(Requirement(match.group(1), match.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append(Requirement(_label_key(key), "!=", frozenset([value.strip()])))
        elif "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            requirements.append(Requirement(_label_key(key), "=", frozenset([value.strip()])))
        elif part.startswith("!"):
            requirements.append(Requirement(_label_key(part[1:]), "!exists"))
        else:
            requirements.append(Requirement(_label_key(part), "exists"))
    return requirements


def _label_key(text: str) -> str:
    key = text.strip()
    if not key or any(c in key for c in " ()!=,"):
        raise SelectorError(f"unable to parse requirement: invalid label key {text!r}")
    return key


_EXPRESSION_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def selector_requirements(selector: dict) -> list[Requirement]:
    """A LabelSelector object (matchLabels and matchExpressions, as in Deployments, affinity
    terms and spread constraints) as requirements. A Service's plain map is {"matchLabels": map}."""
    out = [Requirement(k, "=", frozenset([v])) for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        out.append(Requirement(expression.get("key"), _EXPRESSION_OPS.get(expression.get("operator"), "exists"),
                               frozenset(expression.get("values") or [])))
    return out


def labels_match(requirements: list[Requirement], obj: dict) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def _path(*keys: str) -> Callable[[dict], Any]:
    def get(obj: dict) -> Any:
        for key in keys:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj
    return get


_COMMON = {"metadata.name": _path("metadata", "name"), "metadata.namespace": _path("metadata", "namespace")}
FIELDS: dict[str, dict[str, Callable[[dict], Any]]] = {
    "Pod": {"spec.nodeName": _path("spec", "nodeName"), "status.phase": _path("status", "phase"),
            "spec.restartPolicy": _path("spec", "restartPolicy"),
            "spec.schedulerName": _path("spec", "schedulerName"),
            "spec.serviceAccountName": _path("spec", "serviceAccountName"),
            "status.podIP": _path("status", "podIP")},
    "Event": {f"involvedObject.{f}": _path("involvedObject", f)
              for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
             | {"reason": _path("reason"), "type": _path("type"), "source": _path("source", "component")},
    "Node": {"spec.unschedulable": _path("spec", "unschedulable")},
    "Namespace": {"status.phase": _path("status", "phase")},
    "ReplicaSet": {"status.replicas": _path("status", "replicas")},
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negated: bool
    value: str
    get: Callable[[dict], Any]

    def matches(self, obj: dict) -> bool:
        actual = self.get(obj)
        text = "" if actual is None else (str(actual).lower() if isinstance(actual, bool) else str(actual))
        return (text != self.value) if self.negated else (text == self.value)


def parse_field_selector(text: str | None, kind: str) -> list[FieldRequirement]:
    if not text:
        return []
    known = {**_COMMON, **FIELDS.get(kind, {})}
    out = []
    for part in _split_top_level(text):
        if "!=" in part:
            field, value = part.split("!=", 1)
            negated = True
        elif "=" in part:
            field, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            negated = False
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field = field.strip()
        if field not in known:
            raise SelectorError(f'field label not supported: {field}')
        out.append(FieldRequirement(field, negated, value.strip(), known[field]))
    return out


def fields_match(requirements: list[FieldRequirement], obj: dict) -> bool:
    return all(r.matches(obj) for r in requirements)
