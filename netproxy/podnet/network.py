"""A node's pod network: a bridge, a veth and a network namespace per pod, host-gw routes to the
other nodes, masquerade for traffic leaving the cluster (the adapter; pure parts in layout/ipam).

Theory of operation (the CNI bridge plugin's ADD and DEL, plus flannel's host-gw backend):
- `ensure_node()` once at start: the bridge `ketch0` holding the gateway address (the first of the
  pod CIDR), forwarding and bridge-nf-call-iptables on in the node's namespace (the second lets
  conntrack see bridged replies, so a Service's DNAT is undone also between two pods on one
  bridge), the masquerade table, and removal of what a crashed kubelet left that no record owns.
- `setup(pod)` records the pod's address in the state file *before* touching the host, so a
  crash at any point leaves a record that `list_pods()` shows and `teardown()` removes; then it
  makes the namespace `<node>-<key>` with `eth0` (the pod's end of a veth pair whose other end,
  `veth<key>`, is a bridge port in hairpin mode), loopback, the address and a default route.
  If everything is already there it is left alone: containers may be running in it.
- `teardown(pod)` removes the veth, then the namespace, then the record (the reverse order).
- `set_peer_routes()` makes the routes with our protocol number exactly the given peers' and
  updates the masquerade table's set of in-cluster networks.
Every call is blocking. setup() and teardown() may run in several threads at once (calls for
the same pod wait for each other); ensure_node() comes first and, like cleanup_node(), must not
overlap them: it removes veths and namespaces that no record owns *yet*.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from netproxy.podnet import host, layout
from netproxy.podnet.errors import InvalidNetworkConfig, PodNetworkError
from netproxy.podnet.ipam import allocate, gateway_of, parse_pod_cidr, release
from netproxy.podnet.layout import BRIDGE, ROUTE_PROTOCOL, host_veth_name, netns_name
from netproxy.podnet.state import StateFile

log = logging.getLogger("ketch.podnet")
MAIN_TABLE = 254
PLACEHOLDER_CIDR = "10.255.255.0/30"
NODE_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}


@dataclass(frozen=True)
class PodAddress:
    pod_uid: str
    netns_name: str
    netns_path: str
    ip: str
    gateway: str
    prefixlen: int
    namespace: str = ""
    name: str = ""


def _first(links) -> int | None:
    return links[0] if links else None


class PodNetwork:
    def __init__(self, node_name: str, pod_cidr: str, state_dir: Path, *, netns: str | None = None,
                 cluster_cidr: str | None = None) -> None:
        """netns: the node's namespace when this process runs outside it (tests); None = ours.
        cluster_cidr: the whole pod range (e.g. 10.244.0.0/16), when known; traffic to it is
        never masqueraded even before a new node's route arrives."""
        self.node_name = layout.check_node_name(node_name)
        self.pod_cidr = str(parse_pod_cidr(pod_cidr))
        self.gateway = gateway_of(self.pod_cidr)
        self.prefixlen = parse_pod_cidr(self.pod_cidr).prefixlen
        self.netns = netns
        self.cluster_cidr = str(layout.parse_network(cluster_cidr, "cluster CIDR")) if cluster_cidr else None
        self.state = StateFile(Path(state_dir), self.pod_cidr)
        self._routes: dict[str, str] = {}
        self._masquerade_lock = threading.Lock()
        self._pod_locks: dict[str, threading.Lock] = {}
        self._pod_locks_guard = threading.Lock()

    @classmethod
    def from_state_dir(cls, node_name: str, state_dir: Path, *, netns: str | None = None) -> PodNetwork:
        """The network a state directory records, for `cleanup_node()` by a process that does not
        know the node's pod CIDR (e.g. `ketch kubelet --cleanup`). Without a state file the CIDR
        is a placeholder: cleanup still finds the bridge, routes, table and namespaces by name."""
        recorded = StateFile(Path(state_dir), PLACEHOLDER_CIDR).read(any_cidr=True)
        return cls(node_name, recorded.cidr, state_dir, netns=netns)

    # --- the node ---------------------------------------------------------------------------

    def ensure_node(self) -> None:
        try:
            with host.open_netlink(self.netns) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                bridge = _first(ipr.link_lookup(ifname=BRIDGE))
                if bridge is None:
                    ipr.link("add", ifname=BRIDGE, kind="bridge")
                    bridge = ipr.link_lookup(ifname=BRIDGE)[0]
                present = {(a.get("address"), a["prefixlen"]) for a in ipr.addr("dump", index=bridge, family=2)}
                for address, prefixlen in present - {(self.gateway, self.prefixlen)}:
                    ipr.addr("del", index=bridge, address=address, prefixlen=prefixlen)  # an old pod CIDR's
                if (self.gateway, self.prefixlen) not in present:
                    ipr.addr("add", index=bridge, address=self.gateway, prefixlen=self.prefixlen)
                # pin the bridge's MAC to itself: otherwise it takes the lowest MAC of its ports
                # and changes as pods come and go, and pods keep sending to the old one until
                # their ARP entry expires (the CNI bridge plugin does the same, for this reason)
                mac = ipr.link("get", index=bridge)[0].get("address")
                ipr.link("set", index=bridge, address=mac, state="up")
                self._routes = self._current_routes(ipr)
        except host.NETLINK_ERRORS as err:
            raise PodNetworkError(f"node {self.node_name}: cannot set up bridge {BRIDGE}: {err}") from None
        host.write_sysctls(self.netns, NODE_SYSCTLS)
        self._remove_unowned()
        self._apply_masquerade()

    def _remove_unowned(self) -> None:
        """Veths and namespaces of this node that no record owns: left by a kubelet whose state
        directory was lost. Their addresses are free in IPAM, so keeping them would let two pods
        share one. Veths go first, as in teardown."""
        owned = self.state.read().pods
        veths = {host_veth_name(uid) for uid in owned}
        with host.open_netlink(self.netns) as ipr:
            bridge = _first(ipr.link_lookup(ifname=BRIDGE))
            for link in ipr.link("dump"):
                name = link.get("ifname")
                if link.get("master") == bridge and name.startswith("veth") and name not in veths:
                    log.warning("event=remove_unowned_veth node=%s veth=%s", self.node_name, name)
                    host.delete_link(ipr, link["index"])
        owned_netns = {netns_name(self.node_name, uid) for uid in owned}
        for name in host.list_netns():
            if layout.is_pod_netns_of(self.node_name, name) and name not in owned_netns:
                log.warning("event=remove_unowned_netns node=%s netns=%s", self.node_name, name)
                host.remove_netns(name)

    def cleanup_node(self) -> None:
        """Remove every pod namespace of this node, our routes, the bridge, the masquerade table
        and the state file. Sysctls stay as they are (their earlier values are not known)."""
        for uid in self.state.read(any_cidr=True).pods:
            self._remove_pod(uid)
        for name in host.list_netns():
            if layout.is_pod_netns_of(self.node_name, name):
                host.remove_netns(name)
        if self.netns is None or host.netns_exists(self.netns):
            with host.open_netlink(self.netns) as ipr:
                for dst in self._current_routes(ipr):
                    ipr.route("del", dst=dst, table=MAIN_TABLE, proto=ROUTE_PROTOCOL)
                bridge = _first(ipr.link_lookup(ifname=BRIDGE))
                if bridge is not None:
                    host.delete_link(ipr, bridge)
            host.run_nft(self.netns, layout.remove_ruleset())
        self.state.remove()
        self._routes = {}

    # --- pods -------------------------------------------------------------------------------

    def _address(self, pod_uid: str, ip: str, namespace: str = "", name: str = "") -> PodAddress:
        ns = netns_name(self.node_name, pod_uid)
        return PodAddress(pod_uid, ns, layout.netns_path(ns), ip, self.gateway, self.prefixlen, namespace, name)

    @contextmanager
    def _pod_lock(self, pod_uid: str):
        with self._pod_locks_guard:
            lock = self._pod_locks.setdefault(pod_uid, threading.Lock())
        with lock:
            yield

    def setup(self, pod_uid: str, namespace: str, name: str) -> PodAddress:
        layout.check_pod_uid(pod_uid)
        with self._pod_lock(pod_uid):
            return self._setup(pod_uid, namespace, name)

    def _setup(self, pod_uid: str, namespace: str, name: str) -> PodAddress:
        ip = self.state.update(lambda state: allocate(state, pod_uid, namespace, name))
        address = self._address(pod_uid, ip, namespace, name)
        try:
            if self._is_complete(address):
                return address
            self._remove_pod(pod_uid)  # what a failed or interrupted setup left
            self._create(address)
        except (PodNetworkError, *host.NETLINK_ERRORS) as err:
            try:
                self._remove_pod(pod_uid)
            except (PodNetworkError, *host.NETLINK_ERRORS) as cleanup_err:
                log.warning("event=setup_cleanup_failed pod=%s error=%s", pod_uid, cleanup_err)
            raise PodNetworkError(f"pod {namespace}/{name} ({pod_uid}): network setup failed: {err}") from None
        log.info("event=pod_network_ready pod=%s/%s uid=%s ip=%s netns=%s", namespace, name, pod_uid, ip,
                 address.netns_name)
        return address

    def _create(self, address: PodAddress) -> None:
        veth = host_veth_name(address.pod_uid)
        host.create_netns(address.netns_name)
        with host.open_netlink(self.netns) as ipr:
            bridge = _first(ipr.link_lookup(ifname=BRIDGE))
            if bridge is None:
                raise PodNetworkError(f"node {self.node_name} has no bridge {BRIDGE}: call ensure_node() first")
            ipr.link("add", ifname=veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": address.netns_name})
            index = ipr.link_lookup(ifname=veth)[0]
            ipr.link("set", index=index, master=bridge, state="up",
                     ifalias=f"ketch pod {address.namespace}/{address.name} uid {address.pod_uid}")
            # hairpin: with bridge-nf-call-iptables a pod's packet to its own Service may be
            # DNATed back out of the port it came in on, which a bridge refuses without it
            ipr.brport("set", index=index, mode=1)
        with host.open_netlink(address.netns_name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            eth0 = ipr.link_lookup(ifname="eth0")[0]
            ipr.addr("add", index=eth0, address=address.ip, prefixlen=address.prefixlen)
            ipr.link("set", index=eth0, state="up")
            ipr.route("add", dst="0.0.0.0/0", gateway=address.gateway)

    def _is_complete(self, address: PodAddress) -> bool:
        if not host.netns_exists(address.netns_name):
            return False
        with host.open_netlink(self.netns) as ipr:
            veth = _first(ipr.link_lookup(ifname=host_veth_name(address.pod_uid)))
            bridge = _first(ipr.link_lookup(ifname=BRIDGE))
            if veth is None or bridge is None or ipr.link("get", index=veth)[0].get("master") != bridge:
                return False
        with host.open_netlink(address.netns_name) as ipr:
            eth0 = _first(ipr.link_lookup(ifname="eth0"))
            if eth0 is None:
                return False
            addresses = {(a.get("address"), a["prefixlen"]) for a in ipr.addr("dump", index=eth0, family=2)}
            default = [r for r in ipr.route("dump", family=2, table=MAIN_TABLE) if r["dst_len"] == 0]
            return (address.ip, address.prefixlen) in addresses and any(
                r.get("gateway") == address.gateway for r in default)

    def _remove_pod(self, pod_uid: str) -> None:
        """The veth first (a namespace that a leftover process keeps alive would keep it
        otherwise), then the namespace."""
        if self.netns is None or host.netns_exists(self.netns):
            with host.open_netlink(self.netns) as ipr:
                veth = _first(ipr.link_lookup(ifname=host_veth_name(pod_uid)))
                if veth is not None:
                    host.delete_link(ipr, veth)
        host.remove_netns(netns_name(self.node_name, pod_uid))

    def teardown(self, pod_uid: str) -> None:
        layout.check_pod_uid(pod_uid)
        with self._pod_lock(pod_uid):
            try:
                self._remove_pod(pod_uid)
            except host.NETLINK_ERRORS as err:
                raise PodNetworkError(f"pod {pod_uid}: network teardown failed: {err}") from None
            self.state.update(lambda state: (release(state, pod_uid), None))
        with self._pod_locks_guard:
            self._pod_locks.pop(pod_uid, None)  # bounded: one lock per pod that has not been torn down

    def list_pods(self) -> list[PodAddress]:
        """Every pod this node holds an address for, also one whose setup was interrupted (its
        namespace may be missing): the kubelet sets up those it wants and tears down the rest."""
        return [self._address(uid, entry.ip, entry.namespace, entry.name)
                for uid, entry in sorted(self.state.read().pods.items())]

    # --- other nodes ------------------------------------------------------------------------

    @staticmethod
    def _current_routes(ipr) -> dict[str, str]:
        return {f"{r.get('dst')}/{r['dst_len']}": r.get("gateway")
                for r in ipr.route("dump", family=2, table=MAIN_TABLE, proto=ROUTE_PROTOCOL)}

    def set_peer_routes(self, peers: dict[str, str]) -> None:
        """{node address: pod CIDR} of the other nodes (this node's own entry may be included).
        Bad input changes nothing; a route the kernel refuses (a gateway that is not on a
        connected network) is reported after the others are in place."""
        desired = layout.peer_routes(self.pod_cidr, peers)
        failures = []
        try:
            with host.open_netlink(self.netns) as ipr:
                stale, put = layout.route_changes(self._current_routes(ipr), desired)
                for dst in stale:
                    ipr.route("del", dst=dst, table=MAIN_TABLE, proto=ROUTE_PROTOCOL)
                for dst, gateway in put.items():
                    try:
                        ipr.route("replace", dst=dst, gateway=gateway, table=MAIN_TABLE, proto=ROUTE_PROTOCOL)
                    except host.NETLINK_ERRORS as err:
                        failures.append(f"{dst} via {gateway}: {err}")
                self._routes = self._current_routes(ipr)
        except host.NETLINK_ERRORS as err:
            raise PodNetworkError(f"node {self.node_name}: cannot sync peer routes: {err}") from None
        if stale or put:
            log.info("event=peer_routes node=%s routes=%s", self.node_name, desired)
        self._apply_masquerade()
        if failures:
            raise PodNetworkError(f"node {self.node_name}: routes refused: {'; '.join(failures)}")

    def _apply_masquerade(self) -> None:
        with self._masquerade_lock:
            inside = layout.cluster_networks(self.pod_cidr, self._routes, self.cluster_cidr)
            host.run_nft(self.netns, layout.masquerade_ruleset(self.pod_cidr, inside))


__all__ = ["InvalidNetworkConfig", "PodAddress", "PodNetwork", "PodNetworkError"]
