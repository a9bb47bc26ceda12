"""Endpoints and EndpointSlices: for each Service with a selector, the IPs of its pods, ready and
not ready, with the service's ports resolved to the pods' (by number, or by container port name)."""

from __future__ import annotations

from orchestrator.api import pods
from orchestrator.api.meta import split_key
from orchestrator.api.pods import is_ready
from orchestrator.api.selectors import labels_match, selector_requirements
from orchestrator.client.api import (
    ENDPOINTS,
    ENDPOINTSLICES,
    PODS,
    SERVICES,
    APIStatusError,
)
from orchestrator.controllers.base import Controller

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def target_port(service_port: dict, pod: dict) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in pods.containers(pod):
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return port.get("containerPort")
    return None


class EndpointsController(Controller):
    name = "endpoints"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.services = ctx.informers.informer(SERVICES)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_index("namespace", lambda p: [p["metadata"]["namespace"]])
        self.services.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_event, self._pod_changed, self._pod_event)

    def _pod_changed(self, old: dict, new: dict) -> None:
        self._pod_event(old)
        self._pod_event(new)

    def _pod_event(self, pod: dict) -> None:
        namespace = pod["metadata"]["namespace"]
        for service in self.services.items():
            selector = (service.get("spec") or {}).get("selector")
            if service["metadata"]["namespace"] == namespace and selector and \
                    labels_match(selector_requirements({"matchLabels": selector}), pod):
                self.enqueue(service)

    def members(self, service: dict) -> list[dict]:
        selector = (service.get("spec") or {}).get("selector") or {}
        requirements = selector_requirements({"matchLabels": selector})
        return [p for p in self.pods.by_index("namespace", service["metadata"]["namespace"])
                if labels_match(requirements, p) and pods.pod_ip(p) and not pods.is_terminal(p)]

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        if service is None or not (service.get("spec") or {}).get("selector"):
            return  # deleted (the garbage collector removes what it owned) or without a selector
        members = sorted(self.members(service), key=lambda p: p["metadata"]["name"])
        ports = (service.get("spec") or {}).get("ports") or []
        subsets: dict[tuple, dict] = {}
        slice_ports, endpoints = {}, []
        for pod in members:
            resolved = tuple((p.get("name", ""), target_port(p, pod), p.get("protocol", "TCP")) for p in ports)
            if any(number is None for _, number, _ in resolved):
                continue
            ready = is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
            address = {"ip": pod["status"]["podIP"], "nodeName": pods.node_name(pod),
                       "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod["metadata"]["name"],
                                     "uid": pod["metadata"]["uid"]}}
            hostname = pods.endpoint_hostname(pod, name)
            if hostname:
                address["hostname"] = hostname
            subset = subsets.setdefault(resolved, {"addresses": [], "notReadyAddresses": [],
                                                   "ports": [{"name": n, "port": number, "protocol": proto}
                                                             for n, number, proto in resolved]})
            subset["addresses" if ready else "notReadyAddresses"].append(address)
            for n, number, proto in resolved:
                slice_ports[(n, number, proto)] = {"name": n, "port": number, "protocol": proto}
            endpoints.append({"addresses": [pod["status"]["podIP"]],
                              "conditions": {"ready": ready, "serving": is_ready(pod),
                                             "terminating": bool(pod["metadata"].get("deletionTimestamp"))},
                              "nodeName": address["nodeName"], "targetRef": address["targetRef"],
                              **({"hostname": hostname} if hostname else {})})
        owner = [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": service["metadata"]["uid"],
                  "controller": True, "blockOwnerDeletion": True}]
        cleaned = [{k: v for k, v in s.items() if v} for s in subsets.values()]
        await self.apply(ENDPOINTS, namespace, name, {"metadata": {"name": name, "namespace": namespace,
                                                                   "labels": {SERVICE_NAME_LABEL: name}},
                                                      "subsets": cleaned})
        await self.apply(ENDPOINTSLICES, namespace, f"{name}-ketch", {
            "metadata": {"name": f"{name}-ketch", "namespace": namespace, "labels": {
                SERVICE_NAME_LABEL: name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.ketch"},
                "ownerReferences": owner},
            "addressType": "IPv4", "endpoints": endpoints, "ports": list(slice_ports.values())})

    async def apply(self, resource, namespace: str, name: str, body: dict) -> None:
        """Create, or replace what differs (level-triggered: the body is the whole truth)."""
        try:
            current = await self.api.get(resource, namespace, name)
        except APIStatusError as err:
            if err.code != 404:
                raise
            await self.api.create(resource, namespace, body)
            return
        fields = [k for k in body if k != "metadata"]
        if all(current.get(k) == body[k] for k in fields):
            return
        current.update({k: body[k] for k in fields})
        current["metadata"].setdefault("labels", {}).update(body["metadata"].get("labels") or {})
        await self.api.update(resource, current)
