"""Persistent volumes for a lab: claims, volumes and the `local-path` provisioner (as k3s ships one).

`plan(claims, volumes, classes, pods, now)` is pure. Rules kept (Kubernetes' PV controller, the
external-provisioner protocol, k3s' local-path-provisioner):
- A claim without `storageClassName` gets the default class (the one annotated
  `storageclass.kubernetes.io/is-default-class: "true"`), as Kubernetes assigns it retroactively.
- `WaitForFirstConsumer`: a claim of a local-path class is provisioned once the scheduler has
  picked a node for a pod using it (`volume.kubernetes.io/selected-node`): a volume
  `pvc-<claim uid>`, a directory `<class parameter path>/<volume name>` on that node (the kubelet
  creates it on mount), pinned to the node by node affinity, bound to the claim by claimRef.
- A claim naming a volume, or a volume whose claimRef names the claim, is bound both ways:
  `spec.volumeName`, the bind-completed annotation, and phase Bound on both.
- A bound volume whose claim is gone is Released; with reclaimPolicy Delete the provisioner
  removes the directory on the node (a short-lived helper pod, as k3s does) and then the volume;
  Retain keeps both for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.api import quantity
from orchestrator.api.meta import annotations
from orchestrator.api.meta import field as get
from orchestrator.api.volumes import SELECTED_NODE, default_class

PROVISIONER = "ketch.dev/local-path"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
CLEANUP_LABEL = "ketch.dev/volume-cleanup"
DEFAULT_ROOT = "/var/lib/ketch/local-path"


@dataclass
class StoragePlan:
    claim_patches: list[tuple[str, str, dict]] = field(default_factory=list)   # (namespace, name, merge patch)
    claim_statuses: list[tuple[str, str, dict]] = field(default_factory=list)  # (namespace, name, status)
    create_volumes: list[dict] = field(default_factory=list)
    volume_patches: list[tuple[str, dict]] = field(default_factory=list)        # (name, merge patch)
    volume_statuses: list[tuple[str, dict]] = field(default_factory=list)      # (name, status)
    cleanup_pods: list[dict] = field(default_factory=list)                     # helper pods to create
    delete_volumes: list[str] = field(default_factory=list)
    delete_pods: list[tuple[str, str]] = field(default_factory=list)           # (namespace, name) helpers done
    events: list[tuple[dict, str, str, str, str]] = field(default_factory=list)  # (object, kind, type, reason, msg)


def volume_for(claim: dict, cls: dict, node: str) -> dict:
    uid = claim["metadata"]["uid"]
    name = f"pvc-{uid}"
    root = get(cls, "parameters", "path", default=DEFAULT_ROOT).rstrip("/")
    storage = get(claim, "spec", "resources", "requests", "storage", default="1Gi")
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
            "spec": {"capacity": {"storage": storage},
                     "accessModes": get(claim, "spec", "accessModes", default=["ReadWriteOnce"]),
                     "persistentVolumeReclaimPolicy": cls.get("reclaimPolicy", "Delete"),
                     "storageClassName": cls["metadata"]["name"],
                     "volumeMode": get(claim, "spec", "volumeMode", default="Filesystem"),
                     "hostPath": {"path": f"{root}/{name}", "type": "DirectoryOrCreate"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                  "namespace": claim["metadata"]["namespace"], "name": claim["metadata"]["name"],
                                  "uid": uid}}}


def volume_node(volume: dict) -> str:
    terms = get(volume, "spec", "nodeAffinity", "required", "nodeSelectorTerms", default=[])
    for term in terms:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == "kubernetes.io/hostname" and expression.get("values"):
                return expression["values"][0]
    return ""


def cleanup_pod(volume: dict, namespace: str = "kube-system") -> dict:
    """A helper pod that removes the volume's directory on its node (k3s' local-path helper)."""
    path = get(volume, "spec", "hostPath", "path", default="")
    parent, _, leaf = path.rpartition("/")
    name = volume["metadata"]["name"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"delete-{name}"[:63], "namespace": namespace, "labels": {CLEANUP_LABEL: name}},
            "spec": {"nodeName": volume_node(volume), "restartPolicy": "Never",
                     "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "delete", "image": "busybox",
                                     "command": ["rm", "-rf", f"/parent/{leaf}"],
                                     "volumeMounts": [{"name": "parent", "mountPath": "/parent"}]}],
                     "volumes": [{"name": "parent", "hostPath": {"path": parent, "type": "DirectoryOrCreate"}}]}}


def fits(volume: dict, claim: dict) -> bool:
    wanted = quantity.amount(get(claim, "spec", "resources", "requests", "storage", default="0"))
    modes = set(get(claim, "spec", "accessModes", default=[]))
    return (quantity.amount(get(volume, "spec", "capacity", "storage", default="0")) >= wanted
            and modes <= set(get(volume, "spec", "accessModes", default=[])))


def _available_volume(claim: dict, class_name: str, volumes: list[dict], result: StoragePlan) -> dict | None:
    """The smallest unclaimed volume of the claim's class that fits it (Kubernetes' binder picks the smallest)."""
    taken = {name for name, _ in result.volume_patches}
    candidates = [v for v in volumes if not get(v, "spec", "claimRef") and v["metadata"]["name"] not in taken
                  and get(v, "spec", "storageClassName", default="") == class_name and fits(v, claim)
                  and get(v, "status", "phase", default="Available") == "Available"]
    return min(candidates, key=lambda v: quantity.amount(get(v, "spec", "capacity", "storage", default="0")),
               default=None)


def plan(claims: list[dict], volumes: list[dict], classes: list[dict], helper_pods: list[dict],
         now: float) -> StoragePlan:
    result = StoragePlan()
    by_class = {c["metadata"]["name"]: c for c in classes}
    default = default_class(classes)
    volume_by_name = {v["metadata"]["name"]: v for v in volumes}
    claim_by_uid = {c["metadata"].get("uid"): c for c in claims}
    for claim in claims:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        if meta.get("deletionTimestamp"):
            continue
        class_name = spec.get("storageClassName")
        if class_name is None and default is not None and not spec.get("volumeName"):
            result.claim_patches.append((meta["namespace"], meta["name"],
                                         {"spec": {"storageClassName": default["metadata"]["name"]}}))
            class_name = default["metadata"]["name"]
        bound_to = spec.get("volumeName")
        volume = volume_by_name.get(bound_to) if bound_to else next(
            (v for v in volumes if get(v, "spec", "claimRef", "uid") == meta.get("uid")), None)
        if volume is not None:
            _bind(claim, volume, result)
            continue
        cls = by_class.get(class_name or "")
        if cls is None or cls.get("provisioner") != PROVISIONER:
            static = _available_volume(claim, class_name or "", volumes, result)
            if static is not None:  # statically provisioned: the operator made the volume
                result.volume_patches.append((static["metadata"]["name"], {"spec": {"claimRef": {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                    "name": meta["name"], "uid": meta.get("uid")}}}))
                _bind(claim, static, result)
            continue
        node = annotations(claim).get(SELECTED_NODE)
        if cls.get("volumeBindingMode", "Immediate") == "WaitForFirstConsumer" and not node:
            if get(claim, "status", "phase") != "Pending":
                result.claim_statuses.append((meta["namespace"], meta["name"], {"phase": "Pending"}))
            continue
        if not node:
            continue  # an Immediate local-path claim has no node to live on until one is named
        fresh = volume_for(claim, cls, node)
        result.create_volumes.append(fresh)
        result.events.append((claim, "PersistentVolumeClaim", "Normal", "ProvisioningSucceeded",
                              f"Successfully provisioned volume {fresh['metadata']['name']}"))
        _bind(claim, fresh, result)

    done = {p["metadata"]["labels"].get(CLEANUP_LABEL): p for p in helper_pods}
    for volume in volumes:
        ref = get(volume, "spec", "claimRef")
        if not ref:
            continue
        owner = claim_by_uid.get(ref.get("uid"))
        if owner is not None and not owner["metadata"].get("deletionTimestamp"):
            continue
        name = volume["metadata"]["name"]
        phase = get(volume, "status", "phase")
        policy = get(volume, "spec", "persistentVolumeReclaimPolicy", default="Retain")
        if phase != "Released" and policy != "Delete":
            result.volume_statuses.append((name, {"phase": "Released"}))
        if policy != "Delete" or annotations(volume).get(PROVISIONED_BY) != PROVISIONER:
            continue
        helper = done.get(name)
        if helper is None:
            result.cleanup_pods.append(cleanup_pod(volume))
        elif get(helper, "status", "phase") in ("Succeeded", "Failed"):
            if get(helper, "status", "phase") == "Failed":
                result.events.append((volume, "PersistentVolume", "Warning", "VolumeFailedDelete",
                                      f"the helper pod could not remove {get(volume, 'spec', 'hostPath', 'path')}"))
            result.delete_volumes.append(name)
            result.delete_pods.append((helper["metadata"]["namespace"], helper["metadata"]["name"]))
    return result


def _bind(claim: dict, volume: dict, result: StoragePlan) -> None:
    meta = claim["metadata"]
    named = get(claim, "spec", "volumeName") == volume["metadata"]["name"]
    if not named or annotations(claim).get(BIND_COMPLETED) != "yes":
        result.claim_patches.append((meta["namespace"], meta["name"], {
            "metadata": {"annotations": {BIND_COMPLETED: "yes"}},
            "spec": {"volumeName": volume["metadata"]["name"]}}))
    wanted = {"phase": "Bound", "accessModes": get(volume, "spec", "accessModes", default=[]),
              "capacity": get(volume, "spec", "capacity", default={})}
    if {k: get(claim, "status", k) for k in wanted} != wanted:
        result.claim_statuses.append((meta["namespace"], meta["name"], wanted))
    if get(volume, "status", "phase") != "Bound":
        result.volume_statuses.append((volume["metadata"]["name"], {"phase": "Bound"}))
