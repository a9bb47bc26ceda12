"""Everything the runtime needs to create one container, worked out from the pod (pure): the
command line, environment, working directory, mounts and resource limits.

Errors keep Kubernetes' meaning: ConfigError is a CreateContainerConfigError (env, probes,
resources), VolumeError a mount problem; both name the field. Limits become cgroup values:
cpu in millicores (a request without a limit still sets cpu shares), memory in bytes. A request
above its limit, a quantity that does not parse, a zero or negative limit, or one no cgroup can
hold (above 2^62) are refused before the runtime is asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.api import quantity
from orchestrator.kubelet import envvars, probes, volumes
from orchestrator.kubelet.envvars import ConfigError, Lookup, PodFacts

LARGEST = 1 << 62


@dataclass(frozen=True)
class ResourceValues:
    cpu_request_milli: int = 0
    cpu_limit_milli: int | None = None
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True)
class ImageFacts:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""


@dataclass(frozen=True)
class ContainerPlan:
    argv: list[str]
    env: list[tuple[str, str]]
    working_dir: str | None
    mounts: list[volumes.MountPlan]
    resources: ResourceValues
    stdin: bool
    tty: bool
    invalid_env_names: list[str]
    stdin_once: bool = False


def _quantity(container: dict, kind: str, name: str) -> int | None:
    text = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if text is None:
        return None
    where = f"container {container.get('name')!r} resources.{kind}.{name}"
    try:
        value = quantity.milli_cpu(text) if name == "cpu" else quantity.amount(text)
    except quantity.QuantityError:
        raise ConfigError(f"{where}: {text!r} is not a quantity") from None
    if value <= 0 and kind == "limits":
        raise ConfigError(f"{where}: {text!r} must be greater than zero")
    if value < 0 or value > LARGEST:
        raise ConfigError(f"{where}: {text!r} is outside what a cgroup can hold")
    return value


def container_resources(container: dict) -> ResourceValues:
    cpu_limit, memory_limit = _quantity(container, "limits", "cpu"), _quantity(container, "limits", "memory")
    cpu_request, memory_request = _quantity(container, "requests", "cpu"), _quantity(container, "requests", "memory")
    for name, request, limit in (("cpu", cpu_request, cpu_limit), ("memory", memory_request, memory_limit)):
        if request is not None and limit is not None and request > limit:
            raise ConfigError(f"container {container.get('name')!r} resources.requests.{name}: must be less than "
                              f"or equal to {name} limit")
    if cpu_request is None:
        cpu_request = cpu_limit or 0  # a limit without a request requests the limit (API defaulting)
    return ResourceValues(cpu_request, cpu_limit, memory_limit)


def pod_resources(pod: dict) -> ResourceValues:
    """The pod-level cgroup: limits summed over the app containers when each of them sets one
    (otherwise unlimited), and at least the largest init container's."""
    spec = pod.get("spec") or {}
    apps = [container_resources(c) for c in spec.get("containers") or []]
    inits = [container_resources(c) for c in spec.get("initContainers") or []]

    def total(values: list[int | None]) -> int | None:
        return None if not values or any(v is None for v in values) else sum(values)

    def widest(app_total: int | None, init_values: list[int | None]) -> int | None:
        if app_total is None or any(v is None for v in init_values):
            return None
        return max([app_total, *init_values])
    return ResourceValues(
        cpu_request_milli=max([sum(r.cpu_request_milli for r in apps), *(r.cpu_request_milli for r in inits)]),
        cpu_limit_milli=widest(total([r.cpu_limit_milli for r in apps]), [r.cpu_limit_milli for r in inits]),
        memory_limit_bytes=widest(total([r.memory_limit_bytes for r in apps]), [r.memory_limit_bytes for r in inits]))


def container_plan(pod: dict, container: dict, image: ImageFacts, facts: PodFacts, configmaps: Lookup,
                   secrets: Lookup, pod_volumes: dict[str, volumes.Volume],
                   volume_dirs: dict[str, str]) -> ContainerPlan:
    """Raises ConfigError (probes and resources included) or VolumeError."""
    try:
        probes.container_probes(container)
    except probes.ProbeSpecError as err:
        raise ConfigError(f"container {container.get('name')!r}: {err}") from None
    resources = container_resources(container)
    resolved = envvars.resolve_env(pod, container, facts, configmaps, secrets)
    variables = dict(resolved.env)
    argv = envvars.resolve_argv(container, image.entrypoint, image.cmd, variables)
    mounts = volumes.container_mounts(container, pod_volumes, volume_dirs, variables)
    env = envvars.merged_with_image(image.env, resolved.env)
    return ContainerPlan(argv, env, container.get("workingDir") or image.working_dir or None, mounts, resources,
                         bool(container.get("stdin")), bool(container.get("tty")), resolved.invalid_names,
                         bool(container.get("stdinOnce")))
