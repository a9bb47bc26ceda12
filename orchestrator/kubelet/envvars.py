"""A container's environment, command line and working directory, resolved as the kubelet
resolves them before it asks the runtime for a container (pure).

Rules kept (Kubernetes' kubelet_pods.go makeEnvironmentVariables and the expansion package):
- envFrom sources first, in order (each key gets the source's prefix; keys that are not valid
  variable names are skipped and reported), then `env` in order; a later name wins.
- `$(NAME)` in an env value expands to a variable defined *earlier* (envFrom or earlier env);
  an undefined reference stays as written; `$$` is a literal `$`. command and args expand
  against the container's whole environment the same way.
- valueFrom: fieldRef (metadata.name/namespace/uid, metadata.labels['k'] and
  metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP(s),
  status.hostIP(s)); resourceFieldRef (requests/limits of cpu, memory, ephemeral-storage with a
  divisor, rounded up; a limit that is not set is the node's allocatable); configMapKeyRef and
  secretKeyRef, where `optional: true` turns a missing object or key into no variable.
- A missing object or key that is not optional is a CreateContainerConfigError with the
  kubelet's message (`configmap "x" not found`, `couldn't find key k in ConfigMap ns/x`).
- Service links: each Service of the pod's namespace (unless enableServiceLinks is false) and the
  `kubernetes` Service give FOO_SERVICE_HOST, FOO_SERVICE_PORT, FOO_PORT_80_TCP... after the pod's
  own variables, which win; $(VAR) may refer to them.
- The image's environment is the base; the pod's variables override it (as containerd does).
- argv: command and args both empty -> entrypoint + cmd of the image; command set -> command +
  args; only args -> entrypoint + args.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from orchestrator.api import quantity

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # Kubernetes' IsEnvVarName
Lookup = Callable[[str, str], "dict | None"]  # (namespace, name) -> object, or None if it does not exist


class ConfigError(ValueError):
    """The container cannot be configured (CreateContainerConfigError); the message says why."""


@dataclass(frozen=True)
class PodFacts:
    """What the downward API may show besides the pod object itself."""
    pod_ips: tuple[str, ...] = ()
    host_ips: tuple[str, ...] = ()
    allocatable: dict = field(default_factory=dict)  # node allocatable: cpu (milli), memory, ephemeral-storage
    services: tuple = ()  # Service objects: the pod's namespace's and default/kubernetes (service links)


@dataclass
class Resolved:
    env: list[tuple[str, str]]
    invalid_names: list[str]  # envFrom keys skipped for not being variable names (an event says so)


# --- $(VAR) expansion ----------------------------------------------------------------------------

def expand(text: str, variables: dict[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":  # escaped: one literal $
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close < 0:  # incomplete reference: keep "$(" and go on after it
                out.append("$(")
                i += 2
                continue
            name = text[i + 2:close]
            out.append(variables[name] if name in variables else f"$({name})")
            i = close + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


# --- the downward API ----------------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def _format_map(values: dict) -> str:
    """metadata.labels as a whole (downward API volumes): key="value" lines, sorted."""
    return "\n".join(f'{key}="{value}"' for key, value in sorted((values or {}).items()))


def field_value(pod: dict, path: str, facts: PodFacts, *, whole_maps: bool = False) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
              "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
              "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
              "status.podIP": facts.pod_ips[0] if facts.pod_ips else "",
              "status.podIPs": ",".join(facts.pod_ips),
              "status.hostIP": facts.host_ips[0] if facts.host_ips else "",
              "status.hostIPs": ",".join(facts.host_ips)}
    if path in simple:
        return simple[path]
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if whole_maps and path in ("metadata.labels", "metadata.annotations"):
        return _format_map(meta.get(path.split(".")[1]))
    raise ConfigError(f"unsupported fieldPath: {path}")


RESOURCE_FIELDS = {"limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory",
                   "requests.ephemeral-storage"}


def resource_value(pod: dict, container: dict, ref: dict, facts: PodFacts) -> str:
    """resourceFieldRef: the value divided by the divisor, rounded up (Kubernetes' downward API)."""
    resource = ref.get("resource", "")
    if resource not in RESOURCE_FIELDS:
        raise ConfigError(f"unsupported container resource: {resource}")
    kind, name = resource.split(".", 1)
    resources = container.get("resources") or {}
    text = (resources.get(kind) or {}).get(name)
    if text is None and kind == "requests":
        text = (resources.get("limits") or {}).get(name)  # a limit without a request is also the request
    try:
        divisor = quantity.parse(ref.get("divisor") or "1")
        if text is not None:
            value = quantity.parse(text)
        elif kind == "limits":  # no limit: the node's allocatable (MergeContainerResourceLimits)
            raw = facts.allocatable.get(name, 0)
            value = Decimal(raw) / 1000 if name == "cpu" else Decimal(raw)
        else:
            value = Decimal(0)
    except quantity.QuantityError as err:
        raise ConfigError(f"resourceFieldRef {resource}: {err}") from None
    if divisor <= 0:
        raise ConfigError(f"resourceFieldRef {resource}: the divisor must be positive")
    return str(math.ceil(value / divisor))


# --- ConfigMaps and Secrets ----------------------------------------------------------------------

def decoded_data(obj: dict, kind: str) -> dict[str, bytes]:
    """A ConfigMap's data and binaryData, or a Secret's data (base64) and stringData, as bytes."""
    out: dict[str, bytes] = {}
    if kind == "ConfigMap":
        out.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        encoded = obj.get("binaryData") or {}
    else:
        encoded = obj.get("data") or {}
    for key, value in encoded.items():
        try:
            out[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{kind} {obj['metadata'].get('namespace')}/{obj['metadata'].get('name')}: "
                              f"key {key} is not valid base64") from None
    if kind == "Secret":
        out.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    return out


def _lookup(kind: str, lookup: Lookup, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
    obj = lookup(namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    return decoded_data(obj, kind)


def _key_ref(kind: str, ref: dict, lookup: Lookup, namespace: str) -> str | None:
    name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
    data = _lookup(kind, lookup, namespace, name, optional)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key].decode(errors="replace")


# --- the whole environment -----------------------------------------------------------------------

def _service_prefix(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(pod: dict, services: tuple | list) -> dict[str, str]:
    """Docker-link style variables of Services (Kubernetes' getServiceEnvVarMap): every Service of
    the pod's namespace with a cluster IP when enableServiceLinks (default true), and always the
    API server's `kubernetes` Service of namespace default."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen = {}
    for service in services:
        meta, spec = service.get("metadata") or {}, service.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        is_master = meta.get("namespace") == "default" and meta.get("name") == "kubernetes"
        if is_master or (links and meta.get("namespace") == namespace):
            chosen[meta.get("name", "")] = (ip, spec.get("ports") or [])
    out: dict[str, str] = {}
    for name, (ip, ports) in sorted(chosen.items()):
        prefix = _service_prefix(name)
        out[f"{prefix}_SERVICE_HOST"] = ip
        for i, port in enumerate(ports):
            number, protocol = port.get("port"), (port.get("protocol") or "TCP")
            if i == 0:
                out[f"{prefix}_SERVICE_PORT"] = str(number)
                out[f"{prefix}_PORT"] = f"{protocol.lower()}://{ip}:{number}"
            if port.get("name"):
                out[f"{prefix}_SERVICE_PORT_{_service_prefix(port['name'])}"] = str(number)
            base = f"{prefix}_PORT_{number}_{protocol.upper()}"
            out[base] = f"{protocol.lower()}://{ip}:{number}"
            out[f"{base}_PROTO"], out[f"{base}_PORT"], out[f"{base}_ADDR"] = protocol.lower(), str(number), ip
    return out


def resolve_env(pod: dict, container: dict, facts: PodFacts, configmaps: Lookup, secrets: Lookup) -> Resolved:
    """The variables of one container, in order (image variables not included): the pod's own,
    then the Services' (service_env) that the pod does not set itself."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    services = service_env(pod, facts.services)
    variables: dict[str, str] = {}
    invalid: list[str] = []
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if source.get("configMapRef") is not None:
            kind, ref, lookup = "ConfigMap", source["configMapRef"], configmaps
        elif source.get("secretRef") is not None:
            kind, ref, lookup = "Secret", source["secretRef"], secrets
        else:
            raise ConfigError("envFrom: each source needs configMapRef or secretRef")
        data = _lookup(kind, lookup, namespace, ref.get("name", ""), bool(ref.get("optional")))
        for key, value in (data or {}).items():
            if not ENV_NAME.match(prefix + key):
                invalid.append(prefix + key)
                continue
            variables[prefix + key] = value.decode(errors="replace")
    for var in container.get("env") or []:
        name = var.get("name")
        if not name:
            raise ConfigError("env: every variable needs a name")
        source = var.get("valueFrom")
        if source is None:
            variables[name] = expand(str(var.get("value") or ""), {**services, **variables})
            continue
        value = _value_from(pod, container, source, facts, configmaps, secrets, namespace)
        if value is not None:
            variables[name] = value
    for name, value in services.items():
        variables.setdefault(name, value)
    return Resolved(list(variables.items()), invalid)


def _value_from(pod: dict, container: dict, source: dict, facts: PodFacts, configmaps: Lookup, secrets: Lookup,
                namespace: str) -> str | None:
    if source.get("fieldRef") is not None:
        return field_value(pod, source["fieldRef"].get("fieldPath", ""), facts)
    if source.get("resourceFieldRef") is not None:
        return resource_value(pod, container, source["resourceFieldRef"], facts)
    if source.get("configMapKeyRef") is not None:
        return _key_ref("ConfigMap", source["configMapKeyRef"], configmaps, namespace)
    if source.get("secretKeyRef") is not None:
        return _key_ref("Secret", source["secretKeyRef"], secrets, namespace)
    raise ConfigError("valueFrom: one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef is required")


def merged_with_image(image_env: list[str], pod_env: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The image's K=V variables overridden by the pod's, image order first."""
    merged: dict[str, str] = {}
    for item in image_env:
        key, _, value = item.partition("=")
        if key:
            merged[key] = value
    merged.update(pod_env)
    return list(merged.items())


def resolve_argv(container: dict, entrypoint: list[str], cmd: list[str], variables: dict[str, str]) -> list[str]:
    command, args = container.get("command") or [], container.get("args") or []
    if command:
        argv = [expand(str(part), variables) for part in command] + [expand(str(part), variables) for part in args]
    elif args:
        argv = list(entrypoint) + [expand(str(part), variables) for part in args]
    else:
        argv = list(entrypoint) + list(cmd)
    if not argv:
        raise ConfigError(f"container {container.get('name')!r} has no command, and its image no entrypoint or cmd")
    return argv
