"""A node's shape: conditions, taints, addresses, the pod CIDR and the kubelet's endpoint."""

from __future__ import annotations

from orchestrator.api import conditions, quantity
from orchestrator.api.meta import field

KUBELET_PORT = 10250


def is_ready(node: dict) -> bool:
    return conditions.is_true(node, "Ready")


def taints(node: dict) -> list[dict]:
    return field(node, "spec", "taints", default=[])


def is_unschedulable(node: dict) -> bool:
    return bool(field(node, "spec", "unschedulable"))


def pod_cidr(node: dict) -> str:
    return field(node, "spec", "podCIDR", default="")


def allocatable(node: dict) -> dict[str, int]:
    return quantity.resources(field(node, "status", "allocatable"))


def addresses(node: dict) -> dict[str, str]:
    """type -> address (InternalIP, ExternalIP, Hostname), the first of each type."""
    out: dict[str, str] = {}
    for entry in field(node, "status", "addresses", default=[]):
        out.setdefault(entry.get("type"), entry.get("address"))
    return out


def internal_ip(node: dict) -> str:
    found = addresses(node)
    return found.get("InternalIP") or found.get("Hostname") or ""


def kubelet_port(node: dict) -> int:
    return int(field(node, "status", "daemonEndpoints", "kubeletEndpoint", "Port", default=KUBELET_PORT))
