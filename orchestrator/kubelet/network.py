"""The pod network as the kubelet uses it (adapter over netproxy.podnet, contract B).

Two modes: `bridge` (root, runc or process runtime): a network namespace, veth and address per
pod from the node's pod CIDR, set up once the controller manager has given the node one, with
host-gw routes to the other nodes; `host` (the local runtime, or no root): pods share the node's
network and its address, as hostNetwork pods always do.
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
