"""Workloads whose processes must finish, on real kubelets and runc (issue 14's "Must show"): a Job of
5 completions, 2 at a time, that fails twice first, finishes with back-off and `kubectl wait`
returning; an Indexed Job whose pods see their index."""

from __future__ import annotations

import pytest

from orchestrator.api import timestamps
from tests.cluster.kubelet_lab import KubeletLab

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = KubeletLab.create(tmp_path_factory.mktemp("workloads-cluster"), workers=2, runtime="runc")
    try:
        yield cluster
    finally:
        cluster.close()


def job(name: str, script: str, shared: str = "/tmp", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        **spec, "template": {"spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "work", "image": "busybox", "command": ["sh", "-c", script],
                            "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}],
            "volumes": [{"name": "shared", "hostPath": {"path": shared, "type": "Directory"}}],
        }}}}


def test_a_job_of_5_completions_2_at_a_time_backs_off_after_failures_and_completes(cluster, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    # every host sees the same directory: the first two pods find fewer than 2 marks and fail, later ones succeed
    script = 'n=$(ls /shared | wc -l); touch /shared/$HOSTNAME; [ "$n" -ge 2 ]'
    cluster.apply(job("batch", script, completions=5, parallelism=2, backoffLimit=6, shared=str(shared)))
    waited = cluster.kubectl("wait", "--for=condition=complete", "job/batch", "--timeout=180s", timeout=200)
    assert "job.batch/batch condition met" in waited.stdout

    status = cluster.json("get", "job", "batch")["status"]
    # at least the two planned failures (a pod the controller removes as surplus counts as failed too)
    assert status["succeeded"] == 5 and status["failed"] >= 2 and status.get("active", 0) == 0, status
    assert not status.get("uncountedTerminatedPods", {}).get("succeeded")
    listing = cluster.kubectl("get", "jobs", "batch").stdout
    assert "5/5" in listing.splitlines()[1], listing
    pods = cluster.pods("batch.kubernetes.io/job-name=batch")
    timeline = sorted((p["metadata"]["creationTimestamp"], p["metadata"]["name"], p["status"]["phase"],
                       p["status"]["containerStatuses"][0]["state"].get("terminated", {}).get("finishedAt"))
                      for p in pods)
    phases = [p["status"]["phase"] for p in pods]
    assert phases.count("Succeeded") == 5 and phases.count("Failed") >= 1, timeline
    # back-off: no pod after the first failure was created before 10 s had passed since it ended
    failed_at = min(timestamps.epoch(finished) for _, _, phase, finished in timeline if phase == "Failed")
    later = [timestamps.epoch(created) for created, _, phase, _ in timeline if phase == "Succeeded"]
    assert min(later) - failed_at >= 9, timeline  # creationTimestamp has whole seconds
    assert all(not p["metadata"].get("finalizers") for p in pods), "tracking finalizers stay on finished pods"
    cluster.kubectl("delete", "job", "batch", "--wait=true", timeout=120)


def test_an_indexed_job_gives_each_pod_its_index_and_hostname(cluster):
    cluster.apply(job("indexed", 'echo "index=$JOB_COMPLETION_INDEX host=$(hostname)"', completions=3,
                      parallelism=3, completionMode="Indexed"))
    cluster.kubectl("wait", "--for=condition=complete", "job/indexed", "--timeout=120s", timeout=140)
    status = cluster.json("get", "job", "indexed")["status"]
    assert status["succeeded"] == 3 and status.get("completedIndexes") == "0-2", status
    seen = {}
    for pod in cluster.pods("batch.kubernetes.io/job-name=indexed"):
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        seen[index] = cluster.kubectl("logs", pod["metadata"]["name"]).stdout.strip()
    assert seen == {str(i): f"index={i} host=indexed-{i}" for i in range(3)}, seen
    cluster.kubectl("delete", "job", "indexed", "--wait=true", timeout=120)


STORE = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "store"}, "spec": {
    "serviceName": "store", "replicas": 2, "selector": {"matchLabels": {"app": "store"}},
    "template": {"metadata": {"labels": {"app": "store"}}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "store", "image": "busybox", "command": [
            "sh", "-c", "cat /data/log 2>/dev/null; hostname >> /data/log; exec sleep 3600"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}}]}}


def test_a_statefulset_pod_comes_back_with_its_claim_and_the_file_it_wrote(cluster):
    classes = cluster.kubectl("get", "storageclass").stdout
    assert "local-path (default)" in classes and "WaitForFirstConsumer" in classes, classes
    cluster.kubectl("create", "service", "clusterip", "store", "--clusterip=None", "--tcp=80:80")
    cluster.apply(STORE)
    cluster.kubectl("rollout", "status", "sts/store", "--timeout=120s", timeout=150)
    claims = {c["metadata"]["name"]: c for c in cluster.json("get", "pvc")["items"]}
    assert sorted(claims) == ["data-store-0", "data-store-1"]
    assert all(c["status"]["phase"] == "Bound" for c in claims.values()), claims
    volumes = cluster.kubectl("get", "pv").stdout
    assert volumes.count("local-path") == 2 and "default/data-store-1" in volumes, volumes

    before = cluster.pod("store-1")
    cluster.kubectl("delete", "pod", "store-1", "--wait=false")  # kubernetes#135562: see tests/control
    after = cluster.wait(lambda: (lambda p: p if p and p["metadata"]["uid"] != before["metadata"]["uid"]
                                  and p["status"].get("phase") == "Running" else None)(cluster.pod("store-1")), 90,
                         "store-1 back and Running")
    assert after["spec"]["nodeName"] == before["spec"]["nodeName"]  # its volume lives on that node
    assert next(v["persistentVolumeClaim"]["claimName"] for v in after["spec"]["volumes"]
                if v["name"] == "data") == "data-store-1"
    logs = cluster.wait(lambda: cluster.kubectl("logs", "store-1").stdout.split(), 30, "store-1's log")
    assert logs == ["store-1"], logs  # the line the first store-1 wrote, read back from the claim
    names = sorted(p["metadata"]["name"] for p in cluster.pods("app=store"))
    assert names == ["store-0", "store-1"]

    cluster.kubectl("delete", "sts", "store", "--wait=true", timeout=120)
    cluster.wait(lambda: not cluster.pods("app=store"), 60, "the set's pods gone")
    cluster.kubectl("delete", "pvc", "data-store-0", "data-store-1", "--wait=true", timeout=60)
    # reclaimPolicy Delete: the provisioner removes each directory (a helper pod) and then the volume
    cluster.wait(lambda: not cluster.json("get", "pv")["items"], 120, "the released volumes deleted")
    assert not list((cluster.work / "local-path").glob("pvc-*"))
