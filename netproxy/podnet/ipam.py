"""Address management for one node's pod CIDR (pure: no I/O; the adapter persists the state).

Rules kept:
- The first address of the CIDR is the gateway (the node's bridge); the network and broadcast
  addresses are never handed out, so a /24 gives 253 pods (as Kubernetes' host-local IPAM does).
- An address is never handed to two pods at once; asking again for a pod that has one returns it.
- Allocation goes round-robin from the last address handed out rather than taking the lowest free
  one, so a freed address is not reused at once (host-local's behaviour: stale conntrack entries
  and DNS caches still point at a pod that just went away).
- When nothing is free the answer is `AddressesExhausted`, never a duplicate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from netproxy.podnet.errors import AddressesExhausted, CorruptState, InvalidNetworkConfig

STATE_VERSION = 1


def parse_pod_cidr(cidr: str) -> ipaddress.IPv4Network:
    """The node's pod CIDR; it must leave room for a gateway and at least one pod (/30 or larger)."""
    try:
        network = ipaddress.IPv4Network(str(cidr), strict=True)
    except ValueError as err:
        raise InvalidNetworkConfig(f"pod CIDR {cidr!r} is not an IPv4 network: {err}") from None
    if network.prefixlen > 30:
        raise InvalidNetworkConfig(f"pod CIDR {cidr} is too small: it needs a gateway and a pod address "
                                   "(/30 or larger)")
    return network


def is_pod_address(network: ipaddress.IPv4Network, ip: str) -> bool:
    offset = int(ipaddress.IPv4Address(ip)) - int(network.network_address)
    return 2 <= offset <= network.num_addresses - 2


def gateway_of(cidr: str) -> str:
    return str(parse_pod_cidr(cidr).network_address + 1)


def capacity(cidr: str) -> int:
    """How many pod addresses the CIDR holds: all but network, gateway and broadcast."""
    return parse_pod_cidr(cidr).num_addresses - 3


@dataclass(frozen=True)
class PodEntry:
    ip: str
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class IpamState:
    """Who holds which address of `cidr`. Treat as a value: every change returns a new state."""

    cidr: str
    pods: dict[str, PodEntry] = field(default_factory=dict)  # pod uid -> its address
    last: str | None = None  # the last address handed out (where the round-robin resumes)

    def address_of(self, pod_uid: str) -> str | None:
        entry = self.pods.get(pod_uid)
        return entry.ip if entry else None


def allocate(state: IpamState, pod_uid: str, namespace: str = "", name: str = "") -> tuple[IpamState, str]:
    """The pod's address: the one it holds, or the next free one after `state.last`."""
    held = state.pods.get(pod_uid)
    if held is not None:
        return state, held.ip
    network = parse_pod_cidr(state.cidr)
    size = network.num_addresses - 3  # offsets 2 .. num_addresses-2 are pod addresses
    if len(state.pods) >= size:
        raise AddressesExhausted(f"pod CIDR {state.cidr} has no free address ({size} handed out)")
    used = {int(ipaddress.IPv4Address(entry.ip)) for entry in state.pods.values()}
    first = int(network.network_address) + 2
    start = 0
    if state.last is not None and ipaddress.IPv4Address(state.last) in network:
        start = (int(ipaddress.IPv4Address(state.last)) - first + 1) % size
    for step in range(size):
        candidate = first + (start + step) % size
        if candidate not in used:
            ip = str(ipaddress.IPv4Address(candidate))
            pods = {**state.pods, pod_uid: PodEntry(ip, namespace, name)}
            return replace(state, pods=pods, last=ip), ip
    raise AddressesExhausted(f"pod CIDR {state.cidr} has no free address")  # unreachable while the count is right


def release(state: IpamState, pod_uid: str) -> IpamState:
    """Free the pod's address (nothing happens if it holds none)."""
    if pod_uid not in state.pods:
        return state
    return replace(state, pods={uid: entry for uid, entry in state.pods.items() if uid != pod_uid})


# --- the persisted form ---------------------------------------------------------------------------

def to_document(state: IpamState) -> dict:
    return {"version": STATE_VERSION, "cidr": state.cidr, "last": state.last,
            "pods": {uid: {"ip": entry.ip, "namespace": entry.namespace, "name": entry.name}
                     for uid, entry in sorted(state.pods.items())}}


def from_document(document: object, where: str = "IPAM state") -> IpamState:
    """Parse a persisted state; anything odd is `CorruptState` (never a silent reset, which
    would hand out addresses that running pods still hold)."""
    try:
        if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
            raise ValueError(f"expected a version {STATE_VERSION} document")
        network = parse_pod_cidr(document["cidr"])
        pods: dict[str, PodEntry] = {}
        seen: set[str] = set()
        for uid, entry in dict(document.get("pods") or {}).items():
            ip = str(ipaddress.IPv4Address(entry["ip"]))
            if not is_pod_address(network, ip) or ip in seen:
                raise ValueError(f"pod {uid} holds {ip}: not a pod address of {network}, or held twice")
            seen.add(ip)
            pods[str(uid)] = PodEntry(ip, str(entry.get("namespace", "")), str(entry.get("name", "")))
        last = document.get("last")
        return IpamState(str(network), pods, str(ipaddress.IPv4Address(last)) if last else None)
    except (KeyError, TypeError, ValueError, InvalidNetworkConfig) as err:
        raise CorruptState(f"{where} is unreadable ({err}); fix or remove it after removing the node's pods") from None
