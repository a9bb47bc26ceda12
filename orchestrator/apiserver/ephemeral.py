"""Ephemeral containers (`kubectl debug`), pure: what they may hold and how they may change.

Kubernetes' rules: an ephemeral container is added through the pod's `ephemeralcontainers`
subresource only (a pod may not be created with one, a template may not hold one, an update of
the pod itself may not change the list: admission.py); once added it may be
neither changed nor removed; its name is unique among all the pod's containers; it has an image;
its `targetContainerName`, if any, names one of the pod's containers; and it may not declare
what a debugging container cannot have (ports, probes, lifecycle hooks, resources). The
subresource changes nothing but `spec.ephemeralContainers` (objects.prepare_update).
"""

from __future__ import annotations

import json

from orchestrator.api import pods
from orchestrator.api.meta import DNS_LABEL_MESSAGE, is_dns_label

SUBRESOURCE = "ephemeralcontainers"
NOT_ALLOWED = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resizePolicy", "resources")

Causes = list[tuple[str, str, str]]


def validate(spec: dict, causes: Causes) -> None:
    """The pod's ephemeral containers, each on its own and against the pod's other containers."""
    entries = spec.get("ephemeralContainers")
    if entries is None:
        return
    if not isinstance(entries, list):
        causes.append(("spec.ephemeralContainers", "FieldValueInvalid", "Invalid value: must be a list"))
        return
    pod = {"spec": spec}
    taken = [c.get("name") for c in pods.init_containers(pod) + pods.containers(pod) if isinstance(c, dict)]
    targets = set(taken)
    for i, container in enumerate(entries):
        where = f"spec.ephemeralContainers[{i}]"
        if not isinstance(container, dict):
            causes.append((where, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
        elif not is_dns_label(name):
            causes.append((f"{where}.name", "FieldValueInvalid",
                           f"Invalid value: {json.dumps(name)}: {DNS_LABEL_MESSAGE}"))
        elif name in taken:
            causes.append((f"{where}.name", "FieldValueDuplicate", f"Duplicate value: {json.dumps(name)}"))
        taken.append(name)
        if not container.get("image"):
            causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
        target = container.get("targetContainerName")
        if target and (not isinstance(target, str) or target not in targets):
            causes.append((f"{where}.targetContainerName", "FieldValueNotFound",
                           f"Not found: {json.dumps(target)}"))
        for field in NOT_ALLOWED:
            if container.get(field):
                causes.append((f"{where}.{field}", "FieldValueForbidden",
                               "Forbidden: cannot be set for an Ephemeral Container"))


def validate_update(current: dict, new: dict, subresource: str | None) -> Causes:
    """Through the subresource: the existing ones stay as they are. Through the pod: no change."""
    before = {str(c.get("name")): c for c in pods.ephemeral_containers(current) if isinstance(c, dict)}
    after = {str(c.get("name")): c for c in pods.ephemeral_containers(new) if isinstance(c, dict)}
    if subresource != SUBRESOURCE:
        if before != after:
            return [("spec.ephemeralContainers", "FieldValueForbidden",
                     "Forbidden: ephemeral containers are added through the pod's ephemeralcontainers subresource "
                     "(kubectl debug), not by updating the pod")]
        return []
    causes: Causes = []
    for name, container in before.items():
        if name not in after:
            causes.append(("spec.ephemeralContainers", "FieldValueForbidden",
                           f"Forbidden: existing ephemeral containers {json.dumps(name)} may not be removed"))
        elif after[name] != container:
            causes.append(("spec.ephemeralContainers", "FieldValueForbidden",
                           f"Forbidden: existing ephemeral containers {json.dumps(name)} may not be changed"))
    return causes
