"""`ketch scheduler`: watches unscheduled pods and binds each to a node through the framework.

    ketch scheduler --kubeconfig K [--scheduler-name default-scheduler] [--metrics-bind 127.0.0.1:10259]

Queues, as kube-scheduler's: an active queue (arrival order), a backoff queue (a pod that failed
waits 1 s, doubling to 10 s) and an unschedulable set, moved back to active when a node is
added or changes, or a pod goes away (the cluster changed, the pod may fit now), each pod once
the rest of its backoff has passed.
Assume-then-bind: a pod is put on its node in the cache at once (so the next pod sees the
space taken) and the binding is posted in the background; a failed binding forgets the
assumption and retries the pod. A pod that fits nowhere gets a FailedScheduling event and a
PodScheduled=False condition with kube-scheduler's message. Two schedulers may run; only the
holder of the kube-system/kube-scheduler Lease schedules.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import trio

from orchestrator.api import pods, timestamps
from orchestrator.api.meta import object_key
from orchestrator.api.volumes import SELECTED_NODE
from orchestrator.client.api import NODES, PODS, APIClient, APIStatusError, Unreachable, resource
from orchestrator.client.component import run_elected
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory
from orchestrator.client.workqueue import WorkQueue
from orchestrator.metrics import Counter, Histogram, Registry
from orchestrator.scheduler.framework import Framework, NodeInfo
from orchestrator.scheduler.plugins import default_plugins
from orchestrator.scheduler.profile import PluginTimes
from orchestrator.scheduler.volumebinding import check_claims

log = logging.getLogger("ketch.scheduler")
INITIAL_BACKOFF_S, MAX_BACKOFF_S = 1.0, 10.0
PROFILE_EVERY_S = 30.0


class Scheduler:
    def __init__(self, api: APIClient, name: str = "default-scheduler", identity: str | None = None,
                 profile: bool = False) -> None:
        self.api, self.name = api, name
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.factory = InformerFactory(api)
        self.nodes = self.factory.informer(NODES)
        self.pods = self.factory.informer(PODS)
        self.claims_resource = resource("persistentvolumeclaims")
        self.claim_informer = self.factory.informer(self.claims_resource)
        self.volume_informer = self.factory.informer(resource("persistentvolumes"))
        self.class_informer = self.factory.informer(resource("storageclasses", "storage.k8s.io"))
        # --profile: every plugin call timed, the table logged every PROFILE_EVERY_S and at the end
        self.times = PluginTimes() if profile else None
        plugins = default_plugins(self)
        self.framework = Framework([self.times.wrap(p) for p in plugins] if self.times else plugins)
        self.events = EventRecorder(api, name)
        self.infos: dict[str, NodeInfo] = {}
        self.placed: dict[str, str] = {}  # pod uid -> node, bound or assumed
        self.assumed: dict[str, float] = {}  # pod uid -> when assumed
        self.active = WorkQueue("scheduler-active")  # arrival order, each pod at most once
        self.unschedulable: set[str] = set()
        self.attempts: dict[str, int] = {}
        self.found_unschedulable: dict[str, float] = {}  # key -> when (trio clock) it last fit nowhere
        self.backing_off: set[str] = set()  # keys out of `unschedulable` waiting the rest of their backoff
        self.first_seen: dict[str, float] = {}
        self.leading = False
        self.metrics = Registry()
        self.attempts_total = Counter("scheduler_schedule_attempts_total", "Scheduling attempts by result.",
                                      ["result"], registry=self.metrics)
        self.latency = Histogram("scheduler_scheduling_attempt_duration_seconds", "Time of one scheduling cycle.",
                                 registry=self.metrics)
        self.e2e = Histogram("scheduler_pod_scheduling_duration_seconds", "From first seen unscheduled to bound.",
                             registry=self.metrics)
        self.metrics.gauge_of("scheduler_pending_pods", "Pods waiting in the queues.",
                              lambda: len(self.active) + len(self.unschedulable))
        self.metrics.gauge_of("scheduler_leader", "1 while this scheduler holds the lease.", lambda: int(self.leading))
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        for informer in (self.claim_informer, self.volume_informer, self.class_informer):
            informer.add_handler(lambda _: self._cluster_changed(), lambda old, new: self._cluster_changed(), None)

    # --- what VolumeBinding reads (scheduler/volumebinding.py's VolumeObjects) -----------------------

    def claim(self, namespace: str, name: str) -> dict | None:
        return self.claim_informer.get(f"{namespace}/{name}")

    def volume(self, name: str) -> dict | None:
        return self.volume_informer.get(name)

    def classes(self) -> list[dict]:
        return self.class_informer.items()

    # --- cache from informers -----------------------------------------------------------------

    def _node_added(self, node: dict) -> None:
        info = NodeInfo(node)
        for pod in self.pods.items():
            if self.placed.get(pod["metadata"]["uid"]) == info.name:
                info.add_pod(pod)
        self.infos[info.name] = info
        self._cluster_changed()

    def _node_updated(self, old: dict, new: dict) -> None:
        info = self.infos.get(new["metadata"]["name"])
        if info is None:
            return self._node_added(new)
        info.set_node(new)
        if (
            (old.get("spec") or {}) != (new.get("spec") or {})
            or old["metadata"].get("labels") != new["metadata"].get("labels")
            or (old.get("status") or {}).get("allocatable") != (new.get("status") or {}).get("allocatable")
        ):
            self._cluster_changed()

    def _node_deleted(self, node: dict) -> None:
        self.infos.pop(node["metadata"]["name"], None)

    def _wants(self, pod: dict) -> bool:
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and spec.get("schedulerName", "default-scheduler") == self.name
            and not pod["metadata"].get("deletionTimestamp")
            and not pods.is_terminal(pod)
        )

    def _account(self, pod: dict) -> None:
        uid, node = pod["metadata"]["uid"], pods.node_name(pod)
        if not node or pods.is_terminal(pod):
            return
        previous = self.placed.get(uid)
        if previous and previous in self.infos:
            self.infos[previous].remove_pod(uid)
        self.placed[uid] = node
        self.assumed.pop(uid, None)
        if node in self.infos:
            self.infos[node].add_pod(pod)

    def _pod_added(self, pod: dict) -> None:
        if self._wants(pod):
            self.first_seen.setdefault(pod["metadata"]["uid"], time.monotonic())
            self.enqueue(object_key(pod))
        else:
            self._account(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if pods.node_name(new) or pods.is_terminal(new):
            if pods.is_terminal(new):
                self._forget(new)
            else:
                self._account(new)
        elif self._wants(new) and object_key(new) in self.unschedulable and old.get("spec") != new.get("spec"):
            self.unschedulable.discard(object_key(new))
            self.enqueue(object_key(new))

    def _pod_deleted(self, pod: dict) -> None:
        self._forget(pod)
        self._cluster_changed()

    def _forget(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        node = self.placed.pop(uid, None)
        self.assumed.pop(uid, None)
        if node in self.infos:
            self.infos[node].remove_pod(uid)
        self.unschedulable.discard(object_key(pod))
        self.found_unschedulable.pop(object_key(pod), None)

    def _forget_assumptions(self) -> None:
        """Leadership lost: bindings in flight were cancelled, and a pod assumed but never bound
        would otherwise stay 'placed' for good (never scheduled again). A binding that did reach
        the server comes back through the informer as the pod with its nodeName."""
        for uid in list(self.assumed):
            self.assumed.pop(uid)
            node = self.placed.pop(uid, None)
            if node in self.infos:
                self.infos[node].remove_pod(uid)

    def _cluster_changed(self) -> None:
        """Pods that fit nowhere may fit now. As kube-scheduler's MoveAllToActiveOrBackoffQueue,
        a pod whose backoff has not run out waits the rest of it: without that, every node update
        or pod deletion sent every unschedulable pod through a cycle at once (thousands of cycles
        per change in a full cluster)."""
        now = trio.current_time() if self.leading else 0.0
        for key in list(self.unschedulable):
            self.unschedulable.discard(key)
            wait_s = self.found_unschedulable.get(key, 0.0) + self.backoff_s(key) - now
            if wait_s > 0 and self.leading:
                self.backing_off.add(key)
                self.nursery.start_soon(self._enqueue_after, key, wait_s)
            else:
                self.enqueue(key)

    async def _enqueue_after(self, key: str, wait_s: float) -> None:
        await trio.sleep(wait_s)
        self.backing_off.discard(key)
        self.enqueue(key)

    # --- queues ---------------------------------------------------------------------------------

    def enqueue(self, key: str) -> None:
        self.active.add(key)

    def backoff_s(self, key: str) -> float:
        return min(INITIAL_BACKOFF_S * 2 ** (self.attempts.get(key, 1) - 1), MAX_BACKOFF_S)

    async def backoff(self, key: str) -> None:
        await trio.sleep(self.backoff_s(key))
        self.enqueue(key)

    async def next_pod(self) -> str:
        key = await self.active.get()
        self.active.done(key)  # one scheduling loop: a key is never in process when added again
        return key

    # --- scheduling -----------------------------------------------------------------------------

    async def schedule_loop(self) -> None:
        self.leading = True
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                try:
                    if self.times:
                        nursery.start_soon(self._log_profile)
                    for pod in self.pods.items():
                        if self._wants(pod):
                            self.enqueue(object_key(pod))
                    while True:
                        key = await self.next_pod()
                        pod = self.pods.get(key)
                        if pod is None or not self._wants(pod) or pod["metadata"]["uid"] in self.placed:
                            continue
                        self.schedule_one(pod, nursery)
                finally:
                    # before the nursery waits for its children: an informer handler running
                    # meanwhile must not start tasks in a closing nursery
                    self.leading = False
        finally:
            self.unschedulable |= self.backing_off  # their timers were cancelled: still pending
            self.backing_off.clear()
            self._forget_assumptions()
            if self.times and self.times.cycles:
                log.info("event=plugin_times (since start)\n%s", self.times.table())

    async def _log_profile(self) -> None:
        while True:
            await trio.sleep(PROFILE_EVERY_S)
            if self.times.cycles:
                log.info("event=plugin_times (since start)\n%s", self.times.table())

    def schedule_one(self, pod: dict, nursery: trio.Nursery) -> None:
        started = time.perf_counter()
        key, uid = object_key(pod), pod["metadata"]["uid"]
        result = self.framework.schedule(pod, list(self.infos.values()))
        self.latency.observe(time.perf_counter() - started)
        if self.times:
            self.times.cycle(time.perf_counter() - started)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if result.node is None:
            self.attempts_total.labels(result="unschedulable").inc()
            self.unschedulable.add(key)
            self.found_unschedulable[key] = trio.current_time()
            message = result.message if result.evaluated else "0/0 nodes are available: no nodes registered."
            self.events.record(pod, "Pod", "Warning", "FailedScheduling", message)
            nursery.start_soon(self._mark_unschedulable, pod, message)
            return
        self.attempts_total.labels(result="scheduled").inc()
        self.placed[uid] = result.node  # assume: the next pod sees the space taken
        self.assumed[uid] = time.monotonic()
        self.infos[result.node].add_pod(pod)
        nursery.start_soon(self._bind, pod, result.node)

    async def _bind(self, pod: dict, node: str) -> None:
        key, uid = object_key(pod), pod["metadata"]["uid"]
        try:
            await self.select_node_for_claims(pod, node)
            await self.api.bind(pod, node)
        except (APIStatusError, Unreachable) as err:
            log.warning("event=bind_failed pod=%s node=%s error=%s", key, node, err)
            if self.placed.get(uid) == node and uid in self.assumed:
                self._forget(pod)
            if not (isinstance(err, APIStatusError) and err.code in (404, 409)):
                self.attempts_total.labels(result="error").inc()
                self.nursery.start_soon(self.backoff, key)
            return
        self.e2e.observe(time.monotonic() - self.first_seen.pop(uid, time.monotonic()))
        self.attempts.pop(key, None)
        self.found_unschedulable.pop(key, None)
        meta = pod["metadata"]
        self.events.record(
            pod, "Pod", "Normal", "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}"
        )

    async def select_node_for_claims(self, pod: dict, node: str) -> None:
        """PreBind of VolumeBinding: each WaitForFirstConsumer claim learns the node its volume goes on."""
        for claim in check_claims(pod, self).delayed:
            if (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE) != node:
                await self.api.patch(self.claims_resource, claim["metadata"]["namespace"], claim["metadata"]["name"],
                                     {"metadata": {"annotations": {SELECTED_NODE: node}}})

    async def _mark_unschedulable(self, pod: dict, message: str) -> None:
        meta = pod["metadata"]
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": timestamps.now(),
        }
        others = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        try:
            await self.api.patch(
                PODS,
                meta["namespace"],
                meta["name"],
                {"status": {"conditions": others + [condition]}},
                subresource="status",
            )
        except (APIStatusError, Unreachable) as err:
            log.info("event=condition_not_written pod=%s error=%s", meta["name"], err)

    async def run(self, metrics_bind: str | None = None, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await run_elected(
            self.api,
            "kube-scheduler",
            self.identity,
            self.factory,
            self.events,
            self.metrics,
            metrics_bind,
            self.schedule_loop,
            task_status=task_status,
        )
