"""What the proxy knows about Services, EndpointSlices and its node, as plain values (pure).

A Service becomes one `ServicePort` per entry of spec.ports, carrying everything the rules need:
its ClusterIP(s), its external addresses (spec.externalIPs and status.loadBalancer.ingress IPs
alike, as kube-proxy treats them), its NodePort, session affinity and the two traffic policies.
EndpointSlices become `Endpoint`s per service port, matched by the port's name and protocol as
kube-proxy does (an EndpointSlice port with the same name carries the target port number).

Rules kept (Kubernetes API, discovery.k8s.io/v1 EndpointConditions): a nil `ready` or `serving`
counts as true, a nil `terminating` as false; only the first address of an endpoint is used;
headless (clusterIP None) and ExternalName services get no rules; only IPv4 is handled.
Bad objects raise `BadObject` (a `ProxyError`) so the caller can log and skip that one object.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from orchestrator.api.meta import annotations, field, labels

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
DEFAULT_AFFINITY_TIMEOUT_S = 10800  # Kubernetes' default for sessionAffinityConfig.clientIP.timeoutSeconds
PROTOCOLS = ("tcp", "udp", "sctp")


class ProxyError(Exception):
    """Base of the proxy's errors."""


class BadObject(ProxyError):
    """A Service or EndpointSlice the proxy cannot turn into rules (the object is skipped)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False


PortEndpoints = dict[tuple[str, str], tuple[Endpoint, ...]]  # (port name, protocol) -> endpoints


@dataclass(frozen=True, slots=True)
class ServicePort:
    namespace: str
    service: str
    name: str  # the port's name ("" when the service has a single unnamed port)
    protocol: str  # tcp, udp or sctp
    port: int
    cluster_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()  # spec.externalIPs and load balancer ingress IPs
    node_port: int = 0
    affinity_timeout_s: int = 0  # 0: no session affinity
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local

    @property
    def id(self) -> str:
        """namespace/service/protocol/port-name, the readable part of kube-proxy's chain names."""
        return f"{self.namespace}/{self.service}/{self.protocol}/{self.name}"

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.external_ips)


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """The node the rules are for. cluster_cidr tells pod traffic from the rest (kube-proxy's
    detect-local-mode ClusterCIDR); without it, nothing is masqueraded for being off-cluster."""

    name: str
    addresses: tuple[str, ...] = ()
    cluster_cidr: str = ""
    pod_cidr: str = ""


def _ipv4(text: object, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(text)))
    except ValueError:
        raise BadObject(f"{what}: {text!r} is not an IPv4 address") from None


def _is_ipv4(text: object) -> bool:
    try:
        ipaddress.IPv4Address(str(text))
        return True
    except ValueError:
        return False


def _port_number(value: object, what: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (0 if allow_zero else 1) <= value <= 65535:
        raise BadObject(f"{what}: {value!r} is not a port number")
    return value


def _protocol(value: object, what: str) -> str:
    protocol = str(value or "TCP").lower()
    if protocol not in PROTOCOLS:
        raise BadObject(f"{what}: unknown protocol {value!r}")
    return protocol


def service_ports(service: dict) -> tuple[ServicePort, ...]:
    """The ports of one Service object that get rules; () for headless and ExternalName services."""
    namespace, name = field(service, "metadata", "namespace", default=""), field(service, "metadata", "name")
    if not namespace or not name:
        raise BadObject("a Service needs metadata.namespace and metadata.name")
    spec = field(service, "spec", default={})
    what = f"service {namespace}/{name}"
    if spec.get("type") == "ExternalName":
        return ()
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if not cluster_ips or cluster_ips[0] == "None":
        return ()
    ipv4 = tuple(_ipv4(ip, what) for ip in cluster_ips if _is_ipv4(ip))
    if not ipv4:
        return ()  # an IPv6-only service: this proxy programs IPv4 only
    external = [_ipv4(ip, f"{what} externalIPs") for ip in spec.get("externalIPs") or [] if _is_ipv4(ip)]
    for ingress in field(service, "status", "loadBalancer", "ingress", default=[]):
        if isinstance(ingress, dict) and _is_ipv4(ingress.get("ip")):
            external.append(str(ingress["ip"]))
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        affinity = field(spec, "sessionAffinityConfig", "clientIP", "timeoutSeconds",
                         default=DEFAULT_AFFINITY_TIMEOUT_S)
        if isinstance(affinity, bool) or not isinstance(affinity, int) or not 0 < affinity <= 86400:
            raise BadObject(f"{what}: sessionAffinityConfig.clientIP.timeoutSeconds must be 1..86400")
    node_ports_apply = spec.get("type") in ("NodePort", "LoadBalancer")
    out = []
    for index, port in enumerate(spec.get("ports") or []):
        if not isinstance(port, dict):
            raise BadObject(f"{what}: spec.ports[{index}] is not an object")
        out.append(ServicePort(
            namespace=namespace, service=name, name=str(port.get("name") or ""),
            protocol=_protocol(port.get("protocol"), what), port=_port_number(port.get("port"), what),
            cluster_ips=ipv4, external_ips=tuple(dict.fromkeys(external)),
            node_port=_port_number(port.get("nodePort") or 0, what, allow_zero=True) if node_ports_apply else 0,
            affinity_timeout_s=affinity,
            external_local=spec.get("externalTrafficPolicy") == "Local",
            internal_local=spec.get("internalTrafficPolicy") == "Local"))
    return tuple(out)


def slice_service_key(endpoint_slice: dict) -> str | None:
    """namespace/service of the Service an EndpointSlice belongs to, or None (not a service's slice)."""
    service = labels(endpoint_slice).get(SERVICE_NAME_LABEL)
    namespace = field(endpoint_slice, "metadata", "namespace")
    return f"{namespace}/{service}" if service and namespace else None


def trigger_time(endpoint_slice: dict) -> str | None:
    """The controller's last-change-trigger-time annotation (RFC 3339), when it set one."""
    return annotations(endpoint_slice).get(TRIGGER_TIME_ANNOTATION)


def slice_endpoints(endpoint_slice: dict) -> PortEndpoints:
    """(port name, protocol) -> endpoints of one EndpointSlice; {} for non-IPv4 slices."""
    if endpoint_slice.get("addressType", "IPv4") != "IPv4":
        return {}
    what = f"endpointslice {field(endpoint_slice, 'metadata', 'namespace')}/{field(endpoint_slice, 'metadata', 'name')}"
    out: PortEndpoints = {}
    entries = []
    for entry in endpoint_slice.get("endpoints") or []:
        addresses = entry.get("addresses") if isinstance(entry, dict) else None
        if not addresses:
            continue
        conditions = entry.get("conditions") or {}
        ready = conditions.get("ready") is not False
        entries.append((_ipv4(addresses[0], what), entry.get("nodeName") or "", ready,
                        conditions.get("serving", ready) is not False, conditions.get("terminating") is True))
    for port in endpoint_slice.get("ports") or []:
        if not isinstance(port, dict) or port.get("port") is None:
            continue
        number = _port_number(port.get("port"), what)
        out[(str(port.get("name") or ""), _protocol(port.get("protocol"), what))] = tuple(
            Endpoint(ip, number, node, ready, serving, terminating)
            for ip, node, ready, serving, terminating in entries)
    return out


def merge_slices(slices: list[PortEndpoints]) -> PortEndpoints:
    """The endpoints of all of a service's slices, one per ip:port (a ready copy wins over a
    not-ready one, as when a pod moves between slices), in a stable order."""
    merged: dict[tuple[str, str], dict[tuple[str, int], Endpoint]] = {}
    for per_port in slices:
        for key, endpoints in per_port.items():
            seen = merged.setdefault(key, {})
            for endpoint in endpoints:
                current = seen.get((endpoint.ip, endpoint.port))
                if current is None or (endpoint.ready and not current.ready):
                    seen[(endpoint.ip, endpoint.port)] = endpoint
    return {key: tuple(sorted(seen.values(), key=lambda e: (ipaddress.IPv4Address(e.ip), e.port)))
            for key, seen in merged.items()}


def node_facts(node: dict | None, name: str, cluster_cidr: str = "") -> NodeFacts:
    """Facts from a Node object (its InternalIP/ExternalIP addresses and spec.podCIDR)."""
    addresses = tuple(dict.fromkeys(
        a.get("address") for a in field(node, "status", "addresses", default=[])
        if a.get("type") in ("InternalIP", "ExternalIP") and _is_ipv4(a.get("address"))))
    return NodeFacts(name, addresses, cluster_cidr, field(node, "spec", "podCIDR", default=""))
