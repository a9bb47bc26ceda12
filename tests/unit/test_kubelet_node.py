"""The Node object from host facts, node conditions, admission, and the stats summary."""

from __future__ import annotations

import json

from kubernetes.client import ApiClient

from orchestrator.kubelet import nodeinfo, stats

FACTS = nodeinfo.HostFacts(hostname="h2", node_ip="10.77.0.2", cpus=2, memory_bytes=4 << 30,
                           ephemeral_storage_bytes=100 << 30, kernel_version="6.18", os_image="Debian 12",
                           runtime_version="runc://1.1.5", port=10250)


def test_node_object_reads_back_through_the_python_client():
    node = nodeinfo.node_object("n2", FACTS, "2024-01-01T00:00:00Z")
    v1 = ApiClient().deserialize(json.dumps(node), "V1Node", "application/json")
    assert v1.status.capacity == {"cpu": "2", "memory": "4194304Ki", "pods": "110", "ephemeral-storage": "104857600Ki"}
    assert v1.status.allocatable["memory"] == f"{(4 << 30) // 1024 - 100 * 1024}Ki"
    assert [(a.type, a.address) for a in v1.status.addresses] == [("InternalIP", "10.77.0.2"), ("Hostname", "h2")]
    assert v1.status.daemon_endpoints.kubelet_endpoint.port == 10250
    assert {c.type: c.status for c in v1.status.conditions} == {
        "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    assert v1.metadata.labels["kubernetes.io/hostname"] == "n2"
    assert v1.status.node_info.container_runtime_version == "runc://1.1.5"


def test_heartbeats_alone_are_not_a_change():
    first = nodeinfo.node_status(FACTS, [], "2024-01-01T00:00:00Z")
    later = nodeinfo.node_status(FACTS, first["conditions"], "2024-01-01T00:01:00Z")
    assert not nodeinfo.status_changed(first, later)
    assert all(c["lastTransitionTime"] == "2024-01-01T00:00:00Z" for c in later["conditions"])
    assert all(c["lastHeartbeatTime"] == "2024-01-01T00:01:00Z" for c in later["conditions"])


def test_admission_rejects_what_does_not_fit():
    def pod(cpu="100m", memory="64Mi"):
        return {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}
    assert nodeinfo.admit(pod(), [pod()] * 5, FACTS) is None
    reason, message = nodeinfo.admit(pod(cpu="1500m"), [pod(cpu="1")], FACTS)
    assert reason == "OutOfcpu" and message.startswith("Pod was rejected: Node didn't have enough resource: cpu")
    assert nodeinfo.admit(pod(memory="1Ei"), [], FACTS)[0] == "OutOfmemory"


def test_stats_summary_turns_cpu_time_into_a_rate():
    tracker = stats.RateTracker()
    def pods(cpu_ns, memory):
        return [stats.PodSample("web", "default", "u1", "2024-01-01T00:00:00Z", {"c": stats.Sample(cpu_ns, memory)})]
    first = stats.summary("n2", "t", stats.Sample(10**10, 1 << 30), 4 << 30, pods(10**9, 5 << 20), tracker, now=100.0)
    assert first["pods"][0]["cpu"]["usageNanoCores"] == 0
    second = stats.summary("n2", "t", stats.Sample(10**10 + 2 * 10**9, 1 << 30), 4 << 30,
                           pods(1_500_000_000, 6 << 20), tracker, now=102.0)
    pod = second["pods"][0]
    assert pod["podRef"] == {"name": "web", "namespace": "default", "uid": "u1"}
    assert pod["containers"][0]["cpu"]["usageNanoCores"] == 250_000_000  # 0.5 s of CPU in 2 s
    assert pod["memory"]["workingSetBytes"] == 6 << 20
    assert second["node"]["cpu"]["usageNanoCores"] == 10**9 and second["node"]["memory"]["availableBytes"] == 3 << 30
