"""Node lifecycle and node IPAM.

Lifecycle: a node whose Lease in kube-node-lease has not been renewed for --node-monitor-grace
seconds (as this controller observed it; lab default 8 s, Kubernetes' 40 s) gets Ready=Unknown
and the taints node.kubernetes.io/unreachable (NoSchedule and NoExecute); a node that reports
Ready=False gets node.kubernetes.io/not-ready. Pods on a NoExecute-tainted node are evicted
(deleted) once their toleration for the taint runs out; a pod without one tolerates it for
--pod-eviction-seconds (lab default 10 s; Kubernetes adds 300 s tolerations to every pod).
A node that heartbeats again loses the taints.

IPAM: each node without spec.podCIDR gets the next free /--node-cidr-mask of --cluster-cidr.
"""

from __future__ import annotations

import ipaddress
import time

import trio

from orchestrator.api import nodes, pods, timestamps
from orchestrator.api.pods import is_active, tolerations
from orchestrator.api.scheduling import toleration_seconds
from orchestrator.client.api import LEASES, NODES, PODS
from orchestrator.controllers.base import Controller, ignore_missing

UNREACHABLE, NOT_READY = "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"


def taints_for(state: str) -> list[dict]:
    key = {"unknown": UNREACHABLE, "false": NOT_READY}.get(state)
    return [] if key is None else [{"key": key, "effect": "NoSchedule"}, {"key": key, "effect": "NoExecute"}]


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(self, ctx, grace_s: float = 8.0, eviction_s: float = 10.0) -> None:
        super().__init__(ctx)
        self.grace_s, self.eviction_s = grace_s, eviction_s
        self.nodes = ctx.informers.informer(NODES)
        self.leases = ctx.informers.informer(LEASES, "kube-node-lease")
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_index("node", lambda p: [pods.node_name(p)])
        self.observed: dict[str, tuple[str, float]] = {}  # node -> (renewTime, when we saw it change)
        self.tainted_at: dict[str, float] = {}

    def health(self, name: str, now: float) -> str:
        lease = self.leases.get(f"kube-node-lease/{name}")
        renew = ((lease or {}).get("spec") or {}).get("renewTime", "")
        seen = self.observed.get(name)
        if seen is None or seen[0] != renew:
            self.observed[name] = seen = (renew, now)
        if now - seen[1] > self.grace_s:
            return "unknown"
        node = self.nodes.get(name) or {}
        ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
        return "false" if ready.get("status") == "False" else "true"

    async def reconcile(self, key: str) -> None:
        now = time.monotonic()
        node = self.nodes.get(key)
        if node is None:
            return
        state = self.health(key, now)
        wanted = taints_for(state)
        others = [t for t in nodes.taints(node) if t.get("key") not in (UNREACHABLE, NOT_READY)]
        current = [t for t in nodes.taints(node) if t.get("key") in (UNREACHABLE, NOT_READY)]
        if [(t["key"], t["effect"]) for t in current] != [(t["key"], t["effect"]) for t in wanted]:
            if state == "unknown":  # Ready=Unknown first, then the taints, as Kubernetes' controller does
                self.ctx.events.record(node, "Node", "Normal", "NodeNotReady",
                                       f"Node {key} status is now: NodeNotReady (no heartbeat for {self.grace_s:.0f}s)")
                await self.mark_unknown(node)
            stamp = timestamps.now()
            await ignore_missing(self.api.patch(NODES, None, key, {"spec": {"taints": others + [
                {**t, "timeAdded": stamp} for t in wanted]}}))
            self.tainted_at[key] = now
        if state == "true":
            self.tainted_at.pop(key, None)
            return
        since = self.tainted_at.setdefault(key, now)
        for pod in self.pods.by_index("node", key):
            if not is_active(pod):
                continue
            limit = min(
                (
                    s
                    for s in (
                        toleration_seconds(tolerations(pod), t, self.eviction_s)
                        for t in wanted
                        if t["effect"] == "NoExecute"
                    )
                    if s is not None
                ),
                default=None,
            )
            if limit is not None and now - since >= limit:
                meta = pod["metadata"]
                self.ctx.events.record(
                    pod,
                    "Pod",
                    "Normal",
                    "TaintManagerEviction",
                    f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
                )
                await ignore_missing(self.api.delete(PODS, meta["namespace"], meta["name"]))

    async def mark_unknown(self, node: dict) -> None:
        conditions = []
        stamp = timestamps.now()
        for condition in (node.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready":
                condition = {
                    **condition,
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": stamp,
                }
            conditions.append(condition)
        await ignore_missing(
            self.api.patch(
                NODES, None, node["metadata"]["name"], {"status": {"conditions": conditions}}, subresource="status"
            )
        )

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(super().run)
            while True:  # level-triggered on time itself: look at every node each second
                for node in self.nodes.items():
                    self.queue.add(node["metadata"]["name"])
                await trio.sleep(1.0)


class NodeIPAMController(Controller):
    name = "nodeipam"
    workers = 1  # one allocator: no two nodes get the same range

    def __init__(self, ctx, cluster_cidr: str = "10.244.0.0/16", mask: int = 24) -> None:
        super().__init__(ctx)
        self.network = ipaddress.IPv4Network(cluster_cidr)
        self.mask = mask
        self.nodes = ctx.informers.informer(NODES)
        self.nodes.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.given: dict[str, str] = {}

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or nodes.pod_cidr(node):
            return
        used = {nodes.pod_cidr(n) for n in self.nodes.items()} | set(self.given.values())
        for subnet in self.network.subnets(new_prefix=self.mask):
            if str(subnet) not in used:
                await self.api.patch(NODES, None, key, {"spec": {"podCIDR": str(subnet), "podCIDRs": [str(subnet)]}})
                self.given[key] = str(subnet)
                return
        self.ctx.events.record(
            node, "Node", "Warning", "CIDRNotAvailable", f"no free /{self.mask} left in {self.network}"
        )
