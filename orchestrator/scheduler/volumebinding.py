"""VolumeBinding (pure), as Kubernetes' plugin of that name, for the claims a lab uses:
- PreFilter: every persistentVolumeClaim of the pod must exist and not be going; a bound claim
  brings its volume (whose node affinity then filters nodes); an unbound claim must be of a
  WaitForFirstConsumer class (an Immediate one waits for its volume: "pod has unbound immediate
  PersistentVolumeClaims"), and its node is this pod's, chosen here.
- Filter: a node outside a bound volume's node affinity "had volume node affinity conflict".
- After the choice, the scheduler writes the node into each delayed claim
  (`volume.kubernetes.io/selected-node`) before binding the pod: the provisioner makes the
  volume on that node, and the kubelet waits for the claim to be bound before it mounts it.

The claims, volumes and classes come from a `VolumeObjects` (the scheduler's informers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.api import volumes
from orchestrator.api.meta import field
from orchestrator.api.scheduling import node_term_matches
from orchestrator.scheduler.framework import CycleState, NodeInfo


class VolumeObjects(Protocol):
    def claim(self, namespace: str, name: str) -> dict | None: ...
    def volume(self, name: str) -> dict | None: ...
    def classes(self) -> list[dict]: ...


@dataclass
class ClaimCheck:
    problem: str | None   # the reason every node fails, if any
    bound: list[dict]     # volumes of bound claims
    delayed: list[dict]   # claims waiting for this pod's node


def check_claims(pod: dict, objects: VolumeObjects) -> ClaimCheck:
    namespace = pod["metadata"].get("namespace", "default")
    bound, delayed = [], []
    for _, claim_name in volumes.claim_names(pod):
        claim = objects.claim(namespace, claim_name)
        if claim is None:
            return ClaimCheck(f'persistentvolumeclaim "{claim_name}" not found', [], [])
        if claim["metadata"].get("deletionTimestamp"):
            return ClaimCheck(f'persistentvolumeclaim "{claim_name}" is being deleted', [], [])
        volume_name = field(claim, "spec", "volumeName")
        if volume_name:
            volume = objects.volume(volume_name)
            if volume is None:
                return ClaimCheck(f'persistentvolume "{volume_name}" not found', [], [])
            bound.append(volume)
        elif volumes.waits_for_consumer(claim, objects.classes()):
            delayed.append(claim)
        else:
            return ClaimCheck("pod has unbound immediate PersistentVolumeClaims", [], [])
    return ClaimCheck(None, bound, delayed)


def volume_fits(volume: dict, node: dict) -> bool:
    terms = field(volume, "spec", "nodeAffinity", "required", "nodeSelectorTerms", default=[]) or []
    return not terms or any(node_term_matches(term, node) for term in terms)


class VolumeBinding:
    name = "VolumeBinding"

    def __init__(self, objects: VolumeObjects) -> None:
        self.objects = objects

    def prefilter(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> None:
        state.data["claims"] = check_claims(pod, self.objects) if volumes.claim_names(pod) else ClaimCheck(None, [], [])

    def filter(self, state: CycleState, pod: dict, info: NodeInfo):
        check: ClaimCheck = state.data["claims"]
        if check.problem:
            return check.problem
        if not all(volume_fits(v, info.node) for v in check.bound):
            return "node(s) had volume node affinity conflict"
        return None
