"""The two Services every cluster has, and what stands behind them:
- `default/kubernetes` at the first address of the service range, port 443, to the API servers
  (pods reach the API by it, as in Kubernetes, where the API server keeps it);
- `kube-system/kube-dns` at the tenth address, port 53 UDP and TCP, to the `ketch dns` of every
  control plane (where CoreDNS's pods would be).
Neither has a selector; an EndpointSlice each lists the control planes. Every control plane's
`ketch node` writes them (create, or replace what differs): they all write the same thing."""

from __future__ import annotations

import logging

import trio

from orchestrator.client import kubeconfig
from orchestrator.client.api import ENDPOINTSLICES, SERVICES, APIClient, APIStatusError, Unreachable
from orchestrator.lab.config import ClusterConfig

log = logging.getLogger("ketch.node")
PORTS = [("dns", "UDP"), ("dns-tcp", "TCP")]


def api_service(config: ClusterConfig) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": config.api_service_ip, "ports": [
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": config.ports["apiserver"]}]}}


def api_endpoint_slice(config: ClusterConfig) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by": "ketch-node"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [h.address], "conditions": {"ready": True}} for h in config.control_planes],
            "ports": [{"name": "https", "protocol": "TCP", "port": config.ports["apiserver"]}]}


def service(config: ClusterConfig) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
            "spec": {"clusterIP": config.cluster_dns, "ports": [
                {"name": name, "protocol": protocol, "port": 53, "targetPort": config.ports["dns"]}
                for name, protocol in PORTS]}}


def endpoint_slice(config: ClusterConfig) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kube-dns-servers", "namespace": "kube-system",
                         "labels": {"kubernetes.io/service-name": "kube-dns",
                                    "endpointslice.kubernetes.io/managed-by": "ketch-node"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [h.address], "nodeName": h.name, "conditions": {"ready": True}}
                          for h in config.control_planes],
            "ports": [{"name": name, "protocol": protocol, "port": config.ports["dns"]} for name, protocol in PORTS]}


async def _ensure(api: APIClient, res, body: dict) -> None:
    meta = body["metadata"]
    try:
        await api.create(res, meta["namespace"], body)
        return
    except APIStatusError as err:
        if err.code != 409:
            raise
    current = await api.get(res, meta["namespace"], meta["name"])
    if res is SERVICES:
        return  # a Service's clusterIP cannot change; the slice is what follows the control planes
    wanted = {**body, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}
    if {k: current.get(k) for k in ("endpoints", "ports")} != {k: body[k] for k in ("endpoints", "ports")}:
        await api.update(res, wanted)


async def ensure_cluster_services(kubeconfig_path: str, config: ClusterConfig, timeout_s: float = 120.0) -> bool:
    """True once the Service and its slice are in place; False if the API did not take them in time."""
    access = kubeconfig.load(kubeconfig_path)
    async with APIClient(access, timeout_s=10) as api:
        with trio.move_on_after(timeout_s):
            while True:
                try:
                    for res, body in ((SERVICES, api_service(config)), (ENDPOINTSLICES, api_endpoint_slice(config)),
                                      (SERVICES, service(config)), (ENDPOINTSLICES, endpoint_slice(config))):
                        await _ensure(api, res, body)
                    return True
                except (APIStatusError, Unreachable) as err:
                    log.info("event=kube_dns_retry error=%s", err)
                    await trio.sleep(1)
    return False
