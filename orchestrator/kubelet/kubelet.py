"""The kubelet's sync loop (adapter): informers on the pods bound to this node, one worker per pod
through a work queue, each sync a pure plan carried out by the pod worker, status patched only
when it changed.

    Kubelet(api, runtime, network, settings, facts).run()

Order at start: register the Node; list the node's pods (informers, field selector
spec.nodeName); once the pod network is ready, adopt what the runtime and the network already
hold (a restarted kubelet finds its containers: valid ones belong to a pod still bound here,
the rest are stopped and removed); only then start the pod workers. While the API server is
away the informers keep their caches, pods keep running and restarting, and statuses wait
until it is back (a failed patch is tried again in 2 s).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from orchestrator.api import pods as pod_shape
from orchestrator.api import quantity
from orchestrator.api.volumes import claim_names, volume_path
from orchestrator.client.api import (
    CONFIGMAPS,
    NODES,
    PODS,
    SERVICES,
    APIClient,
    APIStatusError,
    Unreachable,
    resource,
)
from orchestrator.client.events import EventRecorder
from orchestrator.client.informer import InformerFactory
from orchestrator.client.workqueue import WorkQueue
from orchestrator.kubelet import crilog, nodeinfo, podstatus, volumes
from orchestrator.kubelet.envvars import PodFacts
from orchestrator.kubelet.model import RUNNING
from orchestrator.kubelet.node_agent import NodeAgent
from orchestrator.kubelet.plan import plan
from orchestrator.kubelet.pleg import ContainerCache
from orchestrator.kubelet.podworker import PodActions, PodRecord
from orchestrator.kubelet.probers import ProbeWorkers
from orchestrator.kubelet.token_manager import TokenManager
from orchestrator.metrics import Counter, Histogram, Registry

log = logging.getLogger("ketch.kubelet")
MAX_ROUNDS = 6          # plan -> act rounds in one sync before it yields to other pods
STATUS_RETRY_S = 2.0
EVENT_REPEAT_S = 30.0
MAX_RECENT_EVENTS = 5000


@dataclass
class Settings:
    node_name: str
    root_dir: Path
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    heartbeat_s: float = 2.0
    relist_s: float = 1.0
    housekeeping_s: float = 10.0
    # As many pod workers as pods a node takes (Kubernetes runs one per pod): a pod waiting out its
    # grace period holds its worker, and with 8 workers 8 terminating pods stalled every new pod
    # for 30 s (found by the lab chaos runs). Workers are trio tasks: idle ones cost nothing.
    workers: int = 110


def _strip_none(value):
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _log_tail_message(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - 64 * 1024))
            return crilog.fallback_message(handle.read().split(b"\n")[1:])
    except OSError:
        return ""


def references_objects(pod: dict) -> bool:
    text = json.dumps(pod.get("spec") or {})
    return any(word in text for word in ('"configMap', '"secret', '"secretKeyRef', '"secretRef'))


class Kubelet:
    def __init__(self, api: APIClient, runtime, network, settings: Settings, facts: nodeinfo.HostFacts) -> None:
        self.api, self.runtime, self.network, self.settings, self.facts = api, runtime, network, settings, facts
        self.pods_dir = settings.root_dir / "pods"
        self.can_mount = network.mode == "bridge"
        self.factory = InformerFactory(api, resync_s=60)
        self.pods = self.factory.informer(PODS, field_selector=f"spec.nodeName={settings.node_name}")
        self.pods.add_index("uid", lambda p: [p["metadata"].get("uid", "")])
        self.pods.add_handler(on_add=self._pod_event, on_update=lambda _, new: self._pod_event(new),
                              on_delete=self._pod_event)
        self.nodes = self.factory.informer(NODES)
        self.services = self.factory.informer(SERVICES)  # service links in containers' environments
        self.claims = self.factory.informer(resource("persistentvolumeclaims"))
        self.persistent_volumes = self.factory.informer(resource("persistentvolumes"))
        self.claims.add_handler(on_update=lambda old, new: self._claim_bound(new))
        self.object_informers: dict[tuple[str, str], object] = {}
        self.queue = WorkQueue("kubelet-pods", base_delay_s=0.2, max_delay_s=10.0)
        self.records: dict[str, PodRecord] = {}
        self.events = EventRecorder(api, "kubelet")
        self.cache = ContainerCache(lambda: self.runtime_call("list_containers"), self.queue.add)
        self.actions = PodActions(self)
        self.tokens = TokenManager(api)
        self.recent_events: dict[tuple[str, str, str], float] = {}
        self.probes = ProbeWorkers(runtime, self.queue.add,
                                   lambda pod, name, message: self.event(pod, "Warning", "Unhealthy", message))
        self.agent = NodeAgent(self, settings.heartbeat_s)
        self.nodes.add_handler(on_add=self.agent.node_changed, on_update=self.agent.node_changed,
                               on_delete=self.agent.node_changed)
        self.metrics = Registry()
        self.runtime_operations = Counter("kubelet_runtime_operations_total", "Runtime calls, by operation.",
                                          ["operation_type"], registry=self.metrics)
        self.runtime_errors = Counter("kubelet_runtime_operations_errors_total", "Runtime calls that failed.",
                                      ["operation_type"], registry=self.metrics)
        self.runtime_seconds = Histogram("kubelet_runtime_operations_duration_seconds", "Runtime (and pod network) "
                                         "call durations, by operation.", ["operation_type"], registry=self.metrics,
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.sync_seconds = Histogram("kubelet_pod_worker_duration_seconds", "Time one pod sync takes.",
                                      registry=self.metrics)
        self.start_seconds = Histogram("kubelet_pod_start_duration_seconds", "From the kubelet seeing a pod to "
                                       "all its containers running.", registry=self.metrics,
                                       buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
        self.metrics.gauge_of("kubelet_running_pods", "Pods with a running container.",
                              lambda: sum(any(c.state == RUNNING for c in cs) for cs in self.cache.by_pod.values()))
        self.metrics.gauge_of("kubelet_running_containers", "Running containers.",
                              lambda: sum(c.state == RUNNING for cs in self.cache.by_pod.values() for c in cs))
        self.adopted = trio.Event()
        self.termination_messages: dict[str, str] = {}

    # --- plumbing the pod worker uses ---------------------------------------------------------------

    def event(self, pod: dict, kind: str, reason: str, message: str) -> None:
        """An event about a pod; the same one again within EVENT_REPEAT_S is dropped (Kubernetes'
        event correlator folds repeats into a count: a crash loop or a failing probe must not
        flood the API server)."""
        now = time.monotonic()
        key = (pod["metadata"].get("uid", ""), reason, message)
        if now - self.recent_events.get(key, float("-inf")) < EVENT_REPEAT_S:
            return
        if len(self.recent_events) >= MAX_RECENT_EVENTS:
            self.recent_events = {k: t for k, t in self.recent_events.items() if now - t < EVENT_REPEAT_S}
        self.recent_events[key] = now
        self.events.record(pod, "Pod", kind, reason, message)

    async def runtime_call(self, operation: str, *args):
        return await self.timed(operation, trio.to_thread.run_sync, getattr(self.runtime, operation), *args)

    async def timed(self, operation: str, call, *args):
        """A runtime or network call, counted and timed (kubelet_runtime_operations_*)."""
        self.runtime_operations.labels(operation_type=operation).inc()
        started = time.monotonic()
        try:
            return await call(*args)
        except Exception:
            self.runtime_errors.labels(operation_type=operation).inc()
            raise
        finally:
            self.runtime_seconds.labels(operation_type=operation).observe(time.monotonic() - started)

    def observed_started(self, container) -> None:
        self.cache.put(container)

    async def wait_exited(self, container_id: str, timeout_s: float) -> bool:
        return await self.cache.wait_exited(container_id, timeout_s)

    def pod_facts(self, pod_ip: str) -> PodFacts:
        return PodFacts(pod_ips=(pod_ip,) if pod_ip else (), host_ips=(self.facts.node_ip,),
                        allocatable=quantity.resources(nodeinfo.allocatable(self.facts)),
                        services=tuple(self.services.items()))

    def size_of(self, text: str) -> int | None:
        try:
            return quantity.amount(text)
        except quantity.QuantityError:
            return None

    def _objects(self, plural: str, namespace: str):
        key = (plural, namespace)
        if key not in self.object_informers:
            res = CONFIGMAPS if plural == "configmaps" else resource("secrets")
            informer = self.factory.informer(res, namespace=namespace)
            informer.add_handler(on_add=lambda _: self._namespace_changed(namespace),
                                 on_update=lambda old, new: old is not new and self._namespace_changed(namespace),
                                 on_delete=lambda _: self._namespace_changed(namespace))
            self.object_informers[key] = informer
        return self.object_informers[key]

    def _namespace_changed(self, namespace: str) -> None:
        for pod in self.pods.items():
            if pod["metadata"].get("namespace") == namespace and references_objects(pod):
                self.queue.add(pod["metadata"]["uid"])

    def _claim_bound(self, claim: dict) -> None:
        """A pod waiting for its claim to be bound is looked at again at once."""
        if not (claim.get("spec") or {}).get("volumeName"):
            return
        for pod in self.pods.items():
            if pod["metadata"].get("namespace") == claim["metadata"]["namespace"] and any(
                    c == claim["metadata"]["name"] for _, c in claim_names(pod)):
                self.queue.add(pod["metadata"]["uid"])

    def claim_path(self, namespace: str, name: str) -> str:
        """The directory of the volume bound to the claim (VolumeError, not permanent, until it is)."""
        claim = self.claims.get(f"{namespace}/{name}")
        if claim is None:
            raise volumes.VolumeError(name, f'persistentvolumeclaim "{name}" not found', permanent=False)
        volume = self.persistent_volumes.get((claim.get("spec") or {}).get("volumeName") or "")
        path = volume_path(volume) if volume else ""
        if not path:
            raise volumes.VolumeError(name, f'persistentvolumeclaim "{name}" is not bound to a volume with a path '
                                            "on this node yet", permanent=False)
        return path

    def configmap(self, namespace: str, name: str) -> dict | None:
        return self._objects("configmaps", namespace).get(f"{namespace}/{name}")

    def secret(self, namespace: str, name: str) -> dict | None:
        return self._objects("secrets", namespace).get(f"{namespace}/{name}")

    async def objects_ready(self, pod: dict) -> None:
        """ConfigMaps and Secrets of the pod's namespace listed once (bounded wait: while the API
        server is away the cache, or nothing, is what there is)."""
        if not references_objects(pod):
            return
        namespace = pod["metadata"]["namespace"]
        with trio.move_on_after(5.0):
            for plural in ("configmaps", "secrets"):
                await self._objects(plural, namespace).synced.wait()

    def resolv_conf(self, pod: dict) -> str:
        from netproxy.podnet import resolv_conf
        spec = pod.get("spec") or {}
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork"))
        if cluster and self.settings.cluster_dns:
            return resolv_conf(self.settings.cluster_dns, pod["metadata"]["namespace"], self.settings.cluster_domain)
        try:
            return Path("/etc/resolv.conf").read_text()
        except OSError:
            return ""

    def etc_hosts(self, pod: dict, ip: str, hostname: str) -> str:
        from netproxy.podnet import etc_hosts
        spec = pod.get("spec") or {}
        return etc_hosts(ip, hostname, subdomain=spec.get("subdomain"), namespace=pod["metadata"]["namespace"],
                         cluster_domain=self.settings.cluster_domain, host_aliases=spec.get("hostAliases") or [])

    def network_became_ready(self) -> None:
        for pod in self.pods.items():
            self.queue.add(pod["metadata"]["uid"])

    # --- informers ----------------------------------------------------------------------------------

    def _pod_event(self, pod: dict) -> None:
        self.queue.add(pod["metadata"]["uid"])

    def pod_by_uid(self, uid: str) -> dict | None:
        found = self.pods.by_index("uid", uid)
        return found[0] if found else None

    # --- adoption and housekeeping ------------------------------------------------------------------

    async def adopt(self) -> None:
        """Rebuild the records of what survives in the runtime and the network; queue it all."""
        await self.cache.relist()
        sandboxes = set(await self.runtime_call("list_sandboxes"))
        nets = await self.network.existing()
        for uid in self.cache.uids() | sandboxes | set(nets):
            record = self.records.setdefault(uid, PodRecord(uid))
            pod = self.pod_by_uid(uid)
            record.pod, record.admitted = pod, True
            record.leftovers = uid in sandboxes or uid in nets
            net = nets.get(uid)
            if pod is not None and (pod.get("spec") or {}).get("hostNetwork"):
                net = await self.network_for_host()
            elif net is None and self.network.mode == "host":
                net = await self.network.setup(uid, "", "")
            if pod is not None and uid in sandboxes and net is not None:
                record.net = net
                record.sandbox = self.actions.sandbox_config(pod, net)
                try:
                    record.volume_dirs = self.actions.volume_dirs(record, volumes.pod_volumes(pod, self.claim_path))
                except volumes.VolumeError:
                    record.sandbox = None
            elif net is not None:
                record.net = net
            self.queue.add(uid)
        log.info("event=adopted pods=%d containers=%d", len(self.records), sum(map(len, self.cache.by_pod.values())))
        self.adopted.set()

    async def network_for_host(self):
        from orchestrator.kubelet.network import PodNet
        return PodNet(self.facts.node_ip, None)

    async def housekeeping(self) -> None:
        """Pods that went away while nobody looked (their uid is not bound here): queue them."""
        while True:
            await trio.sleep(self.settings.housekeeping_s)
            try:
                sandboxes = set(await self.runtime_call("list_sandboxes"))
                nets = set(await self.network.existing())
            except Exception as err:  # noqa: BLE001 - logged; the next round tries again
                log.warning("event=housekeeping_failed error=%s", err)
                continue
            for uid in (self.cache.uids() | sandboxes | nets | set(self.records)):
                if self.pod_by_uid(uid) is None:
                    record = self.records.setdefault(uid, PodRecord(uid, admitted=True))
                    record.leftovers = record.leftovers or uid in sandboxes or uid in nets
                    self.queue.add(uid)
            self.termination_messages = {k: v for k, v in self.termination_messages.items() if k in self.cache.by_id}

    # --- one pod --------------------------------------------------------------------------------------

    async def sync(self, uid: str) -> None:
        started = time.monotonic()
        try:
            await self._sync(uid)
        finally:
            self.sync_seconds.observe(time.monotonic() - started)

    async def _sync(self, uid: str) -> None:
        record = self.records.setdefault(uid, PodRecord(uid))
        pod = self.pod_by_uid(uid)
        if record.deleted:  # finished: the API object is on its way out, nothing is left to do
            if pod is None:
                self._forget(uid)
            return
        record.pod = pod
        observed = self.cache.of(uid)
        if pod is not None and not record.admitted:
            self._admit(record, pod, observed)
        if pod is not None and record.rejection:
            await self.report(record, pod, observed, {}, terminal=False)
            return
        if pod is not None and not pod["metadata"].get("deletionTimestamp"):
            await self.objects_ready(pod)
            if record.sandbox is not None:
                await self._refresh_volumes(record)
        result = None
        for _ in range(MAX_ROUNDS):
            result = plan(record.pod, observed, sandbox_ready=record.sandbox is not None, probes=self.probes.results,
                          crash_backoff=record.crash_backoff, failures=record.failures, now=time.time(),
                          pod_failure=record.pod_failure, leftovers=record.leftovers)
            record.crash_backoff = result.crash_backoff
            if not result.actions:
                break
            before = time.monotonic()
            await self.actions.execute(record, result.actions)
            if record.deleted:
                self.probes.forget_pod(uid)
                return
            await self.cache.relist(before)
            observed = self.cache.of(uid)
        else:
            self.queue.add_after(uid, 0.1)  # more to do: yield to other pods, come back at once
        if pod is None:
            self.probes.forget_pod(uid)
            if not observed and record.sandbox is None and not record.leftovers:
                self._forget(uid)
            return
        running = [c for c in observed if c.state == RUNNING]
        ready_before = {s.get("containerID", "").split("://")[-1]: s.get("ready", False)
                        for s in pod_shape.container_statuses(pod)}
        self.probes.sync_pod(pod, running, record.net.ip if record.net else "", ready_before)
        terminal = bool(pod["metadata"].get("deletionTimestamp")) and not running
        await self.report(record, pod, observed, result.waiting, terminal=terminal)
        if result.wake_in_s is not None:
            self.queue.add_after(uid, result.wake_in_s)

    def _forget(self, uid: str) -> None:
        self.records.pop(uid, None)
        self.tokens.forget(uid)
        self.probes.forget_pod(uid)

    def _admit(self, record: PodRecord, pod: dict, observed: list) -> None:
        record.admitted = True
        if observed or pod["metadata"].get("deletionTimestamp") or pod_shape.is_terminal(pod):
            return  # already running here (adopted), or on its way out: nothing to decide
        others = [r.pod for r in self.records.values() if r.uid != record.uid and r.admitted and r.pod is not None
                  and not r.rejection and not pod_shape.is_terminal(r.pod)]
        record.rejection = nodeinfo.admit(pod, others, self.facts)
        if record.rejection:
            self.event(pod, "Warning", record.rejection[0], record.rejection[1])

    async def _refresh_volumes(self, record: PodRecord) -> None:
        try:
            await self.actions.set_up_volumes(record)
        except volumes.VolumeError as err:
            self.event(record.pod, "Warning", "FailedMount",
                       f'MountVolume.SetUp failed for volume "{err.volume}" : {err}')

    async def messages(self, pod: dict, observed: list) -> dict[str, str]:
        """Termination messages of exited containers whose policy is FallbackToLogsOnError (read once)."""
        policies = {c.get("name"): c.get("terminationMessagePolicy") for c in pod_shape.every_container(pod)}
        out = {}
        for container in observed:
            if container.state != "exited" or container.exit_code == 0 or \
                    policies.get(container.name) != "FallbackToLogsOnError":
                continue
            if container.id not in self.termination_messages:
                self.termination_messages[container.id] = await trio.to_thread.run_sync(
                    _log_tail_message, container.log_path)
            out[container.id] = self.termination_messages[container.id]
        return out

    async def report(self, record: PodRecord, pod: dict, observed: list, waiting: dict, *, terminal: bool) -> None:
        waiting = dict(waiting)
        if record.pod_failure is not None and record.pod_failure.permanent:
            for container in (pod.get("spec") or {}).get("containers") or []:
                waiting.setdefault(container.get("name"), ("CreateContainerConfigError", record.pod_failure.message))
        view = podstatus.PodView(observed, waiting, self.probes.results, await self.messages(pod, observed),
                                 record.sandbox is not None,
                                 record.net.ip if record.net else "", self.facts.node_ip, self.runtime.name,
                                 record.rejection)
        status = podstatus.pod_status(pod, view, time.time(), terminal=terminal)
        if status["phase"] == "Running" and not record.running_seen:
            record.running_seen = True
            self.start_seconds.observe(time.monotonic() - record.first_seen)
        if _strip_none(status) == _strip_none(pod.get("status") or {}) or status == record.reported:
            return
        meta = pod["metadata"]
        try:
            await self.api.patch(PODS, meta["namespace"], meta["name"], {"status": status}, subresource="status")
            record.reported = status
        except APIStatusError as err:
            if err.code != 404:
                log.warning("event=status_failed pod=%s/%s error=%s", meta["namespace"], meta["name"], err)
                self.queue.add_after(record.uid, STATUS_RETRY_S)
        except Unreachable as err:
            log.info("event=status_deferred pod=%s/%s error=%s", meta["namespace"], meta["name"], err)
            self.queue.add_after(record.uid, STATUS_RETRY_S)

    # --- everything ------------------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.events.run)
            await nursery.start(self.probes.run)
            await self.agent.register()
            nursery.start_soon(self.agent.heartbeats)
            await nursery.start(self.factory.run)
            nursery.start_soon(self.agent.keep_network)
            self.agent.network_wanted.set()
            while not self.network.ready:
                await trio.sleep(0.1)
            await self.adopt()
            nursery.start_soon(self.cache.run, self.settings.relist_s,
                               lambda err: log.warning("event=relist_failed error=%s", err))
            nursery.start_soon(self.queue.run, self.sync, self.settings.workers,
                               lambda key, err: log.warning("event=sync_failed pod=%s error=%r", key, err))
            nursery.start_soon(self.housekeeping)
            task_status.started()
