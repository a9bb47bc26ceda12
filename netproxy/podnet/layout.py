"""What the pod network looks like on a node, as data (pure): names, host-gw routes, masquerade.

- Names. A pod's network namespace is `<node>-<key>` and its veth in the node's namespace is
  `veth<key>`, where key is a hash of the pod uid: namespace names are global on a machine (one
  file each under /var/run/netns), so the node name keeps two nodes of one lab apart, and the
  interface name must stay within the kernel's 15 characters. Both follow from the uid alone, so
  a restarted kubelet finds what an earlier one made.
- Routes. host-gw, as flannel's backend of that name: every other node's pod CIDR is routed
  through that node's address, which must be on a directly connected network. Our routes carry
  their own protocol number, so an exact sync touches only what it made.
- Masquerade. Traffic from this node's pods to anything outside the cluster's pod CIDRs leaves
  with the node's address (it would have no way back otherwise); pod-to-pod traffic keeps the pod
  address, as the Kubernetes network model requires.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from netproxy.podnet.errors import InvalidNetworkConfig
from netproxy.podnet.ipam import parse_pod_cidr

BRIDGE = "ketch0"
NFT_TABLE = "ketch-podnet"
ROUTE_PROTOCOL = 75  # rtnetlink protocol number of our routes ("K"); unused by iproute2's rt_protos
NETNS_DIR = "/var/run/netns"
KEY_LENGTH = 12
_NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,198}[a-z0-9])?$")  # a DNS subdomain, short enough for a file name
_POD_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_node_name(node_name: str) -> str:
    if not isinstance(node_name, str) or not _NODE_NAME.match(node_name):
        raise InvalidNetworkConfig(f"node name {node_name!r} is not a DNS subdomain of at most 200 characters")
    return node_name


def check_pod_uid(pod_uid: str) -> str:
    if not isinstance(pod_uid, str) or not _POD_UID.match(pod_uid):
        raise InvalidNetworkConfig(f"pod uid {pod_uid!r} is not a uid (letters, digits, '-', '.', '_')")
    return pod_uid


def pod_key(pod_uid: str) -> str:
    return hashlib.sha256(check_pod_uid(pod_uid).encode()).hexdigest()[:KEY_LENGTH]


def netns_name(node_name: str, pod_uid: str) -> str:
    return f"{check_node_name(node_name)}-{pod_key(pod_uid)}"


def netns_path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def host_veth_name(pod_uid: str) -> str:
    return f"veth{pod_key(pod_uid)[:11]}"


def is_pod_netns_of(node_name: str, name: str) -> bool:
    """Whether a namespace name is one of this node's pod namespaces (and not another node's:
    node "h1-b" is not a pod of node "h1", because the rest must be exactly one key)."""
    prefix = f"{node_name}-"
    rest = name[len(prefix):]
    return name.startswith(prefix) and len(rest) == KEY_LENGTH and all(c in "0123456789abcdef" for c in rest)


def parse_network(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(str(text), strict=True)
    except ValueError as err:
        raise InvalidNetworkConfig(f"{what} {text!r} is not an IPv4 network: {err}") from None


def _address(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(text)))
    except ValueError:
        raise InvalidNetworkConfig(f"{what} {text!r} is not an IPv4 address") from None


def peer_routes(pod_cidr: str, peers: dict[str, str]) -> dict[str, str]:
    """{destination CIDR: gateway} for {node address: pod CIDR}. An entry with this node's own
    pod CIDR is this node and needs no route; any other overlap with it, or between peers, is an
    error (two nodes cannot both own an address)."""
    own = parse_pod_cidr(pod_cidr)
    routes: dict[str, str] = {}
    for node_ip, cidr in sorted(peers.items()):
        gateway = _address(node_ip, "peer node address")
        network = parse_network(cidr, f"pod CIDR of node {node_ip}")
        if network == own:
            continue
        if network.overlaps(own):
            raise InvalidNetworkConfig(f"pod CIDR {network} of node {gateway} overlaps this node's {own}")
        for other in routes:
            if network.overlaps(ipaddress.IPv4Network(other)):
                raise InvalidNetworkConfig(f"pod CIDR {network} of node {gateway} overlaps {other} "
                                           f"of node {routes[other]}")
        routes[str(network)] = gateway
    return routes


def route_changes(current: dict[str, str], desired: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """(destinations to delete, {destination: gateway} to add or replace) to go from current to desired."""
    stale = sorted(dst for dst in current if dst not in desired)
    put = {dst: gw for dst, gw in sorted(desired.items()) if current.get(dst) != gw}
    return stale, put


def cluster_networks(pod_cidr: str, routes: dict[str, str], cluster_cidr: str | None = None) -> list[str]:
    """The destinations that count as "inside the cluster": every known pod CIDR and, when given,
    the whole cluster CIDR (so a node that joins later is inside before its route arrives)."""
    networks = [parse_pod_cidr(pod_cidr)] + [ipaddress.IPv4Network(dst) for dst in routes]
    if cluster_cidr:
        networks.append(parse_network(cluster_cidr, "cluster CIDR"))
    return [str(n) for n in ipaddress.collapse_addresses(networks)]


def masquerade_ruleset(pod_cidr: str, inside: list[str]) -> str:
    """`nft -f -` input that replaces our table atomically (add + delete + define in one
    transaction, so there is no moment without the rule)."""
    elements = ", ".join(inside)
    return (f"add table ip {NFT_TABLE}\n"
            f"delete table ip {NFT_TABLE}\n"
            f"table ip {NFT_TABLE} {{\n"
            f"  set cluster-networks {{ type ipv4_addr; flags interval; elements = {{ {elements} }}; }}\n"
            f"  chain postrouting {{\n"
            f"    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    ip saddr {parse_pod_cidr(pod_cidr)} ip daddr != @cluster-networks masquerade\n"
            f"  }}\n"
            f"}}\n")


def remove_ruleset() -> str:
    return f"add table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n"
