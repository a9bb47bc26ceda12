"""A pod's shape, as the scheduler, controllers, kubelet and proxy read it."""

from __future__ import annotations

import collections

from orchestrator.api import conditions, quantity, timestamps
from orchestrator.api.meta import field


def spec(pod: dict) -> dict:
    return pod.get("spec") or {}


def node_name(pod: dict) -> str:
    return spec(pod).get("nodeName") or ""


def phase(pod: dict) -> str:
    return field(pod, "status", "phase", default="")


def pod_ip(pod: dict) -> str:
    return field(pod, "status", "podIP", default="")


def containers(pod: dict) -> list[dict]:
    return spec(pod).get("containers") or []


def init_containers(pod: dict) -> list[dict]:
    return spec(pod).get("initContainers") or []


def ephemeral_containers(pod: dict) -> list[dict]:
    return spec(pod).get("ephemeralContainers") or []


def every_container(pod: dict) -> list[dict]:
    """Init, app and ephemeral containers: every name a pod's logs, exec and attach can take."""
    return init_containers(pod) + containers(pod) + ephemeral_containers(pod)


def container_statuses(pod: dict) -> list[dict]:
    return field(pod, "status", "containerStatuses", default=[])


def tolerations(pod: dict) -> list[dict]:
    return spec(pod).get("tolerations") or []


def affinity(pod: dict, kind: str) -> dict:
    """One of nodeAffinity, podAffinity, podAntiAffinity ({} when absent)."""
    return field(pod, "spec", "affinity", kind, default={})


def is_ready(pod: dict) -> bool:
    return conditions.is_true(pod, "Ready")


def endpoint_hostname(pod: dict, service_name: str) -> str | None:
    """The pod's DNS name under a headless Service (`web-0` of web-0.web.NS.svc): its
    spec.hostname when its spec.subdomain names that Service, as Kubernetes' endpoint controllers set it."""
    hostname = spec(pod).get("hostname")
    return hostname if hostname and spec(pod).get("subdomain") == service_name else None


def is_terminal(pod: dict) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: dict) -> bool:
    """Counted by ReplicaSets: not being deleted and not finished."""
    return not pod["metadata"].get("deletionTimestamp") and not is_terminal(pod)


def ready_since(pod: dict) -> float | None:
    """When the pod became Ready (epoch seconds; 0.0 if unknown), None if it is not Ready."""
    condition = conditions.find(pod, "Ready")
    if not condition or condition.get("status") != "True":
        return None
    since = timestamps.epoch(condition.get("lastTransitionTime"))
    return 0.0 if since is None else since


def is_available(pod: dict, min_ready_s: float, now: float) -> bool:
    """Active and Ready for at least minReadySeconds (Kubernetes' podutil.IsPodAvailable)."""
    since = ready_since(pod)
    return is_active(pod) and since is not None and since + min_ready_s <= now


def requests(pod: dict) -> dict[str, int]:
    """cpu (millicores), memory and the rest summed over the containers, the largest init
    container counted instead where it asks for more (init containers run one at a time), and
    pods: 1. Memoized on the pod object, which informer caches never change in place."""
    cached = pod.get("_requests")
    if cached is not None:
        return cached
    total: dict[str, int] = collections.Counter()
    for container in containers(pod):
        total.update(quantity.resources(field(container, "resources", "requests")))
    for container in init_containers(pod):
        for name, value in quantity.resources(field(container, "resources", "requests")).items():
            total[name] = max(total[name], value)
    total["pods"] = 1
    pod["_requests"] = dict(total)
    return pod["_requests"]
