"""Ephemeral containers (`kubectl debug`), pure: what they may hold and how they may change.

Kubernetes' rules: an ephemeral container is added through the pod's `ephemeralcontainers`
subresource only (a pod may not be created with one, a template may not hold one, an update of
the pod itself may not change the list: admission.py); once added it may be neither changed nor
removed; its name is unique among all the pod's containers and it has an image (admission.py,
as for any container); its `targetContainerName`, if any, names one of the pod's containers;
and it may not declare what a debugging container cannot have (ports, probes, lifecycle hooks,
resources). The subresource changes nothing but `spec.ephemeralContainers`
(objects.prepare_update).
"""

from __future__ import annotations

import json

from orchestrator.api import pods

SUBRESOURCE = "ephemeralcontainers"
NOT_ALLOWED = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resizePolicy", "resources")

Causes = list[tuple[str, str, str]]


def rules_broken(container: dict, where: str, targets: set[str]) -> Causes:
    """What an ephemeral container, beyond any container's name and image (admission.py), may not
    be: a debugging container of a target that is not the pod's, or one with what it cannot have."""
    causes: Causes = []
    target = container.get("targetContainerName")
    if target and (not isinstance(target, str) or target not in targets):
        causes.append((f"{where}.targetContainerName", "FieldValueNotFound", f"Not found: {json.dumps(target)}"))
    for field in NOT_ALLOWED:
        if container.get(field):
            causes.append((f"{where}.{field}", "FieldValueForbidden",
                           "Forbidden: cannot be set for an Ephemeral Container"))
    return causes


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
