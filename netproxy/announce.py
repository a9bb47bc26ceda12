"""Holding load balancer addresses on the node (adapter): the addresses the lab cloud controller
gave this node to announce (orchestrator.api.services.announced_by) are added as /32s to the
interface holding the node's address, so the kernel answers ARP for them on the fabric and the
proxy's rules take their traffic (MetalLB's layer-2 mode). Ours carry the label `<ifname>:lb`;
one reconcile adds what is wanted and removes what no longer is, and nothing else is touched."""

from __future__ import annotations

import socket

from netproxy.model import ProxyError
from netproxy.podnet.errors import PodNetworkError
from netproxy.podnet.host import NETLINK_ERRORS, open_netlink

LABEL_SUFFIX = ":lb"
IFNAMSIZ = 15


class AnnounceError(ProxyError):
    """The addresses could not be held (no interface with the node's address, netlink refused)."""


def label_for(ifname: str) -> str:
    return (ifname + LABEL_SUFFIX)[:IFNAMSIZ]


def hold(wanted: set[str], node_address: str | None, netns: str | None = None) -> tuple[set[str], set[str]]:
    """Make the labelled /32s on the node's interface exactly `wanted`; returns (added, removed)."""
    try:
        with open_netlink(netns) as ipr:
            index = _interface_of(ipr, node_address) if node_address else None
            if index is None:
                if wanted:
                    raise AnnounceError(f"no interface holds the node address {node_address!r}: cannot announce "
                                        f"{', '.join(sorted(wanted))}")
                return set(), set()
            label = label_for(ipr.get_links(index)[0].get_attr("IFLA_IFNAME"))
            held = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=socket.AF_INET)
                    if a.get_attr("IFA_LABEL") == label}
            for address in wanted - held:
                ipr.addr("add", index=index, address=address, prefixlen=32, label=label)
            for address in held - wanted:
                ipr.addr("del", index=index, address=address, prefixlen=32)
            return wanted - held, held - wanted
    except (*NETLINK_ERRORS, PodNetworkError) as err:
        raise AnnounceError(f"cannot hold load balancer addresses: {err}") from None


def _interface_of(ipr, address: str) -> int | None:
    for entry in ipr.get_addr(family=socket.AF_INET):
        if entry.get_attr("IFA_ADDRESS") == address:
            return entry["index"]
    return None


def release_all(netns: str | None = None) -> int:
    """`ketch proxy --cleanup`: drop every labelled address this proxy held; returns how many."""
    removed = 0
    with open_netlink(netns) as ipr:
        for entry in ipr.get_addr(family=socket.AF_INET):
            label = entry.get_attr("IFA_LABEL") or ""
            if label.endswith(LABEL_SUFFIX) and entry["prefixlen"] == 32:
                ipr.addr("del", index=entry["index"], address=entry.get_attr("IFA_ADDRESS"), prefixlen=32)
                removed += 1
    return removed
