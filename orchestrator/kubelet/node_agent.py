"""The kubelet's node (adapter): registration, the Lease heartbeat in kube-node-lease, the node
status (conditions kept true), and the pod network following the node's pod CIDR and the other
nodes' addresses. Every API call may fail while the API server is away: it is logged and tried
again; nothing here ends the kubelet.
"""

from __future__ import annotations

import logging
import time

import trio

from orchestrator.api import nodes as node_shape
from orchestrator.api import timestamps
from orchestrator.client.api import LEASES, NODES, APIStatusError, Unreachable
from orchestrator.kubelet import nodeinfo

log = logging.getLogger("ketch.kubelet.node")
LEASE_NAMESPACE = "kube-node-lease"


class NodeAgent:
    def __init__(self, kubelet, heartbeat_s: float, status_every_s: float = 60.0) -> None:
        self.k = kubelet
        self.heartbeat_s, self.status_every_s = heartbeat_s, status_every_s
        self.registered = trio.Event()
        self.reported: dict | None = None
        self.reported_at = float("-inf")
        self.network_wanted = trio.Event()

    @property
    def name(self) -> str:
        return self.k.settings.node_name

    async def register(self) -> None:
        """Create the Node, or bring an existing one up to date; retried until it works."""
        delay = 0.2
        while True:
            stamp = timestamps.now()
            body = nodeinfo.node_object(self.name, self.k.facts, stamp)
            try:
                try:
                    await self.k.api.create(NODES, None, body)
                except APIStatusError as err:
                    if err.reason != "AlreadyExists":
                        raise
                    await self.k.api.patch(NODES, None, self.name, {"metadata": {"labels": body["metadata"]["labels"]}})
                    await self.report_status(force=True)
                log.info("event=node_registered node=%s address=%s", self.name, self.k.facts.node_ip)
                self.registered.set()
                return
            except (APIStatusError, Unreachable) as err:
                log.warning("event=register_failed node=%s error=%s", self.name, err)
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def renew_lease(self) -> None:
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": int(max(10, self.heartbeat_s * 4)),
                "renewTime": timestamps.now_micro()}
        try:
            await self.k.api.patch(LEASES, LEASE_NAMESPACE, self.name, {"spec": spec})
        except APIStatusError as err:
            if err.code != 404:
                raise
            node = self.k.nodes.get(self.name) or {}
            owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": node["metadata"]["uid"]}] \
                if node.get("metadata", {}).get("uid") else []
            await self.k.api.create(LEASES, LEASE_NAMESPACE, {
                "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE, "ownerReferences": owner},
                "spec": spec})

    async def report_status(self, force: bool = False) -> None:
        node = self.k.nodes.get(self.name) or {}
        existing = (node.get("status") or {}).get("conditions") or (self.reported or {}).get("conditions") or []
        status = nodeinfo.node_status(self.k.facts, existing, timestamps.now())
        due = time.monotonic() - self.reported_at >= self.status_every_s
        if force or due or nodeinfo.status_changed(self.reported or {}, status) or \
                not node_shape.is_ready(node):
            await self.k.api.patch(NODES, None, self.name, {"status": status}, subresource="status")
            self.reported, self.reported_at = status, time.monotonic()

    async def heartbeats(self) -> None:
        await self.registered.wait()
        while True:
            try:
                await self.renew_lease()
                await self.report_status()
            except APIStatusError as err:
                log.warning("event=heartbeat_failed node=%s error=%s", self.name, err)
                if err.code == 404 and err.status.get("details", {}).get("kind") == "nodes":
                    await self.register()  # the Node was deleted: register again, as the kubelet does
            except Unreachable as err:
                log.warning("event=heartbeat_failed node=%s error=%s", self.name, err)
            await trio.sleep(self.heartbeat_s)

    # --- the pod network follows the nodes ----------------------------------------------------------

    def node_changed(self, *_) -> None:
        self.network_wanted.set()

    def peers(self) -> dict[str, str]:
        out = {}
        for node in self.k.nodes.items():
            if node["metadata"]["name"] == self.name:
                continue
            address, cidr = node_shape.internal_ip(node), node_shape.pod_cidr(node)
            if address and cidr:
                out[address] = cidr
        return out

    async def keep_network(self) -> None:
        """Configure the pod network once the node has a pod CIDR; sync host-gw routes as nodes
        come and go (a change is applied at most every 0.2 s)."""
        applied: dict[str, str] | None = None
        while True:
            await self.network_wanted.wait()
            self.network_wanted = trio.Event()
            cidr = node_shape.pod_cidr(self.k.nodes.get(self.name) or {})
            try:
                if cidr:
                    was_ready = self.k.network.ready
                    await self.k.network.configure(cidr)
                    if not was_ready:
                        self.k.network_became_ready()
                peers = self.peers()
                if self.k.network.ready and peers != applied:
                    await self.k.network.set_peers(peers)
                    applied = peers
            except Exception as err:  # noqa: BLE001 - logged and retried on the next change or in 2 s
                log.warning("event=network_sync_failed node=%s error=%s", self.name, err)
                applied = None
                await trio.sleep(2.0)
                self.network_wanted.set()
            await trio.sleep(0.2)
