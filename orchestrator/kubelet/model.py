"""The kubelet's own vocabulary, shared by its pure cores: what it observes of a container
(contract A's ContainerState, read by attribute so the cores need not import the runtime), the
failures it remembers between syncs, and the actions a plan asks the pod worker to carry out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.kubelet.backoff import BackoffEntry

RUNNING, CREATED, EXITED = "running", "created", "exited"
MINIMUM_GRACE_S = 2  # Kubernetes never kills with less (kuberuntime_container.go minimumGracePeriodInSeconds)


class ObservedContainer(Protocol):
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
class Failure:
    """An attempt that failed before a container ran: reason is the status reason Kubernetes
    shows (ErrImagePull, CreateContainerConfigError, CreateContainerError, RunContainerError, or
    for the pod as a whole FailedCreatePodSandBox / FailedMount), at is when, and backoff paces
    the retries. permanent: the spec is wrong (retrying is pointless until it changes)."""
    reason: str
    message: str
    at: float
    backoff: BackoffEntry
    permanent: bool = False


# --- actions ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrepareSandbox:
    """Network namespace and address, the runtime's sandbox, and the pod's volumes."""


@dataclass(frozen=True)
class StartContainer:
    name: str
    attempt: int
    init: bool = False


@dataclass(frozen=True)
class KillContainer:
    """preStop (if the container has one and run_pre_stop), SIGTERM, then SIGKILL after grace_s."""
    container_id: str
    name: str
    grace_s: float
    message: str  # the Killing event's message
    run_pre_stop: bool = True


@dataclass(frozen=True)
class RemoveContainer:
    container_id: str
    name: str


@dataclass(frozen=True)
class TeardownSandbox:
    """Give back the network and the volumes. keep_containers: the pod finished, and its exited
    containers stay (with the runtime's sandbox) for their logs until the pod is deleted;
    otherwise the containers are gone and the runtime's sandbox (cgroups, pod dir) goes too."""
    keep_containers: bool = False


@dataclass(frozen=True)
class FinishDeletion:
    """Everything is gone: delete the API object (grace 0), as the kubelet does."""


Action = PrepareSandbox | StartContainer | KillContainer | RemoveContainer | TeardownSandbox | FinishDeletion
