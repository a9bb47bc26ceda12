"""The StatefulSet plan: ordered creation and removal, stable names and claims, partitioned updates."""

from orchestrator.api import timestamps
from orchestrator.controllers.plans.statefulset import REVISION_LABEL, plan, revision_name

NOW = 1_800_000_000.0
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "busybox"}]}}
CLAIM = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                "resources": {"requests": {"storage": "1Gi"}}}}


def sts(replicas=3, **spec) -> dict:
    return {"metadata": {"name": "web", "namespace": "default", "uid": "sts-1", "generation": 1},
            "spec": {"replicas": replicas, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                     "template": TEMPLATE, "volumeClaimTemplates": [CLAIM], **spec}}


def pod(ordinal: int, revision: str | None = None, ready=True, phase="Running", deleting=False) -> dict:
    meta = {"name": f"web-{ordinal}", "labels": {"app": "web", REVISION_LABEL: revision or revision_name(sts())}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": timestamps.format_epoch(NOW - 60)}]}}


def names(bodies: list[dict]) -> list[str]:
    return [b["metadata"]["name"] for b in bodies]


def test_ordered_ready_creates_one_pod_at_a_time_with_its_claim_first():
    first = plan(sts(), [], [], NOW)
    assert names(first.create) == ["web-0"]
    assert names(first.create_claims) == ["data-web-0", "data-web-1", "data-web-2"]
    body = first.create[0]
    assert body["spec"]["hostname"] == "web-0" and body["spec"]["subdomain"] == "web"
    assert body["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}]
    assert body["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert body["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "0"
    claims = [{"metadata": {"name": f"data-web-{i}"}} for i in range(3)]
    waiting = plan(sts(), [pod(0, ready=False)], claims, NOW)
    assert waiting.create == [] and waiting.create_claims == []
    assert names(plan(sts(), [pod(0)], claims, NOW).create) == ["web-1"]


def test_parallel_creates_every_missing_pod_at_once():
    assert names(plan(sts(podManagementPolicy="Parallel"), [], [], NOW).create) == ["web-0", "web-1", "web-2"]


def test_a_deleted_pod_comes_back_with_the_same_name_and_claim():
    result = plan(sts(), [pod(0), pod(2)], [{"metadata": {"name": f"data-web-{i}"}} for i in range(3)], NOW)
    assert names(result.create) == ["web-1"]
    assert result.create[0]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-web-1"


def test_scale_down_removes_the_highest_ordinal_one_at_a_time():
    pods = [pod(i) for i in range(5)]
    assert plan(sts(replicas=2), pods, [], NOW).delete == ["web-4"]
    pods[4] = pod(4, deleting=True)
    assert plan(sts(replicas=2), pods, [], NOW).delete == []
    assert sorted(plan(sts(replicas=2, podManagementPolicy="Parallel"), [pod(i) for i in range(5)], [], NOW).delete) \
        == ["web-2", "web-3", "web-4"]


def test_rolling_update_goes_from_the_top_one_at_a_time_and_respects_the_partition():
    old = [pod(i, revision="web-old") for i in range(3)]
    assert plan(sts(), old, [], NOW).delete == ["web-2"]
    rolling = [pod(0, "web-old"), pod(1, "web-old"), pod(2, ready=False)]
    assert plan(sts(), rolling, [], NOW).delete == []  # web-2 must be ready before web-1 goes
    partitioned = sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    done_above = [pod(0, "web-old"), pod(1, "web-old"), pod(2)]
    assert plan(partitioned, done_above, [], NOW).delete == []
    status = plan(partitioned, done_above, [], NOW).status
    assert status["updatedReplicas"] == 1 and status["updateRevision"] == revision_name(sts())


def test_status_counts_and_revisions():
    status = plan(sts(status={"currentRevision": "web-old"}), [pod(0), pod(1), pod(2, ready=False)], [], NOW).status
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (3, 2, 3)
    assert status["currentRevision"] == status["updateRevision"] == revision_name(sts())


def test_a_failed_pod_is_deleted_for_recreation():
    assert plan(sts(), [pod(0), pod(1, phase="Failed")], [], NOW).delete == ["web-1"]
