"""Deployments end to end with real kubectl: spread, rollout, scale, rolling update bounds, undo."""

from __future__ import annotations

import json
import subprocess
import threading

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image}
        resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
"""


def running(cluster, selector: str, count: int):
    def check():
        pods = [p for p in cluster.pods(selector) if not p["metadata"].get("deletionTimestamp")]
        return pods if len(pods) == count and all(p["status"].get("phase") == "Running" for p in pods) else None
    return cluster.wait(check, 90)


def test_a_deployment_spreads_rolls_out_scales_updates_within_bounds_and_undoes(cluster):
    cluster.wait(lambda: len(cluster.json("get", "nodes")["items"]) == 5, 60)
    cluster.kubectl("apply", "-f", "-", input=DEPLOYMENT.format(replicas=10, image="nginx:1.25"))
    pods = running(cluster, "app=web", 10)
    per_node = {}
    for pod in pods:
        per_node[pod["spec"]["nodeName"]] = per_node.get(pod["spec"]["nodeName"], 0) + 1
    assert len(per_node) == 5 and max(per_node.values()) <= 3, per_node  # spread across the nodes
    assert all(p["status"]["podIP"].startswith("10.244.") for p in pods)
    status = cluster.kubectl("rollout", "status", "deploy/web", "--timeout=60s", timeout=90)
    assert 'deployment "web" successfully rolled out' in status.stdout

    cluster.kubectl("scale", "deploy/web", "--replicas=3")
    running(cluster, "app=web", 3)

    # Watch every pod event during the update. The default strategy (25% surge, 25% unavailable)
    # gives, at 3 replicas, maxSurge 1 and maxUnavailable 0: ready pods must never drop below 3.
    watcher = subprocess.Popen(["kubectl", "get", "pods", "-l", "app=web", "-w", "-o", "json", "--output-watch-events"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={"KUBECONFIG": str(cluster.plane.kubeconfig()), "PATH": "/usr/bin:/bin",
                                    "KUBECACHEDIR": str(cluster.plane.base_dir / "kc-watch")})
    lowest = [99]
    state: dict[str, bool] = {}
    listed = threading.Event()  # the watch's first listing is in: the 3 ready pods
    decoder = json.JSONDecoder()

    def follow() -> None:
        buffer = ""
        for line in watcher.stdout:
            buffer += line
            try:
                event, _ = decoder.raw_decode(buffer.strip())
            except ValueError:
                continue
            buffer = ""
            pod = event["object"]
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
            )
            if event["type"] == "DELETED" or pod["metadata"].get("deletionTimestamp"):
                state.pop(pod["metadata"]["name"], None)
            else:
                state[pod["metadata"]["name"]] = ready
            if not listed.is_set():  # kubectl lists pod by pod: a partial listing is no drop
                if len(state) == 3 and all(state.values()):
                    listed.set()
                continue
            lowest[0] = min(lowest[0], sum(state.values()))

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        assert listed.wait(60), "the watch never listed the 3 ready pods"
        cluster.kubectl("set", "image", "deploy/web", "web=nginx:1.26")
        cluster.kubectl("rollout", "status", "deploy/web", "--timeout=90s", timeout=120)
        updated = running(cluster, "app=web", 3)
        assert {p["spec"]["containers"][0]["image"] for p in updated} == {"nginx:1.26"}
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    assert lowest[0] >= 3, f"ready pods fell to {lowest[0]} (replicas 3, maxUnavailable 0)"

    cluster.kubectl("rollout", "undo", "deploy/web")
    cluster.kubectl("rollout", "status", "deploy/web", "--timeout=90s", timeout=120)
    back = running(cluster, "app=web", 3)
    assert {p["spec"]["containers"][0]["image"] for p in back} == {"nginx:1.25"}
    replicasets = cluster.json("get", "rs", "-l", "app=web")["items"]
    assert sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in replicasets) == [
        "2",
        "3",
    ]


def test_rollout_undo_of_a_deployment_made_by_kubectl_create(cluster):
    """`kubectl rollout undo` sends a JSON patch that replaces metadata.annotations: a Deployment
    made by `kubectl create deployment` has none of its own, so the controller's revision
    annotation must be there (Kubernetes writes it on every Deployment)."""
    cluster.kubectl("create", "deployment", "undoable", "--image=busybox:1.36", "--replicas=2")
    cluster.kubectl("rollout", "status", "deploy/undoable", "--timeout=90s", timeout=120)
    assert cluster.json("get", "deploy", "undoable")["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1"}
    cluster.kubectl("set", "image", "deploy/undoable", "busybox=busybox:1.37")
    cluster.kubectl("rollout", "status", "deploy/undoable", "--timeout=90s", timeout=120)
    undo = cluster.kubectl("rollout", "undo", "deploy/undoable")
    assert "rolled back" in undo.stdout, undo.stdout + undo.stderr
    cluster.kubectl("rollout", "status", "deploy/undoable", "--timeout=90s", timeout=120)
    back = running(cluster, "app=undoable", 2)
    assert {p["spec"]["containers"][0]["image"] for p in back} == {"busybox:1.36"}
    assert cluster.json("get", "deploy", "undoable")["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "3"
