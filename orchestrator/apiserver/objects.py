"""What the server does to objects on each verb (pure): server-set metadata on create, what an
update may change, generation bumps, the scale view, binding, and deletion's effects."""

from __future__ import annotations

import copy
import secrets
import string
import uuid

from orchestrator.api import timestamps
from orchestrator.api.resources import Resource
from orchestrator.apiserver import errors, jsoncodec, views

STATUS_RESET_ON_CREATE = {"Pod": {"phase": "Pending"}, "Deployment": {}, "ReplicaSet": {},
                          "Service": {"loadBalancer": {}}, "DaemonSet": {"currentNumberScheduled": 0,
                          "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0},
                          "StatefulSet": {"replicas": 0, "availableReplicas": 0}, "Job": {}, "CronJob": {},
                          "HorizontalPodAutoscaler": {"currentReplicas": 0, "desiredReplicas": 0},
                          "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                                                  "expectedPods": 0},
                          "PersistentVolumeClaim": {"phase": "Pending"}, "PersistentVolume": {"phase": "Pending"}}
GENERATED_SUFFIX = string.ascii_lowercase + string.digits


def with_type(resource: Resource, obj: dict) -> dict:
    """The object as `resource` serves it: its kind and apiVersion, in its group's shape."""
    view = views.VIEWS.get((resource.group, resource.version, resource.kind))
    return _typed(resource, view[0](obj) if view is not None else obj)


def _typed(resource: Resource, obj: dict) -> dict:
    return {"kind": resource.kind, "apiVersion": resource.api_version, **{k: v for k, v in obj.items()
                                                                         if k not in ("kind", "apiVersion")}}


def stored_form(resource: Resource, obj: dict) -> dict:
    """The inverse of with_type's view: what a body sent to `resource` is, in its storage's shape."""
    view = views.VIEWS.get((resource.group, resource.version, resource.kind))
    return view[1](obj) if view is not None else obj


def check_type(resource: Resource, obj: dict) -> None:
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind and kind != resource.kind:
        raise errors.bad_request(f"the kind {kind!r} of the object does not match the {resource.plural!r} "
                                 f"resource it was sent to (expected {resource.kind!r})")
    if api_version and api_version != resource.api_version:
        raise errors.bad_request(f"the apiVersion {api_version!r} does not match {resource.api_version!r}")


def prepare_create(resource: Resource, obj: dict, namespace: str | None) -> dict:
    obj = _typed(resource, jsoncodec.copy(obj))
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    if resource.namespaced:
        if meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                     "on the request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + "".join(secrets.choice(GENERATED_SUFFIX) for _ in range(5))
    for server_set in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(server_set, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = timestamps.now()
    if "spec" in obj or resource.kind in ("Deployment", "ReplicaSet", "Pod", "Service"):
        meta["generation"] = 1
    if resource.kind in STATUS_RESET_ON_CREATE:
        obj["status"] = copy.deepcopy(STATUS_RESET_ON_CREATE[resource.kind])
    return obj


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def prepare_update(resource: Resource, current: dict, new: dict, subresource: str | None) -> dict:
    """The object to store for an update of `current` to `new` through the main resource or a
    subresource that writes part of it (status, a pod's ephemeral containers); any other
    subresource updates like the main resource."""
    new = _typed(resource, jsoncodec.copy(new))
    if subresource == "status":
        merged = jsoncodec.copy(current)
        merged["status"] = new.get("status", {})
        return merged
    if subresource == "ephemeralcontainers":
        merged = jsoncodec.copy(current)
        merged.setdefault("spec", {})["ephemeralContainers"] = (new.get("spec") or {}).get("ephemeralContainers") or []
        return merged
    meta = new.setdefault("metadata", {})
    old_meta = current["metadata"]
    for kept in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "generation"):
        if kept in old_meta:
            meta[kept] = old_meta[kept]
        else:
            meta.pop(kept, None)
    if "status" in resource.subresources:
        if "status" in current:
            new["status"] = current["status"]
        else:
            new.pop("status", None)
    if "generation" in old_meta and _spec_part(new) != _spec_part(current):
        meta["generation"] = old_meta["generation"] + 1
    if old_meta.get("deletionTimestamp") and set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or []):
        raise errors.APIError(422, "Invalid", f'{resource.kind} "{meta["name"]}" is invalid: metadata.finalizers: '
                              "Forbidden: no new finalizers can be added if the object is being deleted")
    return new


def scale_of(resource: Resource, obj: dict) -> dict:
    meta = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}


def apply_scale(obj: dict, scale: dict) -> dict:
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.APIError(422, "Invalid", f'Scale "{obj["metadata"]["name"]}" is invalid: spec.replicas: '
                              f"Invalid value: {replicas!r}: must be greater than or equal to 0")
    updated = jsoncodec.copy(obj)
    updated.setdefault("spec", {})["replicas"] = replicas
    return updated


def bind(pod: dict, binding: dict, resource: Resource) -> dict:
    target = binding.get("target") or {}
    node = target.get("name")
    name = pod["metadata"]["name"]
    if not node or target.get("kind", "Node") != "Node":
        raise errors.bad_request("a binding needs target.kind Node and target.name")
    uid = (binding.get("metadata") or {}).get("uid")
    if uid and uid != pod["metadata"].get("uid"):
        raise errors.conflict(resource, name, f"the UID in the binding ({uid}) does not match the pod's")
    if (pod.get("spec") or {}).get("nodeName"):
        raise errors.conflict(resource, name, f"pod {name} is already assigned to node "
                              f"\"{pod['spec']['nodeName']}\"")
    if pod["metadata"].get("deletionTimestamp"):
        raise errors.conflict(resource, name, "the pod is being deleted")
    bound = jsoncodec.copy(pod)
    bound.setdefault("spec", {})["nodeName"] = node
    conditions = [c for c in bound.setdefault("status", {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": timestamps.now()})
    bound["status"]["conditions"] = conditions
    return bound


def pending_finalizers(obj: dict) -> list[str]:
    """What still holds a deleted object: metadata.finalizers, and for a namespace also
    spec.finalizers (the namespace controller's `kubernetes`, removed once it is empty)."""
    held = list(obj["metadata"].get("finalizers") or [])
    if obj.get("kind") == "Namespace":
        held += (obj.get("spec") or {}).get("finalizers") or []
    return held


def mark_deleting(obj: dict, grace_s: int, extra_finalizer: str | None = None) -> dict:
    marked = jsoncodec.copy(obj)
    if marked.get("kind") == "Namespace":
        marked.setdefault("status", {})["phase"] = "Terminating"
    meta = marked["metadata"]
    meta.setdefault("deletionTimestamp", timestamps.now())
    meta["deletionGracePeriodSeconds"] = grace_s
    if extra_finalizer and extra_finalizer not in (meta.get("finalizers") or []):
        meta["finalizers"] = (meta.get("finalizers") or []) + [extra_finalizer]
    return marked
