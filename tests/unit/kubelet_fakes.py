"""A tiny in-memory container runtime with contract A's shape (orchestrator/kubelet/runtime), and a
driver that carries out a plan's actions on it the way the pod worker does, for the kubelet's
unit tests. Time is a number the test moves; containers exit when the test says so."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field, replace

from orchestrator.api import pods
from orchestrator.kubelet import backoff as bo
from orchestrator.kubelet import plan as planner
from orchestrator.kubelet import podstatus
from orchestrator.kubelet.model import (
    Failure,
    FinishDeletion,
    KillContainer,
    PrepareSandbox,
    RemoveContainer,
    StartContainer,
    TeardownSandbox,
)
from orchestrator.kubelet.runtime.base import ContainerState, ImageNotFound


@dataclass
class FakeRuntime:
    now: float = 1_700_000_000.0
    images: set[str] = field(default_factory=lambda: {"busybox", "busybox:1.36"})
    containers: dict[str, ContainerState] = field(default_factory=dict)
    sandboxes: set[str] = field(default_factory=set)
    signals: list[tuple[str, int]] = field(default_factory=list)
    name: str = "fake"

    def image_config(self, ref: str):
        if ref not in self.images:
            raise ImageNotFound(f"image {ref!r} is not in the image store: import it with `ketch image import`")
        return ref

    def create_sandbox(self, pod_uid: str) -> None:
        self.sandboxes.add(pod_uid)

    def remove_sandbox(self, pod_uid: str) -> None:
        assert not [c for c in self.containers.values() if c.pod_uid == pod_uid], "containers left in the sandbox"
        self.sandboxes.discard(pod_uid)

    def start_container(self, pod_uid: str, name: str, attempt: int, image: str) -> ContainerState:
        self.image_config(image)
        cid = f"{pod_uid}-{name}-{attempt}"
        assert cid not in self.containers, f"duplicate container {cid}"
        state = ContainerState(cid, pod_uid, name, attempt, image, f"sha256:{image}", "running", 100 + attempt,
                               self.now, None, None, "", f"/logs/{cid}.log")
        self.containers[cid] = state
        return state

    def list_containers(self) -> list[ContainerState]:
        return list(self.containers.values())

    def exit(self, cid: str, code: int, reason: str = "") -> None:
        state = self.containers[cid]
        assert state.state == "running"
        reason = reason or ("Completed" if code == 0 else "Error")
        self.containers[cid] = replace(state, state="exited", exit_code=code, reason=reason, finished_at=self.now,
                                       pid=None)

    def signal(self, cid: str, sig: int) -> None:
        self.signals.append((cid, sig))
        if self.containers[cid].state in ("running", "created"):
            self.containers[cid] = replace(self.containers[cid], state="running")
            self.exit(cid, 128 + sig)

    def remove_container(self, cid: str) -> None:
        assert self.containers[cid].state == "exited", "removing a container that still runs"
        del self.containers[cid]

    def of(self, pod_uid: str) -> list[ContainerState]:
        return [c for c in self.containers.values() if c.pod_uid == pod_uid]

    def running(self, pod_uid: str, name: str) -> ContainerState:
        return next(c for c in self.of(pod_uid) if c.name == name and c.state == "running")


@dataclass
class Driver:
    """The pod worker's loop in miniature: plan, act, until the plan asks for nothing."""
    runtime: FakeRuntime
    pod: dict | None
    crash_backoff: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    probes: dict = field(default_factory=dict)
    deleted: bool = False
    log: list = field(default_factory=list)
    last: planner.Plan | None = None

    @property
    def uid(self) -> str:
        return self.pod["metadata"]["uid"] if self.pod else "gone"

    def sync(self, uid: str | None = None) -> list:
        uid = uid or self.uid
        done = []
        for _ in range(10):
            result = planner.plan(self.pod, self.runtime.of(uid), sandbox_ready=uid in self.runtime.sandboxes,
                                  probes=self.probes, crash_backoff=self.crash_backoff, failures=self.failures,
                                  now=self.runtime.now)
            self.crash_backoff, self.last = result.crash_backoff, result
            if not result.actions:
                return done
            for action in result.actions:
                self.act(uid, action)
                done.append(action)
            if self.deleted:  # the API object is gone: the pod worker stops here
                return done
        raise AssertionError(f"the plan did not settle: {done}")

    def act(self, uid: str, action) -> None:
        self.log.append(action)
        rt = self.runtime
        if isinstance(action, PrepareSandbox):
            rt.create_sandbox(uid)
        elif isinstance(action, StartContainer):
            spec = next(c for c in pods.every_container(self.pod) if c["name"] == action.name)
            try:
                rt.start_container(uid, action.name, action.attempt, spec["image"])
                self.failures.pop(action.name, None)
            except ImageNotFound as err:
                old = self.failures.get(action.name)
                entry = bo.bumped(old.backoff if old else None, old.at if old else rt.now, rt.now)
                self.failures[action.name] = Failure("ErrImagePull", str(err), rt.now, entry)
        elif isinstance(action, KillContainer):
            rt.signal(action.container_id, signal.SIGTERM)
        elif isinstance(action, RemoveContainer):
            rt.remove_container(action.container_id)
        elif isinstance(action, TeardownSandbox):
            if action.keep_containers:
                rt.sandboxes.discard(uid)
            else:
                rt.remove_sandbox(uid)
        elif isinstance(action, FinishDeletion):
            self.deleted = True

    def status(self, terminal: bool = False) -> dict:
        view = podstatus.PodView(self.runtime.of(self.uid), self.last.waiting if self.last else {},
                                 self.probes, sandbox_ready=self.uid in self.runtime.sandboxes, pod_ip="10.244.1.5",
                                 host_ip="10.77.0.2", runtime="fake")
        return podstatus.pod_status(self.pod, view, self.runtime.now, terminal=terminal)


def pod(name: str = "web", *, containers=None, init=None, policy: str = "Always", uid: str = "u1", **spec) -> dict:
    body = {"containers": containers or [{"name": "c", "image": "busybox"}], "restartPolicy": policy,
            "terminationGracePeriodSeconds": 30, **spec}
    if init:
        body["initContainers"] = init
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}, "spec": body,
            "status": {"phase": "Pending"}}
