"""Pod status as the kubelet reports it: shapes the official Python client accepts, phases by
Kubernetes' getPhase, conditions, reasons, QoS."""

from __future__ import annotations

import json

from kubernetes.client import ApiClient

from orchestrator.kubelet import podstatus
from orchestrator.kubelet.podstatus import PodView
from tests.unit.kubelet_fakes import ContainerState, pod

NOW = 1_700_000_100.0


def running(name, attempt=0, cid=None):
    return ContainerState(cid or f"{name}-{attempt}", "u1", name, attempt, "busybox", "sha256:ab", "running", 10,
                          NOW - 50, None, None, "", "")


def exited(name, attempt=0, code=1, reason="", cid=None):
    return ContainerState(cid or f"{name}-{attempt}", "u1", name, attempt, "busybox", "sha256:ab", "exited", None,
                          NOW - 60, NOW - 55, code, reason or ("Completed" if code == 0 else "Error"), "")


def status_of(p, **view):
    return podstatus.pod_status(p, PodView(runtime="runc", host_ip="10.77.0.2", **view), NOW)


def as_python_client(p, status):
    """What the official client makes of it (raises on a shape it rejects)."""
    return ApiClient().deserialize(json.dumps({**p, "status": status}), "V1Pod", "application/json")


def test_a_running_ready_pod_reads_back_through_the_python_client():
    p = pod()
    status = status_of(p, observed=[running("c")], sandbox_ready=True, pod_ip="10.244.1.5")
    v1 = as_python_client(p, status)
    assert v1.status.phase == "Running" and v1.status.pod_ip == "10.244.1.5" and v1.status.host_ip == "10.77.0.2"
    c = v1.status.container_statuses[0]
    assert (c.ready, c.started, c.restart_count, c.container_id, c.image_id) == (True, True, 0, "runc://c-0",
                                                                                  "sha256:ab")
    assert c.state.running.started_at.timestamp() == NOW - 50
    assert {x.type: x.status for x in v1.status.conditions} == {
        "PodScheduled": "True", "PodReadyToStartContainers": "True", "Initialized": "True",
        "ContainersReady": "True", "Ready": "True"}
    assert v1.status.qos_class == "BestEffort" and v1.status.pod_ips[0].ip == "10.244.1.5"


def test_crash_loop_shows_waiting_with_the_last_termination_and_the_restart_count():
    p = pod()
    status = status_of(p, observed=[exited("c", 2, code=1)], sandbox_ready=True,
                       waiting={"c": ("CrashLoopBackOff", "back-off 20s restarting failed container=c pod=x")})
    c = as_python_client(p, status).status.container_statuses[0]
    assert c.state.waiting.reason == "CrashLoopBackOff" and c.restart_count == 2 and not c.ready
    assert c.last_state.terminated.exit_code == 1 and c.last_state.terminated.reason == "Error"
    assert status["phase"] == "Running"  # restarting under Always
    ready = next(x for x in status["conditions"] if x["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "ContainersNotReady", "containers with unready status: [c]")


def test_oom_killed_shows_in_last_state_with_137():
    p = pod()
    status = status_of(p, observed=[exited("c", 0, code=137, reason="OOMKilled"), running("c", 1)],
                       sandbox_ready=True)
    last = status["containerStatuses"][0]["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (137, "OOMKilled")
    assert status["containerStatuses"][0]["restartCount"] == 1


def test_phases_follow_get_phase():
    cases = [  # policy, observed, waiting, phase
        ("Always", [], {}, "Pending"),
        ("Always", [running("c")], {}, "Running"),
        ("Never", [exited("c", code=0)], {}, "Succeeded"),
        ("Never", [exited("c", code=1)], {}, "Failed"),
        ("OnFailure", [exited("c", code=0)], {}, "Succeeded"),
        ("OnFailure", [exited("c", code=1)], {"c": ("CrashLoopBackOff", "")}, "Running"),
    ]
    for policy, observed, waiting, expected in cases:
        assert status_of(pod(policy=policy), observed=observed, waiting=waiting)["phase"] == expected, policy


def test_a_deleted_pod_whose_containers_stopped_is_terminal():
    p = pod()
    assert podstatus.pod_status(p, PodView(observed=[exited("c", code=143)]), NOW, terminal=True)["phase"] == "Failed"


def test_waiting_reasons_before_a_container_exists():
    plain = status_of(pod())["containerStatuses"][0]["state"]
    assert plain == {"waiting": {"reason": "ContainerCreating"}}
    with_init = pod(init=[{"name": "i", "image": "busybox"}])
    status = status_of(with_init, observed=[running("i")], sandbox_ready=True)
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["initContainerStatuses"][0]["state"]["running"]
    initialized = next(x for x in status["conditions"] if x["type"] == "Initialized")
    assert (initialized["status"], initialized["message"]) == ("False", "containers with incomplete status: [i]")
    config = status_of(pod(), waiting={"c": ("CreateContainerConfigError", 'configmap "x" not found')})
    assert config["containerStatuses"][0]["state"]["waiting"] == {"reason": "CreateContainerConfigError",
                                                                  "message": 'configmap "x" not found'}


def test_a_completed_init_container_is_ready_and_the_pod_initialized():
    p = pod(init=[{"name": "i", "image": "busybox"}])
    status = status_of(p, observed=[exited("i", code=0), running("c")], sandbox_ready=True)
    assert status["initContainerStatuses"][0]["ready"] is True
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert next(x for x in status["conditions"] if x["type"] == "Initialized")["status"] == "True"
    as_python_client(p, status)


def test_readiness_and_startup_probes_decide_ready_and_started():
    p = pod(containers=[{"name": "c", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}},
                         "startupProbe": {"exec": {"command": ["true"]}}}])
    before = status_of(p, observed=[running("c")], sandbox_ready=True)["containerStatuses"][0]
    assert (before["started"], before["ready"]) == (False, False)
    half = status_of(p, observed=[running("c")], sandbox_ready=True,
                     probes={"c-0": {"startup": "success", "readiness": "failure"}})["containerStatuses"][0]
    assert (half["started"], half["ready"]) == (True, False)
    both = status_of(p, observed=[running("c")], sandbox_ready=True,
                     probes={"c-0": {"startup": "success", "readiness": "success"}})
    assert both["containerStatuses"][0]["ready"] and next(
        x for x in both["conditions"] if x["type"] == "Ready")["status"] == "True"


def test_readiness_gates_hold_ready_back():
    p = pod(readinessGates=[{"conditionType": "example.com/lb"}])
    status = status_of(p, observed=[running("c")], sandbox_ready=True)
    ready = next(x for x in status["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"


def test_transition_times_move_only_when_a_condition_changes():
    p = pod()
    first = status_of(p, observed=[running("c")], sandbox_ready=True)
    p["status"] = first
    later = podstatus.pod_status(p, PodView(observed=[running("c")], sandbox_ready=True, host_ip="10.77.0.2"),
                                 NOW + 100)
    assert later == first  # nothing changed: nothing to report
    assert later["startTime"] == first["startTime"]


def test_rejected_pods_fail_with_the_reason():
    status = status_of(pod(), rejection=("OutOfmemory", "Pod was rejected: Node didn't have enough resource"))
    assert (status["phase"], status["reason"]) == ("Failed", "OutOfmemory")


def test_qos_classes():
    def qos(*resources):
        return podstatus.qos_class(pod(containers=[{"name": f"c{i}", "image": "b", "resources": r}
                                                   for i, r in enumerate(resources)]))
    assert qos({}) == "BestEffort"
    assert qos({"limits": {"cpu": "1", "memory": "1Gi"}}) == "Guaranteed"
    assert qos({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}) == \
        "Guaranteed"
    assert qos({"requests": {"cpu": "100m"}}) == "Burstable"
    assert qos({"limits": {"cpu": "1", "memory": "1Gi"}}, {}) == "Burstable"
