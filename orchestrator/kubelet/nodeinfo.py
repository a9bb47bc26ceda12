"""The Node object a kubelet registers and keeps, and its admission check (pure).

Rules kept (Kubernetes' kubelet_node_status.go and the admission handlers):
- capacity: cpu (the host's CPUs), memory (MemTotal), pods (--max-pods, 110 by default),
  ephemeral-storage (the root dir's filesystem); allocatable is capacity minus the hard
  eviction threshold (memory.available < 100Mi; nodefs.available < 10%).
- addresses: InternalIP (the node IP) and Hostname; labels kubernetes.io/hostname, kubernetes.io/os,
  kubernetes.io/arch; daemonEndpoints.kubeletEndpoint.Port is the kubelet's port; nodeInfo names
  the kernel, OS image, runtime and kubelet versions.
- conditions: MemoryPressure, DiskPressure, PIDPressure False and Ready True while the kubelet
  runs, each with the kubelet's reasons; lastHeartbeatTime moves on every report,
  lastTransitionTime only when a status changes.
- admission: a pod whose requests do not fit what is left of allocatable (next to the pods already
  admitted) is rejected: phase Failed, reason Out<resource> (OutOfcpu, OutOfmemory, OutOfpods),
  message "Pod was rejected: Node didn't have enough resource: ...".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.api import conditions as cond
from orchestrator.api import pods as pod_shape
from orchestrator.api import quantity

KUBELET_VERSION = "v1.32.0-ketch"
MEMORY_EVICTION_BYTES = 100 * 1024 * 1024
NODE_CONDITIONS = (("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                   ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                   ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                   ("Ready", "True", "KubeletReady", "kubelet is posting ready status"))


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    node_ip: str
    cpus: int
    memory_bytes: int
    ephemeral_storage_bytes: int
    kernel_version: str = ""
    os_image: str = ""
    architecture: str = "amd64"
    machine_id: str = ""
    boot_id: str = ""
    runtime_version: str = ""         # e.g. runc://1.1.5
    max_pods: int = 110
    port: int = 10250
    labels: dict = field(default_factory=dict)


def capacity(facts: HostFacts) -> dict[str, str]:
    return {"cpu": str(facts.cpus), "memory": f"{facts.memory_bytes // 1024}Ki", "pods": str(facts.max_pods),
            "ephemeral-storage": f"{facts.ephemeral_storage_bytes // 1024}Ki"}


def allocatable(facts: HostFacts) -> dict[str, str]:
    memory = max(0, facts.memory_bytes - MEMORY_EVICTION_BYTES)
    storage = facts.ephemeral_storage_bytes * 9 // 10
    return {"cpu": str(facts.cpus), "memory": f"{memory // 1024}Ki", "pods": str(facts.max_pods),
            "ephemeral-storage": str(storage)}


def node_labels(name: str, facts: HostFacts) -> dict[str, str]:
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": facts.architecture,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": facts.architecture, **facts.labels}


def node_status(facts: HostFacts, existing_conditions: list[dict], stamp: str) -> dict:
    conditions = existing_conditions
    for kind, status, reason, message in NODE_CONDITIONS:
        conditions = cond.updated(conditions, kind, status, reason, message, stamp, lastHeartbeatTime=stamp)
    return {"capacity": capacity(facts), "allocatable": allocatable(facts), "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": facts.node_ip}, {"type": "Hostname",
                                                                               "address": facts.hostname}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": facts.port}},
            "nodeInfo": {"machineID": facts.machine_id, "systemUUID": facts.machine_id, "bootID": facts.boot_id,
                         "kernelVersion": facts.kernel_version, "osImage": facts.os_image,
                         "containerRuntimeVersion": facts.runtime_version, "kubeletVersion": KUBELET_VERSION,
                         "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": facts.architecture}}


def node_object(name: str, facts: HostFacts, stamp: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": node_labels(name, facts)},
            "spec": {}, "status": node_status(facts, [], stamp)}


def status_changed(old: dict, new: dict) -> bool:
    """Anything but heartbeat times differs: worth a report before the next periodic one."""
    def strip(status: dict) -> dict:
        return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                                         for c in status.get("conditions") or []]}
    return strip(old or {}) != strip(new)


# --- admission -------------------------------------------------------------------------------------

def admit(pod: dict, admitted: list[dict], facts: HostFacts) -> tuple[str, str] | None:
    """None if the pod fits next to the already admitted pods; else (reason, message)."""
    free = quantity.resources(allocatable(facts))
    used: dict[str, int] = {}
    for other in admitted:
        for name, value in pod_shape.requests(other).items():
            used[name] = used.get(name, 0) + value
    for name, wanted in pod_shape.requests(pod).items():
        if name not in free:
            continue  # extended resources this node does not know: Kubernetes rejects, we let them pass
        if used.get(name, 0) + wanted > free[name]:
            shown = {"cpu": "cpu", "memory": "memory", "pods": "pods"}.get(name, name)
            return (f"OutOf{shown}", f"Pod was rejected: Node didn't have enough resource: {shown}, requested: "
                    f"{wanted}, used: {used.get(name, 0)}, capacity: {free[name]}")
    return None
