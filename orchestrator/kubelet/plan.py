"""The pod sync plan: from a pod's spec and what the runtime shows, the next actions (pure).

    plan(pod, observed, sandbox_ready=..., probes=..., crash_backoff=..., failures=..., now=...)

Theory of operation (Kubernetes' kuberuntime computePodActions and the pod worker):
- A pod that is gone from the API, or being deleted, has its running containers killed
  (gracefully: preStop, SIGTERM, SIGKILL after the grace period, at least 2 s); once none runs,
  its containers and sandbox are removed and, if it still exists, its deletion is finished.
- A live pod gets its sandbox first; then its init containers run one at a time, in order, each
  to success; then every app container is started.
- A container that exited is restarted per restartPolicy: Always always, OnFailure after a
  non-zero exit, Never not. The first restart is immediate, later ones wait the back-off
  (backoff.py) and the container shows CrashLoopBackOff meanwhile. An init container that
  fails under Never fails the pod.
- A running container whose liveness or startup probe failed, or whose image was changed, is
  killed; its restart then follows the rules above.
- A failure to create a container (image missing, bad config) is retried after its back-off;
  meanwhile the container waits with that reason (ImagePullBackOff after ErrImagePull).
- Of each container's attempts the newest two are kept (the older one's log serves --previous).
- A pod that finished (all app containers exited for good, or an init container failed under
  Never) keeps its containers for their logs but gives its network and volumes back; an
  ephemeral container still running then is stopped.
- A container created but never started (the kubelet died in between) is stopped, then restarted.
- Ephemeral containers (kubectl debug) start once each, whether or not initialisation is done,
  and are never restarted.
The plan returns the actions, the new crash back-off entries, each waiting container's reason
and message, and when to look again (a back-off that ends).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.api import pods
from orchestrator.kubelet import backoff as bo
from orchestrator.kubelet.model import (
    EXITED,
    MINIMUM_GRACE_S,
    RUNNING,
    Action,
    Failure,
    FinishDeletion,
    KillContainer,
    ObservedContainer,
    PrepareSandbox,
    RemoveContainer,
    StartContainer,
    TeardownSandbox,
)
from orchestrator.kubelet.probes import FAILURE, killing_message

ERR_IMAGE_PULL_SHOWN_S = 1.0  # how long ErrImagePull shows before ImagePullBackOff


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    crash_backoff: dict[str, bo.BackoffEntry] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # container -> (reason, message)
    wake_in_s: float | None = None
    terminal: bool = False
    init_failed: bool = False

    def wake(self, seconds: float) -> None:
        seconds = max(0.05, seconds)
        self.wake_in_s = seconds if self.wake_in_s is None else min(self.wake_in_s, seconds)


def latest(observed: list[ObservedContainer], name: str) -> ObservedContainer | None:
    mine = [c for c in observed if c.name == name]
    return max(mine, key=lambda c: c.attempt) if mine else None


def grace_period_s(pod: dict | None) -> float:
    meta, spec = (pod or {}).get("metadata") or {}, (pod or {}).get("spec") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return float(max(MINIMUM_GRACE_S, grace if isinstance(grace, (int, float)) else 30))


def pod_label(pod: dict) -> str:
    """How the kubelet names a pod in messages: name_namespace(uid)."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def plan(pod: dict | None, observed: list[ObservedContainer], *, sandbox_ready: bool, probes: dict[str, dict[str, str]],
         crash_backoff: dict[str, bo.BackoffEntry], failures: dict[str, Failure], now: float,
         pod_failure: Failure | None = None, leftovers: bool = False) -> Plan:
    """pod None: the pod is no longer bound here (or gone). probes: container id -> kind -> result.
    failures: container name -> its last failed creation; pod_failure: the sandbox's or volumes'.
    leftovers: some part of a sandbox exists (a runtime sandbox, an address) even if not ready."""
    out = Plan(crash_backoff=dict(crash_backoff))
    running = [c for c in observed if c.state == RUNNING]
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        _stop_everything(out, pod, observed, running, sandbox_ready or leftovers)
        return out
    if finished(pod, observed):
        out.terminal = True
        out.init_failed = _init_failed(pod, observed)
        _remove_old_attempts(out, observed)
        for container in running:  # ephemeral containers end with the pod
            out.actions.append(KillContainer(container.id, container.name, grace_period_s(pod),
                                             f"Pod has finished, stopping container {container.name}"))
        if sandbox_ready and not running:
            out.actions.append(TeardownSandbox(keep_containers=True))
        return out
    if not sandbox_ready:
        if pod_failure is not None and (pod_failure.permanent or bo.in_backoff(pod_failure.backoff, pod_failure.at,
                                                                                now)):
            out.wake(bo.remaining_s(pod_failure.backoff, pod_failure.at, now) or bo.MAX_DELAY_S)
            return out
        out.actions.append(PrepareSandbox())
        return out
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    known = {c.get("name") for c in pods.every_container(pod)}
    for container in running:
        if container.name not in known:
            out.actions.append(KillContainer(container.id, container.name, grace_period_s(pod),
                                             f"Container {container.name} is not in the pod's spec, stopping"))
    apps_started = any(latest(observed, c.get("name")) is not None for c in spec.get("containers") or [])
    if apps_started or _run_init_containers(out, pod, observed, failures, now):
        _run_app_containers(out, pod, observed, policy, probes, failures, now)
    _run_ephemeral_containers(out, pod, observed, failures, now)
    _remove_old_attempts(out, observed)
    return out


def _restartable(policy: str, container: ObservedContainer) -> bool:
    return policy == "Always" or (policy == "OnFailure" and container.exit_code != 0)


def _init_failed(pod: dict, observed: list[ObservedContainer]) -> bool:
    """An init container failed under restartPolicy Never: the pod has failed."""
    spec = pod.get("spec") or {}
    if (spec.get("restartPolicy") or "Always") != "Never":
        return False
    for container in spec.get("initContainers") or []:
        last = latest(observed, container.get("name"))
        if last is None or last.state != EXITED:
            return False
        if last.exit_code != 0:
            return True
    return False


def finished(pod: dict, observed: list[ObservedContainer]) -> bool:
    """Has the pod run to its end (nothing will be started again)? Every app container exited
    and restartPolicy does not restart it, or an init container failed under Never."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    if _init_failed(pod, observed):
        return True
    containers = spec.get("containers") or []
    if not containers:
        return False
    for container in containers:
        last = latest(observed, container.get("name"))
        if last is None or last.state != EXITED or _restartable(policy, last):
            return False
    return True


def _stop_everything(out: Plan, pod: dict | None, observed: list, running: list, sandbox_exists: bool) -> None:
    grace = grace_period_s(pod)
    if running:
        for container in running:
            out.actions.append(KillContainer(container.id, container.name, grace,
                                             f"Stopping container {container.name}", run_pre_stop=pod is not None))
        return
    out.actions += [RemoveContainer(c.id, c.name) for c in observed]
    if sandbox_exists or observed:
        out.actions.append(TeardownSandbox())
    if pod is not None:
        out.actions.append(FinishDeletion())


def _creation_waiting(out: Plan, container: dict, failure: Failure | None, now: float) -> bool:
    """Is this container's next creation held back by an earlier failure? Sets its waiting reason."""
    if failure is None:
        return False
    if not failure.permanent and not bo.in_backoff(failure.backoff, failure.at, now):
        return False
    reason, message = failure.reason, failure.message
    if reason == "ErrImagePull":
        since = now - failure.at
        if since >= ERR_IMAGE_PULL_SHOWN_S:
            reason = "ImagePullBackOff"
            message = f'Back-off pulling image "{container.get("image", "")}": ErrImagePull: {failure.message}'
        else:
            out.wake(ERR_IMAGE_PULL_SHOWN_S - since)
    out.waiting[container["name"]] = (reason, message)
    out.wake(bo.remaining_s(failure.backoff, failure.at, now) or bo.MAX_DELAY_S)
    return True


def _restart(out: Plan, pod: dict, container: dict, last: ObservedContainer, failures: dict[str, Failure],
             now: float, init: bool) -> None:
    """Start the next attempt of an exited container, unless its back-off holds it."""
    name = container["name"]
    finished = last.finished_at if last.finished_at is not None else now
    entry = out.crash_backoff.get(name)
    if bo.in_backoff(entry, finished, now):
        out.waiting[name] = ("CrashLoopBackOff", f"back-off {bo.duration_text(entry.delay_s)} restarting failed "
                                                 f"container={name} pod={pod_label(pod)}")
        out.wake(bo.remaining_s(entry, finished, now))
        return
    if _creation_waiting(out, container, failures.get(name), now):
        return
    out.crash_backoff[name] = bo.bumped(entry, finished, now)
    out.actions.append(StartContainer(name, last.attempt + 1, init))


def _run_init_containers(out: Plan, pod: dict, observed: list, failures: dict[str, Failure], now: float) -> bool:
    """Advance the init containers; True once every one has succeeded."""
    for container in (pod.get("spec") or {}).get("initContainers") or []:
        name = container.get("name")
        last = latest(observed, name)
        if last is None:
            if not _creation_waiting(out, container, failures.get(name), now):
                out.actions.append(StartContainer(name, 0, init=True))
            return False
        if last.state == RUNNING:
            return False
        if last.state != EXITED:
            _stop_unstarted(out, last)
            return False
        if last.exit_code == 0:
            continue
        _restart(out, pod, container, last, failures, now, init=True)
        return False
    return True


def _run_app_containers(out: Plan, pod: dict, observed: list, policy: str, probes: dict[str, dict[str, str]],
                        failures: dict[str, Failure], now: float) -> None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        name = container.get("name")
        last = latest(observed, name)
        if last is None:
            if not _creation_waiting(out, container, failures.get(name), now):
                out.actions.append(StartContainer(name, 0))
            continue
        if last.state == RUNNING:
            results = probes.get(last.id) or {}
            failed = next((kind for kind in ("startup", "liveness") if results.get(kind) == FAILURE), None)
            if failed:
                out.actions.append(KillContainer(last.id, name, grace_period_s(pod), killing_message(failed, name)))
            elif container.get("image") and last.image and container["image"] != last.image:
                out.actions.append(KillContainer(last.id, name, grace_period_s(pod),
                                                 f"Container {name} definition changed, will be restarted"))
            continue
        if last.state != EXITED:
            _stop_unstarted(out, last)
            continue
        if _restartable(policy, last):
            _restart(out, pod, container, last, failures, now, init=False)


def _run_ephemeral_containers(out: Plan, pod: dict, observed: list, failures: dict[str, Failure], now: float) -> None:
    for container in pods.ephemeral_containers(pod):
        name = container.get("name")
        last = latest(observed, name)
        if last is None:
            if not _creation_waiting(out, container, failures.get(name), now):
                out.actions.append(StartContainer(name, 0))
        elif last.state not in (RUNNING, EXITED):
            _stop_unstarted(out, last)


def _stop_unstarted(out: Plan, container: ObservedContainer) -> None:
    """A container created but never started (a kubelet died between the two): stop it; once it
    shows as exited, the restart rules take over."""
    out.actions.append(KillContainer(container.id, container.name, MINIMUM_GRACE_S,
                                     f"Container {container.name} was created but never started, stopping",
                                     run_pre_stop=False))


def _remove_old_attempts(out: Plan, observed: list) -> None:
    """Keep each container's newest two attempts: the current one and the one `logs --previous` shows."""
    for name in sorted({c.name for c in observed}):
        attempts = sorted((c for c in observed if c.name == name), key=lambda c: c.attempt)
        out.actions += [RemoveContainer(c.id, name) for c in attempts[:-2] if c.state == EXITED]
