"""Hollow nodes: one process simulating N nodes through ordinary API calls, as kwok does.

    ketch hollow-nodes --kubeconfig K --count N [--prefix hollow-] [--cpu 4] [--memory 8Gi] [--pods 110]
                       [--zones 3] [--heartbeat-seconds 10] [--freeze NAME ...]

Each node is registered with that capacity (labels kubernetes.io/hostname and
topology.kubernetes.io/zone), renews its Lease in kube-node-lease every --heartbeat-seconds,
and keeps its Ready condition fresh. Pods bound to a node become Running and Ready, with a pod
IP from the node's spec.podCIDR (set by the controller manager's node IPAM; a pod waits until
there is one). A pod being deleted on a node is removed with grace 0, as a kubelet does once its
containers are gone. A frozen node (--freeze NAME, or the annotation ketch.dev/frozen=true
set at any time) stops heartbeating and stops touching its pods, like a node that died.

A Job's pod finishes, as kwok's default stages finish one: it runs for the seconds in its
annotation ketch.dev/hollow-run-seconds (1 s if absent), then exits with the code in
ketch.dev/hollow-exit-code (0 if absent): Succeeded, or Failed for another code.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field

import trio

from orchestrator.api import nodes, pods
from orchestrator.api.meta import controller_of, object_key
from orchestrator.api.timestamps import epoch, now, now_micro
from orchestrator.client.api import (
    LEASES,
    NODES,
    PODS,
    APIClient,
    APIStatusError,
    Unreachable,
)
from orchestrator.client.informer import InformerFactory
from orchestrator.client.workqueue import WorkQueue

log = logging.getLogger("ketch.hollow")
FROZEN = "ketch.dev/frozen"
RUN_SECONDS = "ketch.dev/hollow-run-seconds"
EXIT_CODE = "ketch.dev/hollow-exit-code"
DEFAULT_RUN_S = 1.0
NODE_LEASE_NAMESPACE = "kube-node-lease"
HEARTBEAT_CONNECTIONS = 4


def node_object(name: str, zone: str, cpu: str, memory: str, pods: int, address: str) -> dict:
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi"}
    stamp = now()
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                   "topology.kubernetes.io/zone": zone, "type": "hollow"}},
            "spec": {},
            "status": {"capacity": resources, "allocatable": dict(resources),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "hollow node is posting ready status",
                                       "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
                       "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                       "nodeInfo": {"kubeletVersion": "v1.32.0-ketch-hollow", "osImage": "hollow",
                                    "kernelVersion": "hollow", "containerRuntimeVersion": "hollow://0",
                                    "operatingSystem": "linux", "architecture": "amd64"}}}


def finishes_after(pod: dict) -> tuple[float, int] | None:
    """(seconds it runs, exit code) for a pod that ends by itself (a Job's); None for one that runs on."""
    owner = controller_of(pod)
    if not owner or owner.get("kind") != "Job":
        return None
    annotations = pod["metadata"].get("annotations") or {}
    try:
        return max(0.0, float(annotations.get(RUN_SECONDS, DEFAULT_RUN_S))), int(annotations.get(EXIT_CODE, 0))
    except ValueError:
        return DEFAULT_RUN_S, 0


def finished_status(pod: dict, exit_code: int, stamp: str) -> dict:
    """The status of a pod whose containers all exited with exit_code."""
    status = pod.get("status") or {}
    ended = [{**c, "ready": False, "started": False, "state": {"terminated": {
        "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": (c.get("state") or {}).get("running", {}).get("startedAt", stamp), "finishedAt": stamp}}}
        for c in status.get("containerStatuses") or []]
    conditions = [{**c, "status": "False", "lastTransitionTime": stamp, "reason": "PodCompleted"}
                  if c.get("type") in ("Ready", "ContainersReady") else c for c in status.get("conditions") or []]
    return {"phase": "Succeeded" if exit_code == 0 else "Failed", "conditions": conditions,
            "containerStatuses": ended}


@dataclass
class HollowNodes:
    api: APIClient
    count: int
    prefix: str = "hollow-"
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    zones: int = 3
    heartbeat_s: float = 10.0
    frozen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.names = [f"{self.prefix}{i}" for i in range(self.count)]
        self.factory = InformerFactory(self.api)
        self.nodes = self.factory.informer(NODES)
        self.pod_informer = self.factory.informer(PODS)
        self.pod_informer.add_index("node", lambda pod: [pods.node_name(pod)])
        self.queue = WorkQueue("hollow-pods")
        self.pod_informer.add_handler(on_add=self._maybe_enqueue, on_update=lambda _, new: self._maybe_enqueue(new))
        self.nodes.add_handler(on_update=self._node_changed)

    def is_frozen(self, name: str) -> bool:
        if name in self.frozen:
            return True
        node = self.nodes.get(name)
        return bool(node and (node["metadata"].get("annotations") or {}).get(FROZEN) == "true")

    def _maybe_enqueue(self, pod: dict) -> None:
        node = pods.node_name(pod)
        if node in self._ours and not self.is_frozen(node):
            self.queue.add(object_key(pod))

    def _node_changed(self, old: dict, new: dict) -> None:
        name = new["metadata"]["name"]
        if name in self._ours and not nodes.pod_cidr(old) and nodes.pod_cidr(new):
            for pod in self.pod_informer.by_index("node", name):  # pods that waited for a pod CIDR
                self._maybe_enqueue(pod)

    async def register(self) -> None:
        """Register every node, retrying while the API server cannot be reached (as a kubelet does)."""
        for i, name in enumerate(self.names):
            address = str(ipaddress.IPv4Address("10.200.0.0") + i + 1)
            body = node_object(name, f"zone-{i % self.zones}", self.cpu, self.memory, self.pods, address)
            while True:
                try:
                    await self._register(name, body)
                    break
                except Unreachable as err:
                    log.warning("event=register_retry node=%s error=%s", name, err)
                    await trio.sleep(1.0)

    async def _register(self, name: str, body: dict) -> None:
        try:
            await self.api.create(NODES, None, body)
        except APIStatusError as err:
            if err.reason != "AlreadyExists":
                raise
            await self.api.patch(NODES, None, name, {"status": body["status"]}, subresource="status")

    async def heartbeat(self, name: str, api: APIClient) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": int(max(1, self.heartbeat_s * 4)),
                "renewTime": now_micro()}
        try:
            await api.patch(LEASES, NODE_LEASE_NAMESPACE, name, {"spec": spec})
        except APIStatusError as err:
            if err.code != 404:
                raise
            await api.create(LEASES, NODE_LEASE_NAMESPACE, {
                "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE}, "spec": spec})

    async def post_ready(self, name: str, api: APIClient) -> None:
        node = self.nodes.get(name)
        conditions = [c for c in ((node or {}).get("status") or {}).get("conditions") or [] if c.get("type") != "Ready"]
        previous = next((c for c in ((node or {}).get("status") or {}).get("conditions") or []
                         if c.get("type") == "Ready"), {})
        stamp = now()
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "hollow node is posting ready status", "lastHeartbeatTime": stamp,
                 "lastTransitionTime": previous.get("lastTransitionTime", stamp)
                 if previous.get("status") == "True" else stamp}
        await api.patch(NODES, None, name, {"status": {"conditions": conditions + [ready]}},
                             subresource="status")

    async def heartbeats(self) -> None:
        """Every node beats once per heartbeat_s, the nodes spread evenly over the period and
        beating concurrently, as independent kubelets do (one loop taking them in turn fell behind
        as soon as the API server slowed down: 1,000 Lease renewals at 50 ms each outlast the Lease,
        and the nodes went NotReady under load). A node whose last beat has not come back skips
        this one. Heartbeats have connections of their own (HEARTBEAT_CONNECTIONS), as each
        kubelet has: sharing the pods' pool, they held it and pods waited seconds to be Running."""
        beating: set[str] = set()
        beat = 0
        async with APIClient(self.api.access, connections=HEARTBEAT_CONNECTIONS,
                             user_agent="ketch-hollow-heartbeats") as api, trio.open_nursery() as nursery:
            while True:
                period_start = trio.current_time()
                for i, name in enumerate(self.names):
                    await trio.sleep_until(period_start + self.heartbeat_s * i / len(self.names))
                    if name in beating or self.is_frozen(name):
                        continue
                    beating.add(name)
                    nursery.start_soon(self._beat, api, name, beat % 6 == 0, beating)
                beat += 1
                await trio.sleep_until(period_start + self.heartbeat_s)

    async def _beat(self, api: APIClient, name: str, refresh_ready: bool, beating: set[str]) -> None:
        try:
            await self.heartbeat(name, api)
            node = self.nodes.get(name) or {}
            ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), {})
            if refresh_ready or ready.get("status") != "True":
                await self.post_ready(name, api)
        except (APIStatusError, Unreachable) as err:
            log.warning("event=heartbeat_failed node=%s error=%s", name, err)
        finally:
            beating.discard(name)

    def pod_ip(self, node: dict, pod_key: str) -> str | None:
        cidr = nodes.pod_cidr(node)
        if not cidr:
            return None
        used = {pods.pod_ip(p) for p in self.pod_informer.by_index("node", node["metadata"]["name"])
                if object_key(p) != pod_key}
        for address in list(ipaddress.IPv4Network(cidr).hosts())[1:]:
            if str(address) not in used:
                return str(address)
        return None

    async def handle(self, key: str) -> None:
        pod = self.pod_informer.get(key)
        if pod is None:
            return
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        node_name = spec.get("nodeName")
        if node_name not in self._ours or self.is_frozen(node_name):
            return
        if meta.get("deletionTimestamp"):
            try:
                await self.api.delete(PODS, meta["namespace"], meta["name"], grace_period_s=0, uid=meta["uid"])
            except APIStatusError as err:
                if err.code not in (404, 409):
                    raise
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        if status.get("phase") == "Running":
            return await self.maybe_finish(key, pod)
        node = self.nodes.get(node_name)
        ip = self.pod_ip(node or {}, key)
        if ip is None:
            return  # no podCIDR yet: _node_changed enqueues the node's pods when it arrives
        stamp = now()
        containers = spec.get("containers") or []
        status = {
            "phase": "Running",
            "hostIP": next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"),
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": stamp,
            "qosClass": "BestEffort",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": f"hollow://{c.get('image', '')}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "containerID": f"hollow://{meta['uid']}/{c['name']}",
                    "state": {"running": {"startedAt": stamp}},
                }
                for c in containers
            ],
        }
        try:
            await self.api.patch(PODS, meta["namespace"], meta["name"], {"status": status}, subresource="status")
        except APIStatusError as err:
            if err.code != 404:
                raise
        ending = finishes_after(pod)
        if ending is not None:
            self.queue.add_after(key, ending[0])

    async def maybe_finish(self, key: str, pod: dict) -> None:
        ending = finishes_after(pod)
        started = epoch((pod.get("status") or {}).get("startTime"))
        if ending is None or started is None:
            return
        left_s = started + ending[0] - time.time()
        if left_s > 0:
            self.queue.add_after(key, left_s)
            return
        meta = pod["metadata"]
        try:
            await self.api.patch(
                PODS,
                meta["namespace"],
                meta["name"],
                {"status": finished_status(pod, ending[1], now())},
                subresource="status",
            )
        except APIStatusError as err:
            if err.code != 404:
                raise

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._ours = set(self.names)
        await self.register()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.factory.run)
            nursery.start_soon(self.heartbeats)
            nursery.start_soon(self.queue.run, self.handle, 8)
            task_status.started()
