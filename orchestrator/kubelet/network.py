"""The pod network as the kubelet uses it (adapter over netproxy.podnet, contract B).

Three modes: `bridge` (root, runc or process runtime): a network namespace, veth and address per
pod from the node's pod CIDR, set up once the controller manager has given the node one, with
host-gw routes to the other nodes; `loopback` (the local runtime, no root): pods share the
machine's network, each with its own 127/8 address; `host`: every pod has the node's address,
as hostNetwork pods always do (tests use it for a kubelet without a pod network).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import trio

log = logging.getLogger("ketch.kubelet.network")


class NetworkNotReady(Exception):
    """No pod CIDR yet (the controller manager assigns one), or the node's bridge is not set up."""


@dataclass(frozen=True)
class PodNet:
    ip: str
    netns_path: str | None  # None: the node's own network


class HostNetwork:
    mode = "host"

    def __init__(self, node_ip: str) -> None:
        self.node_ip = node_ip
        self.ready = True

    async def configure(self, pod_cidr: str) -> None:
        return None

    async def setup(self, uid: str, namespace: str, name: str) -> PodNet:
        return PodNet(self.node_ip, None)

    async def teardown(self, uid: str) -> None:
        return None

    async def existing(self) -> dict[str, PodNet]:
        return {}

    async def set_peers(self, peers: dict[str, str]) -> None:
        return None


class BridgeNetwork:
    mode = "bridge"

    def __init__(self, node_name: str, node_ip: str, state_dir: Path, cluster_cidr: str | None = None) -> None:
        self.node_name, self.node_ip, self.state_dir, self.cluster_cidr = node_name, node_ip, state_dir, cluster_cidr
        self.network = None
        self.pod_cidr = ""
        self.lock = trio.Lock()

    @property
    def ready(self) -> bool:
        return self.network is not None

    async def configure(self, pod_cidr: str) -> None:
        """Set the node up for this pod CIDR (once; a changed CIDR re-runs ensure_node)."""
        from netproxy.podnet import PodNetwork
        async with self.lock:
            if pod_cidr == self.pod_cidr and self.network is not None:
                return
            network = PodNetwork(self.node_name, pod_cidr, self.state_dir, cluster_cidr=self.cluster_cidr)
            await trio.to_thread.run_sync(network.ensure_node)
            self.network, self.pod_cidr = network, pod_cidr
            log.info("event=pod_network_configured node=%s pod_cidr=%s", self.node_name, pod_cidr)

    def _require(self):
        if self.network is None:
            raise NetworkNotReady(f"network is not ready: node {self.node_name} has no pod CIDR yet (the controller "
                                  "manager's node IPAM assigns one)")
        return self.network

    async def setup(self, uid: str, namespace: str, name: str) -> PodNet:
        address = await trio.to_thread.run_sync(self._require().setup, uid, namespace, name)
        return PodNet(address.ip, address.netns_path)

    async def teardown(self, uid: str) -> None:
        if self.network is None:
            return  # nothing was set up by this process yet; a pod CIDR arrives before any setup
        await trio.to_thread.run_sync(self.network.teardown, uid)

    async def existing(self) -> dict[str, PodNet]:
        if self.network is None:
            return {}
        pods = await trio.to_thread.run_sync(self.network.list_pods)
        return {p.pod_uid: PodNet(p.ip, p.netns_path) for p in pods}

    async def set_peers(self, peers: dict[str, str]) -> None:
        if self.network is not None:
            await trio.to_thread.run_sync(self.network.set_peer_routes, peers)


def loopback_cidr(pod_cidr: str) -> str:
    """The node's pod CIDR moved into 127.0.0.0/8 (10.244.3.0/24 -> 127.244.3.0/24): every address
    there is local to the machine, so pods of the `local` runtime get one each without root."""
    import ipaddress
    network = ipaddress.IPv4Network(pod_cidr)
    octets = str(network.network_address).split(".")
    return f"127.{'.'.join(octets[1:])}/{max(network.prefixlen, 8)}"


class LoopbackNetwork:
    """Pods of the `local` runtime (no root, no namespaces): each pod gets its own loopback address
    from the node's pod CIDR moved into 127/8 (loopback_cidr), persisted like the bridge's IPAM.
    A program binds it through the downward API (status.podIP); the host's other pods and nodes
    on this machine reach it directly."""
    mode = "loopback"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.state = None

    @property
    def ready(self) -> bool:
        return self.state is not None

    async def configure(self, pod_cidr: str) -> None:
        from netproxy.podnet.state import StateFile
        cidr = loopback_cidr(pod_cidr)
        if self.state is None or self.state.cidr != cidr:
            self.state = StateFile(self.state_dir, cidr)
            log.info("event=loopback_network_configured pod_cidr=%s addresses=%s", pod_cidr, cidr)

    def _require(self):
        if self.state is None:
            raise NetworkNotReady("network is not ready: the node has no pod CIDR yet (the controller manager's node "
                                  "IPAM assigns one)")
        return self.state

    async def setup(self, uid: str, namespace: str, name: str) -> PodNet:
        from netproxy.podnet.ipam import allocate
        state = self._require()
        ip = await trio.to_thread.run_sync(state.update, lambda s: allocate(s, uid, namespace, name))
        return PodNet(ip, None)

    async def teardown(self, uid: str) -> None:
        from netproxy.podnet.ipam import release
        if self.state is not None:
            await trio.to_thread.run_sync(self.state.update, lambda s: (release(s, uid), None))

    async def existing(self) -> dict[str, PodNet]:
        if self.state is None:
            return {}
        current = await trio.to_thread.run_sync(self.state.read)
        return {uid: PodNet(entry.ip, None) for uid, entry in current.pods.items()}

    async def set_peers(self, peers: dict[str, str]) -> None:
        return None
