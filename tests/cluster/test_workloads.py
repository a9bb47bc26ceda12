"""Workloads whose processes must finish, on real kubelets and runc (issue 14's "Must show"): a Job of
5 completions, 2 at a time, that fails twice first, finishes with back-off and `kubectl wait`
returning; an Indexed Job whose pods see their index."""

from __future__ import annotations

import re
import time

import pytest

from netproxy.podnet.layout import netns_name
from orchestrator.api import timestamps
from orchestrator.lab.hosts import lab_namespaces
from tests.cluster.conftest import left_behind
from tests.cluster.kubelet_lab import KubeletLab

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = KubeletLab.create(tmp_path_factory.mktemp("workloads-cluster"), workers=2, runtime="runc")
    try:
        # the CronJob of the last test needs minutes of its schedule: it starts with the module
        # and runs alongside the other tests
        cron_log = tmp_path_factory.mktemp("cron-shared")
        cluster.apply(ticker(str(cron_log)))
        cluster.cron_log = cron_log / "runs"
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(autouse=True)
def no_leftovers(cluster):
    """tests/cluster's check, but the CronJob's pods run across tests: a namespace left behind is
    a leak unless it belongs to a pod the cluster still has."""
    before = set(lab_namespaces())
    yield
    live = {netns_name(p["spec"]["nodeName"], p["metadata"]["uid"]) for p in cluster.json("get", "pods")["items"]
            if p["spec"].get("nodeName")}
    left = left_behind(before, live)
    assert not left, f"left behind: {left}"


def ticker(shared: str) -> dict:
    """Every minute, a run of 62 s (so each run is still going at the next minute), one at a time,
    no finished run kept: each run notes its start and end in a file every host sees."""
    run = 'echo "start $HOSTNAME" >> /shared/runs; sleep 62; echo "end $HOSTNAME" >> /shared/runs'
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "ticker"}, "spec": {
        "schedule": "* * * * *", "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 1,
        "jobTemplate": {"spec": job("unused", run, shared)["spec"] | {"backoffLimit": 0}}}}


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


def burner(until_epoch: float) -> dict:
    """A Deployment whose pods burn CPU (limited to 200m, requesting 50m) until a wall-clock time,
    then idle: the load stops for the pods the autoscaler adds too."""
    script = f"while [ $(date +%s) -lt {int(until_epoch)} ]; do :; done; exec sleep 3600"
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "burner"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "burner"}},
        "template": {"metadata": {"labels": {"app": "burner"}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "burn", "image": "busybox", "command": ["sh", "-c", script],
                            "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "200m"}}}]}}}}


def test_an_autoscaler_scales_a_cpu_burner_up_and_back_down_after_the_load_stops(cluster):
    """Issue 14: `kubectl autoscale` on a Deployment using 4x its CPU request scales it to the
    maximum; once its pods go idle it comes back to the minimum (scale-down window set to 0 s
    in the HPA's behavior; the controller manager syncs every 5 s here, Kubernetes' default 15 s)."""
    load_ends = time.time() + 45
    cluster.apply(burner(load_ends))
    cluster.kubectl("autoscale", "deployment", "burner", "--cpu-percent=50", "--min=1", "--max=3")
    cluster.kubectl("patch", "hpa", "burner", "--type=merge",
                    "-p", '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":0}}}}')

    def replicas() -> int:
        return cluster.json("get", "deployment", "burner")["spec"]["replicas"]
    cluster.wait(lambda: replicas() == 3, max(5.0, load_ends - time.time()), "scaled up to 3 under load")
    targets = cluster.kubectl("get", "hpa", "burner").stdout.splitlines()
    used = re.search(r"cpu: (\d+)%/50%", targets[1])
    assert used and int(used.group(1)) > 50, targets

    cluster.wait(lambda: replicas() == 1, (load_ends - time.time()) + 60, "scaled back to 1 once idle")
    events = cluster.json("get", "events", "--field-selector", "involvedObject.name=burner")["items"]
    rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
    assert {"New size: 3;", "New size: 1;"} <= {m.split(" reason")[0] for m in rescales}, rescales
    cluster.kubectl("delete", "hpa,deployment", "burner", "--wait=false")


def test_a_cronjob_with_forbid_runs_one_at_a_time_on_its_schedule_and_keeps_no_finished_run(cluster):
    """Issue 14: a CronJob every minute whose runs last longer than a minute: the next minute is
    skipped while a run is active (JobAlreadyActive), runs never overlap, and the finished run is
    deleted (successfulJobsHistoryLimit 0). Driven by the schedule: the CronJob was created with
    the module's lab, minutes ago by the time this test runs."""
    def reasons() -> list[str]:
        events = cluster.json("get", "events", "--field-selector", "involvedObject.name=ticker")["items"]
        return [e["reason"] for e in events for _ in range(e.get("count") or 1)]

    def enough() -> list[str] | None:
        seen = reasons()
        return seen if (seen.count("SuccessfulCreate") >= 2 and "JobAlreadyActive" in seen
                        and "SuccessfulDelete" in seen) else None
    cluster.wait(enough, 240, "two runs, a skipped minute and a deleted finished run", interval_s=2)
    runs = cluster.cron_log.read_text().split("\n")
    marks = [line.split() for line in runs if line]
    # one at a time: every start is followed by that run's end before the next start
    for earlier, later in zip(marks, marks[1:], strict=False):
        if earlier[0] == "start":
            assert later == ["end", earlier[1]], marks
    assert [m[0] for m in marks].count("end") >= 1, marks
    jobs = [j for j in cluster.json("get", "jobs")["items"]
            if any(ref["kind"] == "CronJob" and ref["name"] == "ticker" for ref in j["metadata"].get("ownerReferences")
                   or [])]
    assert len(jobs) <= 1, [j["metadata"]["name"] for j in jobs]
    finished = [j for j in jobs if any(c["type"] == "Complete" for c in j.get("status", {}).get("conditions") or [])]
    assert not finished, [j["metadata"]["name"] for j in finished]  # history limit 0: no finished run kept
    listing = cluster.kubectl("get", "cronjob", "ticker").stdout.splitlines()
    assert listing[1].split()[1:6] == ["*", "*", "*", "*", "*"], listing
    cluster.kubectl("delete", "cronjob", "ticker", "--wait=true", timeout=120)
