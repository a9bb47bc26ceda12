"""Carrying out a plan's actions for one pod (adapter): the sandbox, containers, kills with
preStop and grace, removal, teardown and the final deletion, with the kubelet's events.

Each failure becomes data the next plan reads (model.Failure), never an exception out of the
sync: ErrImagePull (the runtime's ImageNotFound), CreateContainerConfigError (env, probes,
resources, volumes that cannot be mounted as specified), CreateContainerError (the runtime's
InvalidSpec), RunContainerError (any other runtime failure); for the pod as a whole
FailedCreatePodSandBox (network, runtime sandbox) and FailedMount (volumes).
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from orchestrator.api import pods
from orchestrator.client.api import PODS, APIStatusError, Unreachable
from orchestrator.kubelet import backoff as bo
from orchestrator.kubelet import containerconfig, volume_disk, volumes
from orchestrator.kubelet.containerconfig import ImageFacts, ResourceValues
from orchestrator.kubelet.envvars import ConfigError, PodFacts
from orchestrator.kubelet.model import (
    MINIMUM_GRACE_S,
    RUNNING,
    Failure,
    FinishDeletion,
    KillContainer,
    PrepareSandbox,
    RemoveContainer,
    StartContainer,
    TeardownSandbox,
)
from orchestrator.kubelet.network import NetworkNotReady, PodNet
from orchestrator.kubelet.plan import latest
from orchestrator.kubelet.probers import run_handler
from orchestrator.kubelet.runtime import base as rt

log = logging.getLogger("ketch.kubelet.pods")
HOOK_TIMEOUT_S = 30.0


@dataclass
class PodRecord:
    """What the kubelet remembers of one pod between syncs (lost on a restart: the runtime and
    the network keep what matters)."""
    uid: str
    pod: dict | None = None
    crash_backoff: dict = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    pod_failure: Failure | None = None
    net: PodNet | None = None
    sandbox: rt.SandboxConfig | None = None
    volume_dirs: dict[str, str] = field(default_factory=dict)
    admitted: bool = False
    rejection: tuple[str, str] | None = None
    reported: dict | None = None
    deleted: bool = False
    leftovers: bool = False  # a sandbox or an address from before (a restart, an interrupted setup)
    first_seen: float = field(default_factory=time.monotonic)
    running_seen: bool = False


def resources(values: ResourceValues) -> rt.Resources:
    return rt.Resources(values.cpu_request_milli, values.cpu_limit_milli, values.memory_limit_bytes, values.pids_limit)


def _failed(previous: Failure | None, reason: str, message: str, now: float, permanent: bool = False) -> Failure:
    entry = bo.bumped(previous.backoff if previous else None, previous.at if previous else now, now)
    return Failure(reason, message, now, entry, permanent)


class PodActions:
    """Needs the kubelet (`k`): api, runtime, network, events, settings, lookups and the relist."""

    def __init__(self, kubelet) -> None:
        self.k = kubelet

    # --- dispatch --------------------------------------------------------------------------------

    async def execute(self, record: PodRecord, actions: list) -> None:
        kills = [a for a in actions if isinstance(a, KillContainer)]
        if kills:
            async with trio.open_nursery() as nursery:  # containers stop in parallel, as Kubernetes does
                for action in kills:
                    nursery.start_soon(self.kill, record, action)
        for action in actions:
            if isinstance(action, PrepareSandbox):
                await self.prepare_sandbox(record)
                if record.sandbox is None:
                    return
            elif isinstance(action, StartContainer):
                await self.start(record, action)
            elif isinstance(action, RemoveContainer):
                await self.k.runtime_call("remove_container", action.container_id)
                self.k.cache.forget(action.container_id)
            elif isinstance(action, TeardownSandbox):
                await self.teardown(record, action.keep_containers)
            elif isinstance(action, FinishDeletion):
                await self.finish_deletion(record)

    def event(self, record: PodRecord, kind: str, reason: str, message: str) -> None:
        if record.pod is not None:
            self.k.event(record.pod, kind, reason, message)

    # --- the sandbox -------------------------------------------------------------------------------

    async def prepare_sandbox(self, record: PodRecord) -> None:
        pod, now = record.pod, time.time()
        meta, spec = pod["metadata"], pod.get("spec") or {}
        try:
            pod_volumes = volumes.pod_volumes(pod, self.k.claim_path)  # refuses a bad spec before anything is made
            pod_resources = resources(containerconfig.pod_resources(pod))
        except (volumes.VolumeError, ConfigError) as err:
            mount = isinstance(err, volumes.VolumeError)
            record.pod_failure = _failed(record.pod_failure, "FailedMount" if mount else "FailedCreatePodSandBox",
                                         str(err), now, permanent=err.permanent if mount else True)
            self.event(record, "Warning", record.pod_failure.reason, str(err))
            return
        try:
            if spec.get("hostNetwork"):
                net = PodNet(self.k.facts.node_ip, None)
            else:
                net = await self.k.timed("network_setup", self.k.network.setup, record.uid, meta["namespace"],
                                         meta["name"])
            sandbox = self.sandbox_config(pod, net, pod_resources)
            await self.k.runtime_call("create_sandbox", sandbox)
        except (NetworkNotReady, rt.RuntimeFailure, OSError, ValueError) as err:
            record.pod_failure = _failed(record.pod_failure, "FailedCreatePodSandBox", str(err), now)
            self.event(record, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {err}")
            return
        record.net = net
        try:
            await self.set_up_volumes(record, pod_volumes)
        except volumes.VolumeError as err:
            record.pod_failure = _failed(record.pod_failure, "FailedMount", str(err), now, permanent=err.permanent)
            self.event(record, "Warning", "FailedMount", f'MountVolume.SetUp failed for volume "{err.volume}" : {err}')
            return
        record.sandbox, record.pod_failure = sandbox, None

    def sandbox_config(self, pod: dict, net: PodNet, pod_resources: rt.Resources | None = None) -> rt.SandboxConfig:
        """The same for the same pod and address: a restarted kubelet rebuilds what it created."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        hostname = (spec.get("hostname") or meta["name"])[:63]
        if pod_resources is None:
            pod_resources = resources(containerconfig.pod_resources(pod))
        pid_mode = rt.PID_HOST if spec.get("hostPID") else rt.PID_POD if spec.get("shareProcessNamespace") \
            else rt.PID_CONTAINER
        return rt.SandboxConfig(meta["uid"], meta["namespace"], meta["name"], hostname, net.netns_path,
                                self.k.resolv_conf(pod), self.k.etc_hosts(pod, net.ip, hostname), pod_resources,
                                pid_mode, bool(spec.get("hostIPC")))

    def volume_dirs(self, record: PodRecord, pod_volumes: dict[str, volumes.Volume]) -> dict[str, str]:
        return {name: volumes.volume_dir(str(self.k.pods_dir), record.uid, v) for name, v in pod_volumes.items()}

    async def set_up_volumes(self, record: PodRecord, pod_volumes: dict[str, volumes.Volume] | None = None) -> None:
        """Make or refresh every volume (API data volumes are rewritten only when changed)."""
        pod = record.pod
        pod_volumes = volumes.pod_volumes(pod, self.k.claim_path) if pod_volumes is None else pod_volumes
        dirs = self.volume_dirs(record, pod_volumes)
        facts = self.k.pod_facts(record.net.ip if record.net else "")
        limit = containerconfig.pod_resources(pod).memory_limit_bytes
        await self.k.tokens.ensure(pod)  # projected serviceAccountToken sources: fetched or renewed when due
        tokens = self.k.tokens.lookup_for(pod)
        for name, volume in pod_volumes.items():
            directory = Path(dirs[name])
            if volume.kind in volumes.API_DATA:
                files = volumes.api_files(volume, pod, facts, self.k.configmap, self.k.secret, tokens)
                for warning in files.warnings:
                    self.event(record, "Warning", "FailedMount", warning)
                await trio.to_thread.run_sync(volume_disk.write_atomically, directory, files.entries)
            else:
                size = volume.spec.get("sizeLimit")
                memory = self.k.size_of(size) if size else limit
                await trio.to_thread.run_sync(lambda v=volume, d=directory, m=memory: volume_disk.set_up(
                    v, d, can_mount=self.k.can_mount, memory_bytes=m))
        record.volume_dirs = dirs

    async def teardown(self, record: PodRecord, keep_containers: bool) -> None:
        try:
            await self.k.timed("network_teardown", self.k.network.teardown, record.uid)
            await trio.to_thread.run_sync(lambda: volume_disk.tear_down(self.k.pods_dir / record.uid,
                                                                        can_mount=self.k.can_mount))
            if not keep_containers:
                await self.k.runtime_call("remove_sandbox", record.uid)
            else:  # a finished pod keeps its containers' logs, not its processes
                await self.k.runtime_call("release_pid_namespace", record.uid)
        except (rt.RuntimeFailure, OSError, ValueError) as err:
            log.warning("event=teardown_failed pod=%s error=%s", record.uid, err)
            raise
        record.sandbox = record.net = None
        record.leftovers = False

    # --- containers --------------------------------------------------------------------------------

    def container_spec(self, record: PodRecord, name: str) -> dict | None:
        return next((c for c in pods.every_container(record.pod or {}) if c.get("name") == name), None)

    async def start(self, record: PodRecord, action: StartContainer) -> None:
        pod, spec = record.pod, self.container_spec(record, action.name)
        name, now = action.name, time.time()
        previous = record.failures.get(name)
        try:
            image = await self.k.runtime_call("image_config", spec.get("image", ""))
        except rt.ImageNotFound as err:
            record.failures[name] = _failed(previous, "ErrImagePull", str(err), now)
            self.event(record, "Warning", "Failed", f'Failed to pull image "{spec.get("image")}": {err}')
            self.event(record, "Normal", "BackOff", f'Back-off pulling image "{spec.get("image")}"')
            return
        except rt.RuntimeFailure as err:
            record.failures[name] = _failed(previous, "ErrImagePull", str(err), now)
            self.event(record, "Warning", "Failed", f'Failed to pull image "{spec.get("image")}": {err}')
            return
        self.event(record, "Normal", "Pulled", f'Container image "{spec.get("image")}" already present on machine')
        try:
            plan = containerconfig.container_plan(
                pod, spec, ImageFacts(list(image.entrypoint), list(image.cmd), list(image.env), image.working_dir),
                self.k.pod_facts(record.net.ip if record.net else ""), self.k.configmap, self.k.secret,
                volumes.pod_volumes(pod, self.k.claim_path), record.volume_dirs)
            mounts = [rt.Mount(volume_disk.checked_sub_path(m), m.container_path, m.read_only) for m in plan.mounts]
        except (ConfigError, volumes.VolumeError) as err:
            record.failures[name] = _failed(previous, "CreateContainerConfigError", str(err), now)
            self.event(record, "Warning", "Failed", f"Error: {err}")
            return
        if plan.invalid_env_names:
            self.event(record, "Warning", "InvalidEnvironmentVariableNames",
                       f"Keys [{', '.join(plan.invalid_env_names)}] from the EnvFrom were skipped since they are "
                       "considered invalid environment variable names.")
        target = spec.get("targetContainerName")
        shared = latest([c for c in self.k.cache.of(record.uid) if c.state == RUNNING], target) if target else None
        if target and shared is None:
            message = f"the target container {target} is not running"
            record.failures[name] = _failed(previous, "CreateContainerError", message, now)
            self.event(record, "Warning", "Failed", f"Error: {message}")
            return
        config = rt.ContainerConfig(record.uid, name, action.attempt, spec.get("image", ""), plan.argv, plan.env,
                                    plan.working_dir, mounts, resources(plan.resources), plan.stdin, plan.tty,
                                    plan.stdin_once, shared.id if shared else None)
        try:
            state = await self.k.runtime_call("start_container", record.sandbox, config)
        except rt.InvalidSpec as err:
            record.failures[name] = _failed(previous, "CreateContainerError", str(err), now)
            self.event(record, "Warning", "Failed", f"Error: {err}")
            return
        except rt.RuntimeFailure as err:
            record.failures[name] = _failed(previous, "RunContainerError", str(err), now)
            self.event(record, "Warning", "Failed", f"Error: failed to start container {name!r}: {err}")
            return
        record.failures.pop(name, None)
        self.k.observed_started(state)
        self.event(record, "Normal", "Created", f"Created container {name}")
        self.event(record, "Normal", "Started", f"Started container {name}")
        await self.post_start(record, spec, state)

    async def post_start(self, record: PodRecord, spec: dict, state) -> None:
        hook = (spec.get("lifecycle") or {}).get("postStart")
        if not hook:
            return
        ok, output = await run_handler(hook, spec, state.id, record.net.ip if record.net else "", self.k.runtime,
                                       HOOK_TIMEOUT_S)
        if not ok:  # Kubernetes kills a container whose postStart hook failed; the restart rules follow
            self.event(record, "Warning", "FailedPostStartHook", output)
            await self.kill(record, KillContainer(state.id, spec.get("name", ""), MINIMUM_GRACE_S,
                                                  f"FailedPostStartHook: {output}", run_pre_stop=False))

    async def kill(self, record: PodRecord, action: KillContainer) -> None:
        """preStop, SIGTERM, and SIGKILL once the grace period is over (Kubernetes' killContainer)."""
        deadline = time.monotonic() + action.grace_s
        self.event(record, "Normal", "Killing", action.message)
        spec = self.container_spec(record, action.name) or {}
        hook = (spec.get("lifecycle") or {}).get("preStop")
        if hook and action.run_pre_stop:
            with trio.move_on_after(action.grace_s):
                ok, output = await run_handler(hook, spec, action.container_id, record.net.ip if record.net else "",
                                               self.k.runtime, action.grace_s)
                if not ok:
                    self.event(record, "Warning", "FailedPreStopHook", output)
        await self.signal(action.container_id, signal.SIGTERM)
        left = max(MINIMUM_GRACE_S, deadline - time.monotonic())
        if await self.k.wait_exited(action.container_id, left):
            return
        await self.signal(action.container_id, signal.SIGKILL)
        if not await self.k.wait_exited(action.container_id, 10.0):
            log.warning("event=kill_unconfirmed pod=%s container=%s", record.uid, action.container_id)

    async def signal(self, container_id: str, sig: int) -> None:
        try:
            await self.k.runtime_call("signal", container_id, sig)
        except rt.RuntimeFailure as err:
            log.info("event=signal_failed container=%s signal=%s error=%s", container_id, sig, err)

    # --- the end -------------------------------------------------------------------------------------

    async def finish_deletion(self, record: PodRecord) -> None:
        meta = record.pod["metadata"]
        try:
            await self.k.api.delete(PODS, meta["namespace"], meta["name"], grace_period_s=0, uid=meta["uid"])
        except APIStatusError as err:
            if err.code not in (404, 409):  # gone, or a new pod took the name: ours is gone either way
                raise
        except Unreachable:
            raise
        record.deleted = True
        log.info("event=pod_deleted pod=%s/%s uid=%s", meta["namespace"], meta["name"], record.uid)


def running(observed: list) -> list:
    return [c for c in observed if c.state == RUNNING]


__all__ = ["PodActions", "PodRecord", "PodFacts"]
