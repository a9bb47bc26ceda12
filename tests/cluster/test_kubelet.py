"""The kubelet on real lab hosts (network namespaces), real runc, a real control plane (issue 11's
"Must show"): a Deployment across two hosts reachable pod to pod, crash loops with --previous
logs, liveness restarts and readiness in EndpointSlices, OOMKilled, graceful deletion leaving
nothing behind, a SIGKILLed kubelet adopting its containers, an API server outage, a missing
image, specs refused with a reason, and the same Deployment on the `process` runtime."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from netproxy.podnet.layout import host_veth_name, netns_name
from tests.cluster.kubelet_lab import KubeletLab

pytestmark = pytest.mark.cluster


def _runtime_missing() -> str:
    try:
        from orchestrator.kubelet.runtime import choose_runtime  # noqa: F401
    except ImportError:
        return "the container runtime package (contract A, orchestrator.kubelet.runtime) is not in this build"
    return ""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = _runtime_missing()
    if missing:
        pytest.skip(missing)
    cluster = KubeletLab.create(tmp_path_factory.mktemp("kubelet-cluster"), workers=2, runtime="runc")
    try:
        yield cluster
    finally:
        cluster.close()


HTTPD = ("mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www")


def web_deployment(name: str, replicas: int = 3) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 2,
                         "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                        "whenUnsatisfiable": "DoNotSchedule",
                                                        "labelSelector": {"matchLabels": {"app": name}}}],
                         "containers": [{"name": "web", "image": "busybox", "command": ["sh", "-c", HTTPD],
                                         "ports": [{"containerPort": 8080}],
                                         "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                                            "periodSeconds": 1}}]}}}}


def pod(name: str, node: str | None, *containers: dict, **spec) -> dict:
    body = {"terminationGracePeriodSeconds": 3, "containers": list(containers), **spec}
    if node:
        body["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def ready(p: dict | None) -> bool:
    return bool(p) and any(c["type"] == "Ready" and c["status"] == "True"
                           for c in (p.get("status") or {}).get("conditions") or [])


def state_of(p: dict | None) -> dict:
    statuses = ((p or {}).get("status") or {}).get("containerStatuses") or [{}]
    return statuses[0]


def delete(cluster: KubeletLab, *what: str) -> None:
    cluster.kubectl("delete", *what, "--ignore-not-found", "--wait=true", timeout=120)


def fetched(cluster: KubeletLab, node: str, url: str) -> str:
    """What a pod pinned to `node` gets from url (a pod's logs, through the API server). `timeout`,
    not `wget -T`: Debian 12's static busybox (1.35) segfaults on -T."""
    name = f"client-{int(time.monotonic() * 1000) % 100000}"
    cluster.apply(pod(name, node, {"name": "c", "image": "busybox", "command": ["timeout", "10", "wget", "-qO-", url]},
                      restartPolicy="Never"))
    cluster.wait(lambda: (cluster.pod(name) or {}).get("status", {}).get("phase") in ("Succeeded", "Failed"), 60,
                 f"{name} to finish")
    out = cluster.kubectl("logs", name).stdout
    delete(cluster, "pod", name)
    return out


def check_deployment_runs_across_hosts(cluster: KubeletLab, name: str) -> None:
    cluster.apply(web_deployment(name))
    pods = cluster.wait(lambda: (lambda items: items if len(items) == 3 and all(map(ready, items)) else None)(
        cluster.pods(f"app={name}")), 120, "3 pods Running and Ready")
    assert all(p["status"]["phase"] == "Running" for p in pods)
    by_node = {}
    for p in pods:
        by_node.setdefault(p["spec"]["nodeName"], []).append(p)
    assert set(by_node) == set(cluster.nodes), "spread over both hosts"
    first, second = cluster.nodes
    target = by_node[second][0]
    answer = fetched(cluster, first, f"http://{target['status']['podIP']}:8080/")
    assert answer == f"hello-from-{target['metadata']['name']}\n"
    delete(cluster, "deployment", name)
    cluster.wait(lambda: not cluster.pods(f"app={name}"), 60, "the Deployment's pods gone")


def test_a_deployment_runs_ready_on_both_hosts_and_pods_reach_each_other_across_hosts(cluster):
    check_deployment_runs_across_hosts(cluster, "web")


def test_a_crashing_container_backs_off_and_kubectl_logs_previous_shows_the_last_run(cluster):
    node = cluster.nodes[0]
    cluster.apply(pod("crash", node, {"name": "c", "image": "busybox",
                                      "command": ["sh", "-c", "echo run-$(cat /proc/uptime | cut -d' ' -f1); exit 1"]}))

    def looping():
        state = state_of(cluster.pod("crash"))
        return state if state.get("restartCount", 0) >= 2 and \
            state.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" else None
    state = cluster.wait(looping, 90, "CrashLoopBackOff after two restarts")
    assert state["lastState"]["terminated"]["exitCode"] == 1
    previous = cluster.kubectl("logs", "crash", "--previous").stdout
    current = cluster.kubectl("logs", "crash").stdout
    assert previous.startswith("run-") and current.startswith("run-") and previous != current
    described = cluster.kubectl("describe", "pod", "crash").stdout
    assert "BackOff" in described or "CrashLoopBackOff" in described
    delete(cluster, "pod", "crash")


def test_liveness_failures_restart_and_readiness_failures_leave_the_service_endpoints(cluster):
    node = cluster.nodes[0]
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probed"},
                   "spec": {"selector": {"app": "probed"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    cluster.apply(pod("live", node, {"name": "c", "image": "busybox",
                                     "command": ["sh", "-c", "touch /tmp/alive; (sleep 4; rm /tmp/alive) & sleep 3600"],
                                     "livenessProbe": {"exec": {"command": ["test", "-e", "/tmp/alive"]},
                                                       "periodSeconds": 1, "failureThreshold": 2}}))
    ready_manifest = pod("ready", node, {"name": "c", "image": "busybox",
                                         "command": ["sh", "-c", "touch /tmp/ready; (sleep 12; rm /tmp/ready) & "
                                                     "exec httpd -f -p 8080 -h /"],
                                         "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]},
                                                            "periodSeconds": 1}})
    ready_manifest["metadata"]["labels"] = {"app": "probed"}
    cluster.apply(ready_manifest)
    cluster.wait(lambda: state_of(cluster.pod("live")).get("restartCount", 0) >= 1, 60, "a liveness restart")
    described = cluster.kubectl("describe", "pod", "live").stdout
    assert "Liveness probe failed" in described and "failed liveness probe, will be restarted" in described

    def endpoint_ready():
        slices = cluster.json("get", "endpointslices", "-l", "kubernetes.io/service-name=probed")["items"]
        states = [e.get("conditions", {}).get("ready") for s in slices for e in s.get("endpoints") or []]
        return states or None
    assert cluster.wait(lambda: endpoint_ready() == [True], 60, "the ready pod in the endpoints")
    assert cluster.wait(lambda: endpoint_ready() in ([False], []), 60, "the unready pod out of the ready endpoints")
    assert not ready(cluster.pod("ready")) and state_of(cluster.pod("ready"))["restartCount"] == 0
    delete(cluster, "pod", "live", "ready")
    delete(cluster, "service", "probed")


def test_a_memory_limit_is_enforced_and_shows_as_oom_killed_137(cluster):
    cluster.apply(pod("hog", cluster.nodes[1], {
        "name": "c", "image": "busybox", "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
        "resources": {"limits": {"memory": "32Mi"}}}))

    def oom():
        last = state_of(cluster.pod("hog")).get("lastState", {}).get("terminated") or {}
        return last if last.get("reason") == "OOMKilled" else None
    last = cluster.wait(oom, 60, "OOMKilled in lastState")
    assert last["exitCode"] == 137
    delete(cluster, "pod", "hog")


def leftovers(cluster: KubeletLab, node: str, uid: str) -> list[str]:
    """Anything of the pod still on its host: namespace, veth, cgroup, mount, files."""
    found = []
    if netns_name(node, uid) in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        found.append("netns")
    if host_veth_name(uid) in cluster.run_in(node, "ip", "-o", "link").stdout:
        found.append("veth")
    cgroups = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "7", "-name", f"*{uid}*"], capture_output=True,
                             text=True).stdout
    if cgroups.strip():
        found.append(f"cgroups {cgroups.split()}")
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if uid in line]
    mounts += [line for line in cluster.run_in(node, "cat", "/proc/mounts").stdout.splitlines() if uid in line]
    if mounts:
        found.append(f"mounts {mounts}")
    files = subprocess.run(["find", str(cluster.root_dir(node)), "-path", f"*{uid}*"], capture_output=True,
                           text=True).stdout
    if files.strip():
        found.append(f"files {files.split()[:5]}")
    return found


def test_kubectl_delete_runs_pre_stop_and_sigterm_and_leaves_nothing_behind(cluster, tmp_path):
    node = cluster.nodes[0]
    marks = cluster.work / "marks"
    cluster.apply(pod("bye", node, {
        "name": "c", "image": "busybox",
        "command": ["sh", "-c", "trap 'echo term >> /marks/log; exit 0' TERM; echo up >> /marks/log; "
                    "while true; do sleep 0.2; done"],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /marks/log"]}}},
        "volumeMounts": [{"name": "marks", "mountPath": "/marks"}, {"name": "scratch", "mountPath": "/scratch"}]},
        volumes=[{"name": "marks", "hostPath": {"path": str(marks), "type": "DirectoryOrCreate"}},
                 {"name": "scratch", "emptyDir": {"medium": "Memory"}}]))
    p = cluster.wait(lambda: (lambda x: x if (x or {}).get("status", {}).get("phase") == "Running" else None)(
        cluster.pod("bye")), 60, "the pod running")
    uid = p["metadata"]["uid"]
    assert cluster.wait(lambda: (marks / "log").exists(), 20)
    cluster.kubectl("delete", "pod", "bye", "--wait=true", timeout=60)
    assert cluster.pod("bye") is None
    assert (marks / "log").read_text().split() == ["up", "prestop", "term"]
    assert cluster.wait(lambda: not leftovers(cluster, node, uid), 20, f"nothing left: {leftovers(cluster, node, uid)}")


def test_a_sigkilled_kubelet_restarts_and_adopts_without_duplicates_or_lost_restart_counts(cluster):
    node = cluster.nodes[1]
    cluster.apply(pod("adopt", node, {"name": "c", "image": "busybox",
                                      "command": ["sh", "-c", "if [ -e /data/once ]; then exec sleep 3607; fi; "
                                                  "touch /data/once; exit 2"],
                                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                      volumes=[{"name": "data", "emptyDir": {}}]))

    def restarted_running():
        p = cluster.pod("adopt")
        s = state_of(p)
        return p if s.get("restartCount") == 1 and "running" in s.get("state", {}) else None
    before = cluster.wait(restarted_running, 60, "one restart, then running")
    container_id = state_of(before)["containerID"]
    cluster.kill_kubelet(node, signal.SIGKILL)
    time.sleep(3)
    assert _processes("sleep 3607") == 1, "the container outlives its kubelet"
    cluster.start_kubelet(node)
    time.sleep(8)
    after = cluster.wait(restarted_running, 30, "the pod still reported running")
    assert state_of(after)["containerID"] == container_id and state_of(after)["restartCount"] == 1
    assert _processes("sleep 3607") == 1, "no duplicate container"
    delete(cluster, "pod", "adopt")


def _processes(command: str) -> int:
    return len(subprocess.run(["pgrep", "-f", f"^{command}$"], capture_output=True, text=True).stdout.split())


def test_pods_keep_serving_through_a_20_s_api_server_outage_and_status_converges(cluster):
    node = cluster.nodes[0]
    trigger = cluster.work / "trigger"
    trigger.mkdir(exist_ok=True)
    cluster.apply(pod("steady", node, {"name": "c", "image": "busybox",
                                       "command": ["sh", "-c", "mkdir /www; echo up > /www/index.html; "
                                                   "httpd -p 8080 -h /www; while [ ! -e /t/crash ]; "
                                                   "do sleep 0.2; done; rm /t/crash; exit 1"],
                                       "volumeMounts": [{"name": "t", "mountPath": "/t"}]},
                      volumes=[{"name": "t", "hostPath": {"path": str(trigger), "type": "Directory"}}]))
    p = cluster.wait(lambda: (lambda x: x if ready(x) else None)(cluster.pod("steady")), 60, "steady ready")
    ip = p["status"]["podIP"]
    cluster.stop_apiserver()
    try:
        (trigger / "crash").touch()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            served = cluster.run_in(node, "busybox", "timeout", "5", "busybox", "wget", "-qO-", f"http://{ip}:8080/")
            assert served.returncode == 0 or not (trigger / "crash").exists(), "served while the API server is away"
            time.sleep(2)
    finally:
        cluster.start_apiserver()
    after = cluster.wait(lambda: (lambda x: x if state_of(x).get("restartCount") == 1 and ready(x) else None)(
        cluster.pod("steady")), 60, "the restart during the outage reported")
    assert state_of(after)["lastState"]["terminated"]["exitCode"] == 1
    delete(cluster, "pod", "steady")


def test_a_missing_image_backs_off_with_the_message_and_the_kubelet_keeps_serving(cluster):
    node = cluster.nodes[0]
    cluster.apply(pod("noimage", node, {"name": "c", "image": "nginx:1.27"}))
    cluster.apply(pod("other", node, {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}))

    def backing_off():
        waiting = state_of(cluster.pod("noimage")).get("state", {}).get("waiting", {})
        return waiting if waiting.get("reason") == "ImagePullBackOff" else None
    waiting = cluster.wait(backing_off, 60, "ImagePullBackOff")
    assert "nginx:1.27" in waiting["message"] and "ketch image import" in waiting["message"]
    cluster.wait(lambda: (cluster.pod("other") or {}).get("status", {}).get("phase") == "Running", 60)
    delete(cluster, "pod", "noimage", "other")


def test_specs_the_node_cannot_run_get_an_event_and_a_reason_and_the_host_is_unchanged(cluster):
    node = cluster.nodes[1]
    outside = cluster.work / "must-not-exist"
    cases = {
        "escape": ({"volumes": [{"name": "v", "hostPath": {"path": f"{cluster.work}/x/../must-not-exist",
                                                           "type": "DirectoryOrCreate"}}]}, {},
                   "must not contain '..'"),
        "subpath": ({"volumes": [{"name": "v", "emptyDir": {}}]},
                    {"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "../../etc"}]}, "must not contain"),
        "unknown": ({"volumes": [{"name": "v", "gitRepo": {"repository": "x"}}]}, {}, "gitRepo is not supported"),
        "limits": ({}, {"resources": {"limits": {"memory": "0"}}}, "must be greater than zero"),
    }
    for name, (spec, container, _) in cases.items():
        cluster.apply(pod(name, node, {"name": "c", "image": "busybox", "command": ["sleep", "3600"], **container},
                          **spec))
    for name, (_, _, message) in cases.items():
        def refused(n=name):
            waiting = state_of(cluster.pod(n)).get("state", {}).get("waiting", {})
            return waiting if waiting.get("reason") == "CreateContainerConfigError" else None
        waiting = cluster.wait(refused, 60, f"{name} refused")
        assert message in waiting["message"], (name, waiting)
        events = cluster.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o",
                                 "json").stdout
        assert any(e["type"] == "Warning" for e in json.loads(events)["items"]), name
    assert not outside.exists()
    cluster.apply(pod("huge", node, {"name": "c", "image": "busybox", "command": ["sleep", "1"],
                                     "resources": {"requests": {"memory": "1Ei"}}}))
    rejected = cluster.wait(lambda: (lambda x: x if (x or {}).get("status", {}).get("phase") == "Failed" else None)(
        cluster.pod("huge")), 60, "admission refusal")
    assert rejected["status"]["reason"] == "OutOfmemory"
    delete(cluster, "pod", *cases, "huge")


@pytest.fixture(scope="module")
def process_cluster(tmp_path_factory):
    missing = _runtime_missing()
    if missing:
        pytest.skip(missing)
    cluster = KubeletLab.create(tmp_path_factory.mktemp("kubelet-process"), workers=2, runtime="process")
    try:
        yield cluster
    finally:
        cluster.close()


def test_the_same_deployment_runs_on_the_process_runtime(process_cluster):
    check_deployment_runs_across_hosts(process_cluster, "web-process")
