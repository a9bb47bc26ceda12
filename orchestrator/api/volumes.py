"""PersistentVolumeClaims as the scheduler, the kubelet and the volume controller read them (pure).

Rules kept (Kubernetes' storage API):
- a claim without `storageClassName` belongs to the default class, the StorageClass annotated
  `storageclass.kubernetes.io/is-default-class: "true"` (the newest, when several are);
- a claim is bound when `spec.volumeName` names its volume; a volume's directory on a node is its
  `hostPath.path` or `local.path`;
- a claim of a `WaitForFirstConsumer` class waits for the scheduler to pick its pod's node, written
  as the claim annotation `volume.kubernetes.io/selected-node`.
"""

from __future__ import annotations

from orchestrator.api.meta import annotations, field

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def default_class(classes: list[dict]) -> dict | None:
    marked = [c for c in classes if annotations(c).get(DEFAULT_CLASS) == "true"]
    return sorted(marked, key=lambda c: c["metadata"].get("creationTimestamp") or "")[-1] if marked else None


def claim_names(pod: dict) -> list[tuple[str, str]]:
    """(volume name, claim name) of every persistentVolumeClaim volume of the pod."""
    return [(v.get("name", ""), v["persistentVolumeClaim"].get("claimName", ""))
            for v in field(pod, "spec", "volumes", default=[]) or []
            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)]


def class_of(claim: dict, classes: list[dict]) -> dict | None:
    name = field(claim, "spec", "storageClassName")
    if name is None:
        return default_class(classes)
    return next((c for c in classes if c["metadata"]["name"] == name), None)


def waits_for_consumer(claim: dict, classes: list[dict]) -> bool:
    cls = class_of(claim, classes)
    return cls is not None and cls.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def volume_path(volume: dict) -> str:
    return field(volume, "spec", "hostPath", "path") or field(volume, "spec", "local", "path") or ""
