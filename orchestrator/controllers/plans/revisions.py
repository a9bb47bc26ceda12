"""Revisions of a pod template, as the workload controllers name them: a short stable hash of the
template (Deployments label pods `pod-template-hash`, DaemonSets and StatefulSets
`controller-revision-hash`), computed on the template without those labels and empty fields."""

from __future__ import annotations

import copy
import hashlib
import json

HASH_LABELS = ("pod-template-hash", "controller-revision-hash")


def comparable(template: dict) -> dict:
    """A pod template without the hash label and empty metadata fields (what kubectl's rollback
    copies back from a ReplicaSet carries both)."""
    clean = copy.deepcopy(template)
    meta = clean.setdefault("metadata", {})
    for label in HASH_LABELS:
        meta.get("labels", {}).pop(label, None)
    for key in [k for k, v in meta.items() if v in (None, {}, [])]:
        del meta[key]
    return clean


def template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(comparable(template), sort_keys=True).encode()).hexdigest()
    return format(int(digest[:12], 16), "x")[:10]
