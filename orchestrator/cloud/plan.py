"""The lab cloud controller's decisions (pure): Services, Nodes and the lab's hosts in, changes out.

- **LoadBalancer Services** get the lowest free address of the lab's pool (`lb_pool`), kept for
  as long as the Service stays a LoadBalancer; the address is announced by one Ready worker,
  picked by a stable hash of the Service among the Ready workers (the `ketch.dev/lb-announcer`
  annotation tells that worker's proxy to add the address to its interface and program it, as
  MetalLB's layer-2 mode does). When the announcer stops being Ready, another one takes over.
- **Nodes** get their addresses and `topology.kubernetes.io/zone` / `region` labels from the
  host list; a Node whose host is no longer in the list is deleted (the cloud's "instance gone").
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from orchestrator.api import nodes as nodeinfo
from orchestrator.api.meta import annotations, labels
from orchestrator.api.meta import field as get
from orchestrator.api.services import LB_ANNOUNCER

ANNOUNCER = LB_ANNOUNCER
ZONE, REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    zone: str
    worker: bool


@dataclass
class CloudPlan:
    service_status: list[tuple[str, str, dict]] = field(default_factory=list)   # (ns, name, status patch)
    service_annotations: list[tuple[str, str, dict]] = field(default_factory=list)
    node_patches: list[tuple[str, dict]] = field(default_factory=list)         # metadata (labels)
    node_status: list[tuple[str, dict]] = field(default_factory=list)          # status (addresses), when missing
    delete_nodes: list[str] = field(default_factory=list)
    events: list[tuple[dict, str, str, str, str]] = field(default_factory=list)


def lb_address(service: dict) -> str:
    ingress = get(service, "status", "loadBalancer", "ingress", default=[])
    return ingress[0].get("ip", "") if ingress else ""


def announcer_for(key: str, ready_workers: list[str]) -> str:
    """Rendezvous hashing: each Service keeps its worker while that worker stays Ready."""
    if not ready_workers:
        return ""
    return max(ready_workers, key=lambda w: hashlib.sha256(f"{key}/{w}".encode()).hexdigest())


def plan(services: list[dict], nodes: list[dict], hosts: list[LabHost], pool: str, region: str) -> CloudPlan:
    result = CloudPlan()
    network = ipaddress.ip_network(pool) if pool else None
    ready_workers = sorted(n["metadata"]["name"] for n in nodes if nodeinfo.is_ready(n)
                           and any(h.name == n["metadata"]["name"] and h.worker for h in hosts))
    balanced = [s for s in services if get(s, "spec", "type") == "LoadBalancer"]
    taken = {lb_address(s) for s in balanced if lb_address(s)}
    free = [str(a) for a in (network.hosts() if network else []) if str(a) not in taken]
    for service in sorted(balanced, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        meta = service["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        address = lb_address(service)
        if not address:
            if not free:
                result.events.append((service, "Service", "Warning", "SyncLoadBalancerFailed",
                                      f"the lab's LoadBalancer pool {pool or '(none)'} has no free address"))
                continue
            address = free.pop(0)
            result.service_status.append((meta["namespace"], meta["name"],
                                          {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}))
            result.events.append(
                (service, "Service", "Normal", "EnsuredLoadBalancer", f"Ensured load balancer {address}")
            )
        announcer = announcer_for(key, ready_workers)
        if announcer and annotations(service).get(ANNOUNCER) != announcer:
            result.service_annotations.append((meta["namespace"], meta["name"], {ANNOUNCER: announcer}))
    for service in services:  # a Service that stopped being a LoadBalancer gives its address back
        if get(service, "spec", "type") != "LoadBalancer" and lb_address(service):
            meta = service["metadata"]
            result.service_status.append((meta["namespace"], meta["name"], {"loadBalancer": {}}))
            if ANNOUNCER in annotations(service):
                result.service_annotations.append((meta["namespace"], meta["name"], {ANNOUNCER: None}))
    by_name = {h.name: h for h in hosts}
    for node in nodes:
        name = node["metadata"]["name"]
        host = by_name.get(name)
        if host is None:
            if labels(node).get("type") != "hollow":  # hollow nodes are simulated, not lab hosts
                result.delete_nodes.append(name)
            continue
        wanted_labels = {REGION: region}
        if host.zone:
            wanted_labels[ZONE] = host.zone
        if any(labels(node).get(k) != v for k, v in wanted_labels.items()):
            result.node_patches.append((name, {"metadata": {"labels": wanted_labels}}))
        if not nodeinfo.addresses(node).get("InternalIP"):  # the kubelet's --node-ip wins when it set one
            result.node_status.append(
                (
                    name,
                    {
                        "addresses": [
                            {"type": "InternalIP", "address": host.address},
                            {"type": "Hostname", "address": name},
                        ]
                    },
                )
            )
    return result
