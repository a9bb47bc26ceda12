"""Deployment pause/resume and Recreate, namespace deletion, and the components' metrics."""

from __future__ import annotations

import urllib.request

import yaml

from kvstore.local_cluster import free_port


def deployment(name: str, replicas: int, image: str, strategy: str = "RollingUpdate") -> str:
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                    "strategy": {"type": strategy},
                                    "template": {"metadata": {"labels": {"app": name}},
                                                 "spec": {"containers": [{"name": "c", "image": image}]}}}})


def images(cluster, selector: str) -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in cluster.pods(selector)
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"}


def test_a_paused_deployment_waits_for_resume_and_recreate_replaces_all_at_once(cluster):
    cluster.kubectl("apply", "-f", "-", input=deployment("paused", 3, "nginx:1"))
    cluster.kubectl("rollout", "status", "deploy/paused", "--timeout=60s", timeout=90)
    cluster.kubectl("rollout", "pause", "deploy/paused")
    cluster.kubectl("set", "image", "deploy/paused", "c=nginx:2")
    cluster.wait(lambda: len(cluster.json("get", "rs", "-l", "app=paused")["items"]) == 1, 5)  # settles as is
    assert images(cluster, "app=paused") == {"nginx:1"}
    cluster.kubectl("rollout", "resume", "deploy/paused")
    cluster.kubectl("rollout", "status", "deploy/paused", "--timeout=60s", timeout=90)
    cluster.wait(lambda: images(cluster, "app=paused") == {"nginx:2"}, 30)
    described = cluster.kubectl("describe", "deploy", "paused").stdout
    assert "Available      True    MinimumReplicasAvailable" in described
    assert "Progressing    True    NewReplicaSetAvailable" in described

    cluster.kubectl("apply", "-f", "-", input=deployment("recreated", 3, "nginx:1", "Recreate"))
    cluster.kubectl("rollout", "status", "deploy/recreated", "--timeout=60s", timeout=90)
    cluster.kubectl("set", "image", "deploy/recreated", "c=nginx:2")
    cluster.kubectl("rollout", "status", "deploy/recreated", "--timeout=60s", timeout=90)
    assert images(cluster, "app=recreated") == {"nginx:2"}


def test_deleting_a_namespace_deletes_its_contents_then_the_namespace(cluster):
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": "doomed"}}))
    cluster.kubectl("apply", "-n", "doomed", "-f", "-", input=deployment("inside", 2, "nginx:1"))
    cluster.wait(lambda: len(cluster.json("get", "pods", "-n", "doomed")["items"]) == 2, 60)
    cluster.kubectl("delete", "namespace", "doomed", "--wait=true", timeout=90)
    gone = cluster.kubectl("get", "namespace", "doomed", check=False)
    assert gone.returncode == 1 and 'namespaces "doomed" not found' in gone.stderr
    assert cluster.json("get", "deploy", "-n", "doomed")["items"] == []


def test_components_serve_metrics(cluster):
    port = free_port()
    cluster.plane.start_scheduler("--metrics-bind", f"127.0.0.1:{port}", "--identity", "metrics-probe")

    def scrape():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            return None
    text = cluster.wait(scrape, 30)
    for name in ("scheduler_schedule_attempts_total", "scheduler_scheduling_attempt_duration_seconds_bucket",
                 "scheduler_pending_pods", "scheduler_leader 0"):
        assert name in text, name  # a standby: it waits for the lease, and says so


def test_events_and_describe_show_what_the_scheduler_and_controllers_did_and_namespaces_get_a_service_account(cluster):
    cluster.kubectl("create", "namespace", "told")
    cluster.wait(lambda: cluster.kubectl("get", "sa", "default", "-n", "told", check=False).returncode == 0, 30)
    cluster.kubectl("create", "deployment", "told", "--image=nginx", "--replicas=2", "-n", "told")
    cluster.kubectl("rollout", "status", "deploy/told", "-n", "told", "--timeout=60s", timeout=90)
    reasons = {"ScalingReplicaSet", "SuccessfulCreate", "Scheduled"}

    def reported():
        out = cluster.kubectl("events", "-n", "told").stdout
        return out if all(reason in out for reason in reasons) else None
    events = cluster.wait(reported, 30)
    assert "Successfully assigned told/told-" in events and "Scaled up replica set told-" in events
    assert "Created pod: told-" in events
    described = cluster.kubectl("describe", "deploy", "told", "-n", "told").stdout
    assert "Events:" in described and "ScalingReplicaSet" in described.split("Events:")[1]
    newer = cluster.kubectl("get", "events.v1.events.k8s.io", "-n", "told", "-o", "json").stdout
    assert {e["reason"] for e in yaml.safe_load(newer)["items"]} >= reasons  # the same events in the newer group
