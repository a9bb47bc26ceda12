"""Failures the control plane must ride out: a node that stops heartbeating, a leader that dies;
and what follows deletions and readiness: garbage collection and EndpointSlices."""

from __future__ import annotations

import json
import os
import signal
import time

import yaml


def deployment(name: str, replicas: int) -> str:
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                    "template": {"metadata": {"labels": {"app": name}},
                                                 "spec": {"containers": [{"name": "c", "image": "busybox",
                                                                          "ports": [{"containerPort": 8080,
                                                                                     "name": "http"}]}]}}}})


def live(cluster, selector: str) -> list[dict]:
    return [p for p in cluster.pods(selector) if not p["metadata"].get("deletionTimestamp")]


def all_running(cluster, selector: str, count: int) -> list[dict]:
    def check():
        pods = live(cluster, selector)
        return pods if len(pods) == count and all(p["status"].get("phase") == "Running" for p in pods) else None
    return cluster.wait(check, 90)


def test_a_node_that_stops_heartbeating_is_tainted_and_its_pods_move(cluster):
    cluster.wait(lambda: len(cluster.json("get", "nodes")["items"]) >= 5, 60)
    cluster.kubectl("apply", "-f", "-", input=deployment("movers", 10))
    pods = all_running(cluster, "app=movers", 10)
    on = {}
    for pod in pods:
        on.setdefault(pod["spec"]["nodeName"], []).append(pod)
    victim = max(on, key=lambda name: len(on[name]))
    assert len(on[victim]) >= 2, on  # several pods of one ReplicaSet are evicted from it together
    cluster.kubectl("annotate", "node", victim, "ketch.dev/frozen=true")
    node = cluster.wait(
        lambda: (
            (n := cluster.json("get", "node", victim))
            and any(
                t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
                for t in n["spec"].get("taints", [])
            )
            and n
        ),
        30,
    )
    tainted = time.monotonic()
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown"
    assert "NotReady" in cluster.kubectl("get", "node", victim).stdout
    moved = cluster.wait(
        lambda: (p := all_running(cluster, "app=movers", 10)) and all(x["spec"]["nodeName"] != victim for x in p) and p,
        60,
    )
    assert len(moved) == 10
    # every evicted pod is replaced at once, not one now and the rest when the ReplicaSet's
    # expectations time out (30 s): eviction comes 2 s after the taint here
    assert time.monotonic() - tainted < 20, f"pods replaced {time.monotonic() - tainted:.0f} s after the taint"
    cluster.kubectl("annotate", "node", victim, "ketch.dev/frozen-")
    cluster.wait(lambda: not cluster.json("get", "node", victim)["spec"].get("taints"), 30)


def settled(deployment: dict) -> bool:
    """The controller has seen the current spec through: observed, and every replica updated and available."""
    status, wanted = deployment.get("status") or {}, deployment["spec"]["replicas"]
    return (status.get("observedGeneration") == deployment["metadata"]["generation"]
            and status.get("replicas") == status.get("updatedReplicas") == status.get("availableReplicas") == wanted)


def test_a_standby_scheduler_and_controller_manager_take_over_when_the_leaders_die(cluster):
    pki = cluster.plane.pki_dir
    standby_manager = cluster.component(
        "controller-manager",
        "--kubeconfig",
        str(pki / "controller-manager.kubeconfig"),
        "--node-monitor-grace-seconds",
        "4",
        "--pod-eviction-seconds",
        "2",
    )
    standby_scheduler = cluster.plane.start_scheduler()

    standbys = (standby_manager, standby_scheduler)
    leaders = [cluster.leader_process(lease, not_among=standbys) for lease in ("kube-controller-manager",
                                                                               "kube-scheduler")]
    for process in leaders:
        os.kill(process.pid, signal.SIGKILL)  # no clean release: the standby must wait out the lease
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=deployment("after-failover", 4))
    all_running(cluster, "app=after-failover", 4)
    took = time.monotonic() - started
    assert took < 30, f"the standbys took {took:.1f} s"
    for name, process in (("kube-controller-manager", standby_manager), ("kube-scheduler", standby_scheduler)):
        assert cluster.lease_holder(name).endswith(f"-{process.pid}")
    # nothing created twice: once the new leader has observed its work as done (status caught up with
    # the spec), there is exactly one ReplicaSet and four pods
    cluster.wait(lambda: settled(cluster.json("get", "deploy", "after-failover")), 30)
    assert len(cluster.json("get", "rs", "-l", "app=after-failover")["items"]) == 1
    assert len(live(cluster, "app=after-failover")) == 4


def test_deleting_a_deployment_removes_or_orphans_its_replicasets_and_pods(cluster):
    cluster.kubectl("apply", "-f", "-", input=deployment("collected", 2))
    all_running(cluster, "app=collected", 2)
    cluster.kubectl("delete", "deploy", "collected", "--wait=true", timeout=60)
    cluster.wait(
        lambda: not cluster.json("get", "rs", "-l", "app=collected")["items"] and not live(cluster, "app=collected"), 60
    )
    cluster.kubectl("apply", "-f", "-", input=deployment("orphaned", 2))
    all_running(cluster, "app=orphaned", 2)
    cluster.kubectl("delete", "deploy", "orphaned", "--cascade=orphan", timeout=60)
    cluster.wait(lambda: not cluster.kubectl("get", "deploy", "orphaned", check=False).returncode == 0, 30)
    replicasets = cluster.wait(lambda: [rs for rs in cluster.json("get", "rs", "-l", "app=orphaned")["items"]
                                        if not rs["metadata"].get("ownerReferences")], 30)
    assert len(replicasets) == 1
    assert len(live(cluster, "app=orphaned")) == 2


def test_an_endpointslice_follows_its_pods_readiness(cluster):
    cluster.kubectl("apply", "-f", "-", input=deployment("served", 2))
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "served"},
                "spec": {"selector": {"app": "served"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]},
            }
        ),
    )
    pods = all_running(cluster, "app=served", 2)

    def slice_endpoints():
        slices = cluster.json("get", "endpointslices", "-l", "kubernetes.io/service-name=served")["items"]
        return {e["addresses"][0]: e["conditions"]["ready"] for s in slices for e in s.get("endpoints") or []}

    cluster.wait(lambda: slice_endpoints() == {p["status"]["podIP"]: True for p in pods}, 30)
    slices = cluster.json("get", "endpointslices", "-l", "kubernetes.io/service-name=served")["items"]
    assert slices[0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    endpoints = cluster.json("get", "endpoints", "served")
    assert sorted(a["ip"] for a in endpoints["subsets"][0]["addresses"]) == sorted(p["status"]["podIP"] for p in pods)
    # One pod stops being ready: it moves to notReady, the other stays ready.
    target = pods[0]["metadata"]["name"]
    conditions = [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]
    cluster.kubectl(
        "patch",
        "pod",
        target,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": conditions}}),
    )
    cluster.wait(lambda: slice_endpoints().get(pods[0]["status"]["podIP"]) is False, 30)
    assert slice_endpoints()[pods[1]["status"]["podIP"]] is True
    endpoints = cluster.json("get", "endpoints", "served")
    assert [a["ip"] for a in endpoints["subsets"][0]["notReadyAddresses"]] == [pods[0]["status"]["podIP"]]
