"""Admission: defaulting, then validation with field causes (422 Invalid). Pure functions of the object.

Defaults are the ones `kubectl describe` and the controllers read (Kubernetes' own defaults):
pods get restartPolicy, terminationGracePeriodSeconds, dnsPolicy, schedulerName and each
container's imagePullPolicy; Deployments get replicas, strategy (RollingUpdate 25%/25%),
revisionHistoryLimit and progressDeadlineSeconds; Services get type and sessionAffinity, and
each port a protocol and targetPort. The kinds added later (Secrets, DaemonSets, StatefulSets,
Jobs, CronJobs, autoscalers, budgets, volumes) have theirs in kinds.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.api import pods
from orchestrator.api.meta import DNS_LABEL, DNS_LABEL_MESSAGE, is_dns_label
from orchestrator.api.resources import Resource
from orchestrator.apiserver import ephemeral, kinds
from orchestrator.apiserver.errors import invalid

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAMES = {"Namespace", "Service"}  # names that must be DNS labels (63 chars, no dots)
SERVICE_TYPES = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}


def _pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    return "Always" if ":" not in tail or tail.endswith(":latest") else "IfNotPresent"


def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in pods.every_container({"spec": spec}):
        if isinstance(container, dict):
            if isinstance(container.get("image"), str):
                container.setdefault("imagePullPolicy", _pull_policy(container["image"]))
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def apply_defaults(resource: Resource, obj: dict) -> None:
    kind = resource.kind
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    if kind == "Pod" and spec is not None:
        default_pod_spec(spec)
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind in ("Deployment", "ReplicaSet") and spec is not None:
        spec.setdefault("replicas", 1)
        if kind == "Deployment":  # a ReplicaSet has no revisionHistoryLimit (k8s.io/api apps/v1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])
    elif kind == "Service" and spec is not None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] != "ExternalName":  # a single-stack IPv4 cluster, as Kubernetes records it
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind in kinds.DEFAULTS:
        kinds.DEFAULTS[kind](obj)


Causes = list[tuple[str, str, str]]


def _required(causes: Causes, field: str) -> None:
    causes.append((field, "FieldValueRequired", "Required value"))


def _bad(causes: Causes, field: str, value: Any, why: str) -> None:
    shown = json.dumps(value) if isinstance(value, (str, int, type(None))) else "{...}"
    causes.append((field, "FieldValueInvalid", f"Invalid value: {shown}: {why}"))


def _validate_meta(resource: Resource, obj: dict, causes: Causes) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        _required(causes, "metadata")
        return
    name = meta.get("name")
    pattern, limit = (DNS_LABEL, 63) if resource.kind in LABEL_NAMES else (DNS_SUBDOMAIN, 253)
    if not name:
        _required(causes, "metadata.name")
    elif not isinstance(name, str) or len(name) > limit or not pattern.match(name):
        _bad(causes, "metadata.name", name, "a lowercase RFC 1123 "
             f"{'label' if limit == 63 else 'subdomain'} must consist of lower case alphanumeric characters, "
             "'-' or '.', and must start and end with an alphanumeric character")
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            _bad(causes, f"metadata.{field}", values, "must be a map of strings to strings")
        elif field == "labels":
            for value in values.values():
                if len(value) > 63 or not LABEL_VALUE.match(value):
                    _bad(
                        causes,
                        "metadata.labels",
                        value,
                        "a valid label must be an empty string or consist "
                        "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                        "alphanumeric character",
                    )


def _check_container(container: dict, where: str, taken: set[str], causes: Causes) -> None:
    """Any container's name (an RFC 1123 label, not among `taken`, which it then joins) and image."""
    name = container.get("name")
    if not name:
        _required(causes, f"{where}.name")
    elif not is_dns_label(name):
        _bad(causes, f"{where}.name", name, DNS_LABEL_MESSAGE)
    elif name in taken:
        causes.append((f"{where}.name", "FieldValueDuplicate", f"Duplicate value: {json.dumps(name)}"))
    if isinstance(name, str):
        taken.add(name)
    if not container.get("image"):
        _required(causes, f"{where}.image")


def _validate_ephemeral_containers(spec: dict, causes: Causes) -> None:
    """A pod's ephemeral containers: as any container, unique among all the pod's, and what only
    they must keep to (ephemeral.py)."""
    entries = spec.get("ephemeralContainers")
    if entries is None:
        return
    if not isinstance(entries, list):
        causes.append(("spec.ephemeralContainers", "FieldValueInvalid", "Invalid value: must be a list"))
        return
    pod = {"spec": spec}
    taken = {c["name"] for c in pods.init_containers(pod) + pods.containers(pod)
             if isinstance(c, dict) and isinstance(c.get("name"), str)}
    targets = set(taken)
    for i, container in enumerate(entries):
        where = f"spec.ephemeralContainers[{i}]"
        if not isinstance(container, dict):
            causes.append((where, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        _check_container(container, where, taken, causes)
        causes += ephemeral.rules_broken(container, where, targets)


def _validate_pod_spec(spec: Any, field: str, causes: Causes) -> None:
    if not isinstance(spec, dict):
        _required(causes, field)
        return
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        _required(causes, f"{field}.containers")
        return
    names: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{field}.containers[{i}]"
        if not isinstance(container, dict):
            _bad(causes, where, container, "must be an object")
            continue
        _check_container(container, where, names, causes)
        for j, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(number, int) or not 0 < number < 65536:
                _bad(causes, f"{where}.ports[{j}].containerPort", number, "must be between 1 and 65535, inclusive")
    if field != "spec" and spec.get("ephemeralContainers"):
        causes.append((f"{field}.ephemeralContainers", "FieldValueForbidden",
                       "Forbidden: ephemeral containers are added to running pods, not to templates"))
    if spec.get("hostPID") and spec.get("shareProcessNamespace"):
        causes.append((f"{field}.shareProcessNamespace", "FieldValueInvalid",
                       "Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"))
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            (
                f"{field}.restartPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
            )
        )


def _validate_workload(obj: dict, causes: Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        _required(causes, "spec")
        return
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        _bad(causes, "spec.replicas", replicas, "must be greater than or equal to 0")
    _validate_selector_and_template(spec, causes)


def _validate_selector_and_template(spec: dict, causes: Causes) -> None:
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        _required(causes, "spec.selector")
    if not isinstance(template, dict):
        _required(causes, "spec.template")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    wanted = (selector or {}).get("matchLabels") or {} if isinstance(selector, dict) else {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        _bad(causes, "spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    _validate_pod_spec(template.get("spec"), "spec.template.spec", causes)


def _validate_service(obj: dict, causes: Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        _required(causes, "spec")
        return
    if spec.get("type") not in SERVICE_TYPES:
        causes.append(("spec.type", "FieldValueNotSupported", f'Unsupported value: "{spec.get("type")}"'))
    ports = spec.get("ports")
    if spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
        _required(causes, "spec.ports")
    for i, port in enumerate(ports or []):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            _bad(causes, f"spec.ports[{i}].port", number, "must be between 1 and 65535, inclusive")
        if len(ports) > 1 and isinstance(port, dict) and not port.get("name"):
            _required(causes, f"spec.ports[{i}].name")


def validate(resource: Resource, obj: dict) -> None:
    """Raise 422 Invalid with every cause found."""
    causes: Causes = []
    _validate_meta(resource, obj, causes)
    kind = resource.kind
    if kind == "Pod":
        _validate_pod_spec(obj.get("spec"), "spec", causes)
        if isinstance(obj.get("spec"), dict):
            _validate_ephemeral_containers(obj["spec"], causes)
    elif kind in ("Deployment", "ReplicaSet"):
        _validate_workload(obj, causes)
    elif kind == "Service":
        _validate_service(obj, causes)
    elif kind == "Event" and not isinstance(obj.get("involvedObject"), dict):
        _required(causes, "involvedObject")
    elif kind == "ConfigMap":
        data = obj.get("data")
        if data is not None and (not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values())):
            _bad(causes, "data", data, "must be a map of strings to strings")
    elif kind in kinds.VALIDATORS:
        kinds.VALIDATORS[kind](obj, causes)
    if causes:
        raise invalid(resource, (obj.get("metadata") or {}).get("name") or "", causes)


def validate_create(resource: Resource, obj: dict) -> None:
    """validate(), and what only an update may bring (a pod's ephemeral containers)."""
    validate(resource, obj)
    if resource.kind == "Pod" and (obj.get("spec") or {}).get("ephemeralContainers"):
        raise invalid(resource, (obj.get("metadata") or {}).get("name") or "", [(
            "spec.ephemeralContainers", "FieldValueForbidden", "Forbidden: cannot be set on create")])


def validate_update(resource: Resource, current: dict, new: dict, subresource: str | None = None) -> None:
    """validate(), and what an update of `current` (through `subresource`, if any) may not change."""
    validate(resource, new)
    causes = kinds.validate_update(resource.kind, current, new)
    if resource.kind == "Pod" and subresource != "status":  # a status write leaves the spec as it is
        causes += ephemeral.validate_update(current, new, subresource)
    if causes:
        raise invalid(resource, (new.get("metadata") or {}).get("name") or "", causes)
