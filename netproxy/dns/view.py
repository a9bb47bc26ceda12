"""The cluster's DNS names, built from Service and EndpointSlice objects (pure).

Rules kept (Kubernetes DNS-Based Service Discovery specification, schema 1.1.0, and CoreDNS's
kubernetes plugin where the specification leaves room):
- `<svc>.<ns>.svc.<domain>`: A/AAAA with the ClusterIP(s); for a headless service (clusterIP
  None), one record per ready endpoint address; for an ExternalName service, a CNAME.
- `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV for each *named* port, priority 0 and weight
  100/n; a ClusterIP service points at its own name and service port, a headless service at each
  endpoint's name and the endpoint port.
- Endpoint names under a headless service: `<hostname>.<svc>...` when the endpoint has a hostname
  (StatefulSet pods: `web-0.web.default.svc.cluster.local`), otherwise the address with dashes
  (`10-244-1-5.web...`, CoreDNS's choice). They get PTR records, as do ClusterIPs.
- "Ready" is EndpointSlice `conditions.ready`, where a missing value counts as ready (the API's
  rule); `publishNotReadyAddresses: true` publishes every endpoint.
- `dns-version.<domain>` TXT "1.1.0".
- A name that exists only as a parent of others (`default.svc.cluster.local`) answers with no
  records rather than NXDOMAIN (RFC 8020: NXDOMAIN means nothing exists below it either).
Names are kept lower-case without the final dot. Objects that cannot be read are skipped, and
`ServiceView.skipped` says which and why, so one bad object never hides the others.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SCHEMA_VERSION = "1.1.0"
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Record:
    rtype: str  # "A" | "AAAA" | "SRV" | "PTR" | "CNAME" | "TXT"
    data: str  # the record's data in zone-file text: "10.96.0.10", "0 100 53 kube-dns.kube-system.svc.cluster.local."


@dataclass(frozen=True)
class ServiceView:
    domain: str = "cluster.local"
    records: Mapping[str, tuple[Record, ...]] = field(default_factory=dict)
    names: frozenset[str] = frozenset()  # every name that exists, with its parents inside the domain
    generation: int = 0
    services: int = 0
    skipped: tuple[str, ...] = ()

    def in_domain(self, name: str) -> bool:
        return name == self.domain or name.endswith("." + self.domain)

    def lookup(self, name: str) -> tuple[Record, ...] | None:
        """The records of a lower-case name without the final dot; () when it exists with none;
        None when it does not exist (NXDOMAIN)."""
        found = self.records.get(name)
        if found is not None:
            return found
        pod = pod_record(name, self.domain)
        if pod is not None:
            return (pod,)
        return () if name in self.names else None


def pod_record(name: str, domain: str) -> Record | None:
    """`<ip-with-dashes>.<ns>.pod.<domain>` answers with that address for any namespace, as
    CoreDNS's `pods insecure` (kubeadm's default) does: the name is its own proof."""
    suffix = f".pod.{domain}"
    if not name.endswith(suffix):
        return None
    labels = name[: -len(suffix)].split(".")
    if len(labels) != 2 or not _LABEL.match(labels[1]):
        return None
    text = labels[0].replace("-", ".") if labels[0].count("-") == 3 else labels[0].replace("-", ":")
    try:
        return _address_record(text)
    except ValueError:
        return None


def dashed(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return str(address).replace(".", "-") if address.version == 4 else address.exploded.replace(":", "-")


def _address_record(ip: str) -> Record:
    address = ipaddress.ip_address(ip)
    return Record("A" if address.version == 4 else "AAAA", str(address))


@dataclass(frozen=True)
class _Endpoint:
    ip: str
    hostname: str | None


class _Builder:
    """Collects records; a service's records are kept only once all of them could be made
    (`commit`), so a service with one bad port is skipped whole, not published in part."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.records: dict[str, list[Record]] = {}
        self.pending: list[tuple[str, Record | None]] = []
        self.skipped: list[str] = []

    def add(self, name: str, record: Record | None) -> None:
        """record None: the name exists with no records."""
        self.pending.append((name, record))

    def commit(self) -> None:
        for name, record in self.pending:
            existing = self.records.setdefault(name, [])
            if record is not None and record not in existing:
                existing.append(record)
        self.pending = []

    def names(self) -> frozenset[str]:
        out = set()
        for name in self.records:
            while True:
                out.add(name)
                if name == self.domain or "." not in name:
                    break
                name = name.split(".", 1)[1]
        return frozenset(out)


def _label(text: object, what: str) -> str:
    label = str(text or "").lower()
    if not _LABEL.match(label):
        raise ValueError(f"{what} {text!r} is not a DNS label")
    return label


def _ready_endpoints(slices: list[dict], publish_not_ready: bool) -> list[_Endpoint]:
    seen: dict[str, _Endpoint] = {}
    for endpoint_slice in slices:
        if endpoint_slice.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        for entry in endpoint_slice.get("endpoints") or []:
            conditions = entry.get("conditions") or {}
            if not publish_not_ready and conditions.get("ready") is False:
                continue
            for ip in entry.get("addresses") or []:
                ip = str(ipaddress.ip_address(ip))
                hostname = entry.get("hostname")
                seen.setdefault(ip, _Endpoint(ip, _label(hostname, "endpoint hostname") if hostname else None))
    return list(seen.values())


def _slice_ports(slices: list[dict]) -> list[tuple[str, str, int]]:
    """(name, protocol, port) of the named ports of a service's slices."""
    out = []
    for endpoint_slice in slices:
        for port in endpoint_slice.get("ports") or []:
            if port.get("name") and port.get("port") is not None:
                entry = (str(port["name"]).lower(), str(port.get("protocol") or "TCP").lower(), int(port["port"]))
                if entry not in out:
                    out.append(entry)
    return out


def _add_service(builder: _Builder, service: dict, slices: list[dict]) -> None:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    namespace, name = _label(meta.get("namespace"), "namespace"), _label(meta.get("name"), "service name")
    base = f"{name}.{namespace}.svc.{builder.domain}"
    if spec.get("type") == "ExternalName":
        target = str(spec.get("externalName") or "").rstrip(".").lower()
        if not target or not all(_LABEL.match(label) or label == "_" for label in target.split(".")):
            raise ValueError(f"externalName {spec.get('externalName')!r} is not a DNS name")
        builder.add(base, Record("CNAME", target + "."))
        return
    cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
    if cluster_ips and cluster_ips[0] != "None":
        for ip in cluster_ips:
            record = _address_record(ip)
            builder.add(base, record)
            builder.add(ipaddress.ip_address(ip).reverse_pointer, Record("PTR", base + "."))
        named = [p for p in spec.get("ports") or [] if p.get("name")]
        for port in named:
            srv = f"_{_label(port['name'], 'port name')}._{str(port.get('protocol') or 'TCP').lower()}.{base}"
            builder.add(srv, Record("SRV", f"0 {100 // len(named)} {int(port['port'])} {base}."))
        return
    endpoints = _ready_endpoints(slices, bool(spec.get("publishNotReadyAddresses")))
    for endpoint in endpoints:
        endpoint_name = f"{endpoint.hostname or dashed(endpoint.ip)}.{base}"
        builder.add(base, _address_record(endpoint.ip))
        builder.add(endpoint_name, _address_record(endpoint.ip))
        builder.add(ipaddress.ip_address(endpoint.ip).reverse_pointer, Record("PTR", endpoint_name + "."))
    targets = list(dict.fromkeys(f"{e.hostname or dashed(e.ip)}.{base}." for e in endpoints))  # web-1 may be v4 and v6
    for port_name, protocol, number in _slice_ports(slices):
        srv = f"_{port_name}._{protocol}.{base}"
        for target in targets:
            builder.add(srv, Record("SRV", f"0 {max(1, 100 // len(targets))} {number} {target}"))
    if not endpoints:
        builder.add(base, None)  # a headless service with no ready endpoint still exists


def build_view(services: Iterable[dict], endpoint_slices: Iterable[dict], domain: str = "cluster.local",
               generation: int = 0) -> ServiceView:
    domain = domain.strip(".").lower()
    by_service: dict[tuple[str, str], list[dict]] = {}
    for endpoint_slice in endpoint_slices:
        owner = ((endpoint_slice.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        namespace = (endpoint_slice.get("metadata") or {}).get("namespace")
        if owner and namespace:
            by_service.setdefault((namespace, owner), []).append(endpoint_slice)
    builder = _Builder(domain)
    builder.add(f"dns-version.{domain}", Record("TXT", f'"{SCHEMA_VERSION}"'))
    builder.commit()
    count = 0
    for service in services:
        meta = service.get("metadata") or {}
        try:
            _add_service(builder, service, by_service.get((meta.get("namespace"), meta.get("name")), []))
            builder.commit()
            count += 1
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            builder.pending = []
            builder.skipped.append(f"service {meta.get('namespace')}/{meta.get('name')}: {err}")
    records = {name: tuple(found) for name, found in builder.records.items()}
    return ServiceView(domain, records, builder.names(), generation, count, tuple(builder.skipped))
