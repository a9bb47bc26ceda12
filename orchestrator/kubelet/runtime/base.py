"""Contract A: the container runtime's interface, as the kubelet calls it (blocking calls, run
from trio threads). Implemented by backends.py (runc, process, local); tests use doubles of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RuntimeFailure(Exception):
    """Base of the runtime's errors."""


class ImageNotFound(RuntimeFailure):
    """The image is not in the store; the message says how to import it."""


class InvalidSpec(RuntimeFailure):
    """The runtime cannot run this spec; the host is unchanged."""


@dataclass(frozen=True)
class ImageConfig:
    ref: str
    image_id: str
    entrypoint: list[str]
    cmd: list[str]
    env: list[str]
    working_dir: str


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class Resources:
    cpu_request_milli: int = 0
    cpu_limit_milli: int | None = None
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None


# Whose processes a pod's container sees: its own (a PID namespace each), the pod's
# (shareProcessNamespace: one for the pod), or the host's (hostPID).
PID_CONTAINER, PID_POD, PID_HOST = "container", "pod", "host"
HOST_NAMESPACE = "host"  # what pid_namespace() answers for hostPID: no namespace of its own


@dataclass(frozen=True)
class SandboxConfig:
    pod_uid: str
    namespace: str
    name: str
    hostname: str
    netns_path: str | None
    resolv_conf: str
    hosts: str
    pod_resources: Resources
    pid_mode: str = PID_CONTAINER
    host_ipc: bool = False


@dataclass(frozen=True)
class ContainerConfig:
    pod_uid: str
    name: str
    attempt: int
    image: str
    argv: list[str]
    env: list[tuple[str, str]]
    working_dir: str | None
    mounts: list[Mount]
    resources: Resources
    stdin: bool = False
    tty: bool = False
    stdin_once: bool = False
    pid_namespace_of: str | None = None  # a running container's id: share its processes (kubectl debug --target)


@dataclass(frozen=True)
class ContainerState:
    id: str
    pod_uid: str
    name: str
    attempt: int
    image: str
    image_id: str
    state: str
    pid: int | None
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    reason: str
    log_path: str


@dataclass(frozen=True)
class ContainerUsage:
    cpu_usage_ns: int
    memory_working_set_bytes: int


@dataclass(frozen=True)
class AttachPoint:
    """Where a running container's shim serves attach (shim.py's protocol), and whether the
    container has a terminal (then the attach has one output stream, as Kubernetes makes it)."""
    directory: str
    tty: bool
    stdin: bool


class ExecProcess(Protocol):
    stdin: int | None
    stdout: int | None
    stderr: int | None

    def resize(self, cols: int, rows: int) -> None: ...

    def wait(self) -> int: ...


class ContainerRuntime(Protocol):
    name: str

    def image_config(self, ref: str) -> ImageConfig: ...

    def create_sandbox(self, cfg: SandboxConfig) -> None: ...

    def remove_sandbox(self, pod_uid: str) -> None: ...

    def start_container(self, sandbox: SandboxConfig, cfg: ContainerConfig) -> ContainerState: ...

    def list_containers(self) -> list[ContainerState]: ...

    def list_sandboxes(self) -> list[str]: ...

    def signal(self, container_id: str, sig: int) -> None: ...

    def remove_container(self, container_id: str) -> None: ...

    def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool,
             size: tuple[int, int] | None = None) -> ExecProcess: ...

    def attach_point(self, container_id: str) -> AttachPoint: ...

    def usage(self, pod_uid: str) -> dict[str, ContainerUsage]: ...
