"""A pod's status as the kubelet reports it, from its spec and what the runtime shows (pure).

Shapes are those the official Python client and kubectl read (all timestamps RFC 3339 UTC):
- containerStatuses / initContainerStatuses: name, image, imageID, containerID (`<runtime>://<id>`),
  restartCount (the current attempt), ready, started, state and lastState, each one of
  `waiting {reason, message}`, `running {startedAt}` or `terminated {exitCode, reason, message,
  startedAt, finishedAt, containerID}`; lastState is {} until a container has exited once.
- Waiting reasons: ContainerCreating (no container yet), PodInitializing (init containers not
  done), CrashLoopBackOff, ErrImagePull/ImagePullBackOff, CreateContainerConfigError,
  CreateContainerError, RunContainerError (from the plan's waiting map). Terminated reasons come
  from the runtime: Completed, Error, OOMKilled.
- phase: Kubernetes' getPhase (kubelet_pods.go): Pending until init containers are done and every
  container has started once; Running while one runs (or restarts under Always/OnFailure);
  Succeeded when all exited 0 for good; Failed when one failed for good, or an init container
  failed under Never. A pod rejected at admission is Failed with its reason and message.
- conditions: PodReadyToStartContainers, Initialized, ContainersReady, Ready (readiness gates
  included) and PodScheduled; a condition's lastTransitionTime moves only when its status does.
- podIP/podIPs, hostIP/hostIPs, startTime (kept from the first report) and qosClass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.api import conditions as cond
from orchestrator.api import quantity, timestamps
from orchestrator.kubelet.model import EXITED, RUNNING, ObservedContainer
from orchestrator.kubelet.probes import SUCCESS


@dataclass
class PodView:
    """Everything besides the pod object that its status is made of."""
    observed: list[ObservedContainer] = field(default_factory=list)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)      # from the plan
    probes: dict[str, dict[str, str]] = field(default_factory=dict)        # container id -> kind -> result
    messages: dict[str, str] = field(default_factory=dict)                 # container id -> termination message
    sandbox_ready: bool = False
    pod_ip: str = ""
    host_ip: str = ""
    runtime: str = "runc"
    rejection: tuple[str, str] | None = None                               # admission: (reason, message)


def _stamp(seconds: float | None) -> str | None:
    return None if seconds is None else timestamps.format_epoch(seconds)


def _attempts(observed: list[ObservedContainer], name: str) -> list[ObservedContainer]:
    return sorted((c for c in observed if c.name == name), key=lambda c: c.attempt)


def terminated_state(container: ObservedContainer, runtime: str, message: str = "") -> dict:
    out = {"exitCode": container.exit_code if container.exit_code is not None else -1,
           "reason": container.reason or ("Completed" if container.exit_code == 0 else "Error"),
           "startedAt": _stamp(container.started_at), "finishedAt": _stamp(container.finished_at),
           "containerID": f"{runtime}://{container.id}"}
    if message:
        out["message"] = message
    return out


def _probe_ok(view: PodView, container: ObservedContainer, spec: dict, kind: str) -> bool:
    if spec.get(f"{kind}Probe") is None:
        return True
    return (view.probes.get(container.id) or {}).get(kind) == SUCCESS


def container_status(spec: dict, view: PodView, default_reason: str, *, init: bool) -> dict:
    name = spec.get("name", "")
    attempts = _attempts(view.observed, name)
    last = attempts[-1] if attempts else None
    exited = [c for c in attempts if c.state == EXITED]
    status = {"name": name, "image": spec.get("image", ""), "imageID": "", "restartCount": 0, "ready": False,
              "started": False, "state": {}, "lastState": {}}
    waiting = view.waiting.get(name)
    if last is None:
        reason, message = waiting or (default_reason, "")
        status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        return status
    status.update(imageID=last.image_id or "", containerID=f"{view.runtime}://{last.id}", restartCount=last.attempt)
    if last.state == RUNNING:
        started = _probe_ok(view, last, spec, "startup")
        status["state"] = {"running": {"startedAt": _stamp(last.started_at)}}
        status["started"] = started
        status["ready"] = started and _probe_ok(view, last, spec, "readiness") and not init
        if exited:
            status["lastState"] = {"terminated": terminated_state(exited[-1], view.runtime,
                                                                  view.messages.get(exited[-1].id, ""))}
        return status
    if last.state != EXITED:  # created, not started yet
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return status
    mine = terminated_state(last, view.runtime, view.messages.get(last.id, ""))
    if waiting:
        reason, message = waiting
        status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        status["lastState"] = {"terminated": mine}
        return status
    status["state"] = {"terminated": mine}
    status["ready"] = init and last.exit_code == 0  # a completed init container counts as ready
    if len(exited) > 1:
        status["lastState"] = {"terminated": terminated_state(exited[-2], view.runtime,
                                                              view.messages.get(exited[-2].id, ""))}
    return status


# --- phase -------------------------------------------------------------------------------------------

def phase(pod: dict, statuses: list[dict], init_statuses: list[dict], terminal: bool) -> str:
    """Kubernetes' getPhase over the statuses just computed."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    for status in init_statuses:
        state, last = status["state"], status["lastState"]
        if "terminated" in state:
            failed_init += state["terminated"]["exitCode"] != 0
        elif "waiting" in state and "terminated" in last:
            failed_init += last["terminated"]["exitCode"] != 0
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for status in statuses:
        state = status["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif "terminated" in status["lastState"]:
            stopped += 1
        else:
            waiting += 1
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def qos_class(pod: dict) -> str:
    """Guaranteed: every container limits cpu and memory and requests equal limits; BestEffort:
    nobody asks for anything; Burstable otherwise (Kubernetes' GetPodQOS)."""
    spec = pod.get("spec") or {}
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    anything = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        for name in ("cpu", "memory"):
            limit, request = limits.get(name), requests.get(name, limits.get(name))
            anything = anything or limit is not None or request is not None
            try:
                if limit is None or quantity.parse(limit) != quantity.parse(request):
                    guaranteed = False
            except quantity.QuantityError:
                guaranteed = False
    if not anything:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# --- the whole status --------------------------------------------------------------------------------

def _condition(existing: list[dict], kind: str, true: bool, reason: str, message: str, stamp: str) -> list[dict]:
    return cond.updated(existing, kind, "True" if true else "False", reason if not true else "",
                        message if not true else "", stamp, lastProbeTime=None)


def _gates_ready(pod: dict) -> tuple[bool, str]:
    existing = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = gate.get("conditionType")
        if kind not in existing:
            return False, f'corresponding condition of pod readiness gate "{kind}" does not exist.'
        if existing[kind] != "True":
            return False, f'the status of pod readiness gate "{kind}" is not "True", but {existing[kind]}'
    return True, ""


def pod_status(pod: dict, view: PodView, now: float, *, terminal: bool = False) -> dict:
    """The status to report. terminal: the pod was stopped for good (deleted, all containers gone)."""
    spec, old = pod.get("spec") or {}, pod.get("status") or {}
    stamp = timestamps.format_epoch(now)
    has_init = bool(spec.get("initContainers"))
    default = "PodInitializing" if has_init else "ContainerCreating"
    statuses = [container_status(c, view, default, init=False) for c in spec.get("containers") or []]
    init_statuses = [container_status(c, view, default, init=True) for c in spec.get("initContainers") or []]
    out: dict = {"phase": phase(pod, statuses, init_statuses, terminal), "containerStatuses": statuses,
                 "qosClass": qos_class(pod), "startTime": old.get("startTime") or stamp}
    if has_init:
        out["initContainerStatuses"] = init_statuses
    if spec.get("ephemeralContainers"):  # never ready: they serve no traffic and gate nothing
        out["ephemeralContainerStatuses"] = [{**container_status(c, view, "ContainerCreating", init=False),
                                              "ready": False} for c in spec["ephemeralContainers"]]
    if view.rejection:
        out["phase"], (out["reason"], out["message"]) = "Failed", view.rejection
    if view.host_ip:
        out["hostIP"], out["hostIPs"] = view.host_ip, [{"ip": view.host_ip}]
    pod_ip = view.pod_ip or (old.get("podIP", "") if out["phase"] in ("Succeeded", "Failed") else "")
    if pod_ip:
        out["podIP"], out["podIPs"] = pod_ip, [{"ip": pod_ip}]
    out["conditions"] = _conditions(pod, view, out, statuses, init_statuses, stamp)
    return out


def _conditions(pod: dict, view: PodView, out: dict, statuses: list, init_statuses: list, stamp: str) -> list[dict]:
    existing = list((pod.get("status") or {}).get("conditions") or [])
    if not any(c.get("type") == "PodScheduled" for c in existing):
        existing = cond.updated(existing, "PodScheduled", "True", "", "", stamp, lastProbeTime=None)
    ready_to_start = view.sandbox_ready or any(c.state == RUNNING for c in view.observed)
    existing = _condition(existing, "PodReadyToStartContainers", ready_to_start, "", "", stamp)
    app_started = any("waiting" not in s["state"] or s["lastState"] for s in statuses)
    incomplete = [s["name"] for s in init_statuses
                  if not ("terminated" in s["state"] and s["state"]["terminated"]["exitCode"] == 0)]
    initialized = not incomplete or app_started
    existing = _condition(existing, "Initialized", initialized, "ContainersNotInitialized",
                          f"containers with incomplete status: [{' '.join(incomplete)}]", stamp)
    unready = [s["name"] for s in statuses if not s["ready"]]
    if out["phase"] == "Succeeded":
        reason, message = "PodCompleted", ""
    else:
        reason, message = "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
    existing = _condition(existing, "ContainersReady", not unready, reason, message, stamp)
    gates_ok, gate_message = _gates_ready(pod)
    if not gates_ok and not unready:
        reason, message = "ReadinessGatesNotReady", gate_message
    return _condition(existing, "Ready", not unready and gates_ok, reason, message, stamp)

