"""Liveness, readiness and startup probes: their specs with Kubernetes' defaults, and the state
machine that turns single results into a container's probe result (pure).

Rules kept (Kubernetes' prober worker, pkg/kubelet/prober/worker.go):
- Defaults: periodSeconds 10, timeoutSeconds 1, successThreshold 1, failureThreshold 3,
  initialDelaySeconds 0. successThreshold must be 1 for liveness and startup probes.
- Before its first result a readiness probe counts as failed (not ready), a liveness probe as
  succeeded and a startup probe as unknown.
- A result replaces the current one only after `threshold` equal results in a row (failure:
  failureThreshold, success: successThreshold); until then the current result holds.
- Nothing probes before initialDelaySeconds have passed since the container started; liveness
  and readiness wait until the startup probe has succeeded, and a startup probe stops once it has.
- A liveness or startup failure means the container is restarted: its probe stops (on hold)
  until a new container replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

KINDS = ("startup", "liveness", "readiness")
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
SUCCESS, FAILURE, UNKNOWN = "success", "failure", "unknown"
INITIAL = {"readiness": FAILURE, "liveness": SUCCESS, "startup": UNKNOWN}
TITLE = {"readiness": "Readiness", "liveness": "Liveness", "startup": "Startup"}


class ProbeSpecError(ValueError):
    """A probe the kubelet cannot run; the message names the field."""


@dataclass(frozen=True)
class ProbeSpec:
    kind: str
    handler: str  # exec | httpGet | tcpSocket | grpc
    action: dict  # the handler's own fields
    initial_delay_s: float = 0
    period_s: float = 10
    timeout_s: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class ProbeState:
    result: str
    run: int = 0                      # equal raw results in a row
    last_raw: str | None = None
    last_run_at: float | None = None
    output: str = ""                  # the last failure's message
    on_hold: bool = False             # liveness/startup failed: wait for a new container


def _number(probe: dict, name: str, default: int, minimum: int, where: str) -> int:
    value = probe.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ProbeSpecError(f"{where}.{name}: must be an integer >= {minimum}, got {value!r}")
    return value


def probe_spec(container: dict, kind: str) -> ProbeSpec | None:
    """The container's probe of this kind with defaults filled in; None if it has none."""
    where = f"{kind}Probe"
    probe = container.get(where)
    if probe is None:
        return None
    if not isinstance(probe, dict):
        raise ProbeSpecError(f"{where}: must be an object")
    handlers = [h for h in HANDLERS if probe.get(h) is not None]
    if len(handlers) != 1:
        raise ProbeSpecError(f"{where}: must specify exactly one of exec, httpGet, tcpSocket, grpc")
    handler = handlers[0]
    action = probe[handler]
    if not isinstance(action, dict):
        raise ProbeSpecError(f"{where}.{handler}: must be an object")
    if handler == "grpc":
        raise ProbeSpecError(f"{where}.grpc: gRPC probes are not supported by this kubelet; use exec, httpGet "
                             "or tcpSocket")
    if handler == "exec" and (not isinstance(action.get("command"), list) or not action["command"]):
        raise ProbeSpecError(f"{where}.exec.command: a non-empty list is required")
    if handler in ("httpGet", "tcpSocket") and action.get("port") in (None, ""):
        raise ProbeSpecError(f"{where}.{handler}.port: required")
    success = _number(probe, "successThreshold", 1, 1, where)
    if kind != "readiness" and success != 1:
        raise ProbeSpecError(f"{where}.successThreshold: must be 1 for {kind} probes")
    return ProbeSpec(kind, handler, action,
                     initial_delay_s=_number(probe, "initialDelaySeconds", 0, 0, where),
                     period_s=_number(probe, "periodSeconds", 10, 1, where),
                     timeout_s=_number(probe, "timeoutSeconds", 1, 1, where),
                     success_threshold=success,
                     failure_threshold=_number(probe, "failureThreshold", 3, 1, where))


def container_probes(container: dict) -> dict[str, ProbeSpec]:
    """kind -> spec for every probe the container has (raises ProbeSpecError for a bad one)."""
    out = {}
    for kind in KINDS:
        spec = probe_spec(container, kind)
        if spec is not None:
            out[kind] = spec
    return out


def resolve_port(port: int | str, container: dict) -> int:
    """A probe's port: a number, a numeric string, or the name of one of the container's ports."""
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str) and port.isdigit():
        number = int(port)
    elif isinstance(port, str):
        named = [p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == port]
        if not named:
            raise ProbeSpecError(f"port {port!r} is not a named port of container {container.get('name')!r}")
        number = named[0]
    else:
        raise ProbeSpecError(f"port {port!r} is neither a number nor a port name")
    if not isinstance(number, int) or not 0 < number < 65536:
        raise ProbeSpecError(f"port {number!r} is outside 1-65535")
    return number


def initial_state(kind: str) -> ProbeState:
    return ProbeState(INITIAL[kind])


def next_run_at(spec: ProbeSpec, state: ProbeState, started_at: float) -> float:
    """When this probe should run next (seconds, the caller's clock)."""
    first = started_at + spec.initial_delay_s
    if state.last_run_at is None:
        return first
    return max(first, state.last_run_at + spec.period_s)


def should_probe(spec: ProbeSpec, state: ProbeState, started: bool) -> bool:
    """Whether this probe runs at all right now: liveness and readiness wait for the startup
    probe; a startup probe that succeeded, or any probe on hold, stops."""
    if state.on_hold:
        return False
    if spec.kind == "startup":
        return not started
    return started


def observe(spec: ProbeSpec, state: ProbeState, ok: bool, output: str, now: float) -> ProbeState:
    """The state after one probe run that succeeded (ok) or failed with `output`."""
    raw = SUCCESS if ok else FAILURE
    run = state.run + 1 if state.last_raw == raw else 1
    new = replace(state, last_raw=raw, run=run, last_run_at=now, output="" if ok else output)
    threshold = spec.failure_threshold if raw == FAILURE else spec.success_threshold
    if run < threshold:
        return new  # not enough in a row: the current result holds
    new = replace(new, result=raw)
    if raw == FAILURE and spec.kind in ("liveness", "startup"):
        new = replace(new, on_hold=True, run=0)  # the container is restarted; a new one gets a new state
    return new


def failure_event(spec: ProbeSpec, output: str) -> str:
    """The Unhealthy event's message, as the kubelet words it."""
    return f"{TITLE[spec.kind]} probe failed: {output}".rstrip()


def killing_message(kind: str, container_name: str) -> str:
    return f"Container {container_name} failed {kind} probe, will be restarted"
