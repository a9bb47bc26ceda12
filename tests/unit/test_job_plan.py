"""The Job plan: counting through finalizers, parallelism, indexes, back-off, failure policy, suspend."""

from orchestrator.api import timestamps
from orchestrator.controllers.plans.job import (
    INDEX_KEY,
    TRACKING_FINALIZER,
    backoff_remaining_s,
    format_indexes,
    parse_indexes,
    plan,
    ttl_expiry,
)

NOW = 1_800_000_000.0


def job(**spec) -> dict:
    status = spec.pop("status", {})
    return {"metadata": {"name": "pi", "namespace": "default", "uid": "job-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}, **spec},
            "status": status}


def pod(name: str, phase: str = "Running", *, finalizer: bool = True, index: int | None = None,
        exit_code: int | None = None, ended: float = NOW - 100, ready: bool = True, deleted: bool = False) -> dict:
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}",
            "finalizers": [TRACKING_FINALIZER] if finalizer else []}
    if index is not None:
        meta["annotations"] = {INDEX_KEY: str(index)}
    if deleted:
        meta["deletionTimestamp"] = timestamps.format_epoch(ended)
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if exit_code is not None or phase in ("Succeeded", "Failed"):
        code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
        status["containerStatuses"] = [{"name": "main", "state": {"terminated": {
            "exitCode": code, "finishedAt": timestamps.format_epoch(ended)}}}]
    return {"metadata": meta, "status": status}


def test_a_new_job_starts_parallelism_pods_with_tracking_finalizer_and_labels():
    result = plan(job(completions=5, parallelism=2), [], NOW)
    assert len(result.create) == 2
    body = result.create[0]
    assert body["metadata"]["finalizers"] == [TRACKING_FINALIZER]
    assert body["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"
    assert body["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert result.status["startTime"] == timestamps.format_epoch(NOW)


def test_finished_pod_is_recorded_then_finalizer_removed_then_counted_once():
    running = job(completions=3)
    done = pod("a", "Succeeded")
    first = plan(running, [done], NOW)
    assert first.status["uncountedTerminatedPods"]["succeeded"] == ["uid-a"]
    assert first.status["succeeded"] == 0 and first.remove_finalizer == ["a"]
    # a crash before the finalizer went: the same pass again records nothing twice
    again = plan(job(completions=3, status=first.status), [done], NOW)
    assert again.status["uncountedTerminatedPods"]["succeeded"] == ["uid-a"] and again.remove_finalizer == ["a"]
    # the finalizer is gone: counted, and the uncounted list empties
    released = pod("a", "Succeeded", finalizer=False)
    second = plan(job(completions=3, status=first.status), [released], NOW)
    assert second.status["succeeded"] == 1 and second.status["uncountedTerminatedPods"] == {}
    # and again: still one
    third = plan(job(completions=3, status=second.status), [released], NOW)
    assert third.status["succeeded"] == 1


def test_completes_when_completions_are_reached():
    status = {"succeeded": 4, "startTime": timestamps.format_epoch(NOW - 50)}
    result = plan(job(completions=5, parallelism=2, status=status), [pod("e", "Succeeded", finalizer=False),
                                                                     pod("f")], NOW)
    # e had been recorded? no: without finalizer and not uncounted it is not counted again
    assert result.status["succeeded"] == 4 and not any(
        c["type"] == "Complete" for c in result.status.get("conditions", [])
    )
    recorded = dict(status, uncountedTerminatedPods={"succeeded": ["uid-e"], "failed": []})
    done = plan(
        job(completions=5, parallelism=2, status=recorded), [pod("e", "Succeeded", finalizer=False), pod("f")], NOW
    )
    kinds = {c["type"]: c for c in done.status["conditions"]}
    assert kinds["Complete"]["status"] == "True" and done.status["succeeded"] == 5
    assert done.delete == ["f"] and done.status["completionTime"] == timestamps.format_epoch(NOW)


def test_failures_back_off_exponentially_since_the_last_success():
    one = [pod("x", "Failed", ended=NOW - 5)]
    assert backoff_remaining_s(one, NOW) == 5  # 10 s after one failure
    three = [pod(n, "Failed", ended=NOW - 5) for n in "xyz"]
    assert backoff_remaining_s(three, NOW) == 35  # 40 s after three
    after_success = three + [pod("s", "Succeeded", ended=NOW - 3), pod("w", "Failed", ended=NOW - 2)]
    assert backoff_remaining_s(after_success, NOW) == 8  # the count restarts after a success
    many = [pod(f"f{i}", "Failed", ended=NOW) for i in range(20)]
    assert backoff_remaining_s(many, NOW) == 360
    result = plan(job(completions=2, backoffLimit=10), one, NOW)
    assert result.create == [] and result.requeue_after_s == 5


def counted(spec: dict, pods: list[dict]):
    """Two reconciles: the first records the finished pods (their finalizers then go), the second
    counts them, and only then may a Job get its final condition."""
    first = plan(job(**spec), pods, NOW)
    assert not any(c["type"] in ("Complete", "Failed") for c in first.status.get("conditions", [])), \
        "a final condition before every finished pod is counted"
    after = [pod_without_finalizer(p) if p["metadata"]["name"] in first.remove_finalizer else p for p in pods]
    return first, plan(job(**{**spec, "status": first.status}), after, NOW)


def pod_without_finalizer(p: dict) -> dict:
    return {**p, "metadata": {**p["metadata"], "finalizers": []}}


def test_complete_waits_until_every_succeeded_pod_is_counted():
    first, second = counted({"completions": 2, "status": {"succeeded": 1}}, [pod("s", "Succeeded")])
    assert any(c["type"] == "SuccessCriteriaMet" for c in first.status["conditions"])
    assert first.status["succeeded"] == 1 and first.status["uncountedTerminatedPods"]["succeeded"] == ["uid-s"]
    assert second.status["succeeded"] == 2 and second.status["uncountedTerminatedPods"] == {}
    assert any(c["type"] == "Complete" for c in second.status["conditions"]) and "completionTime" in second.status


def test_backoff_limit_fails_the_job_and_deletes_active_pods():
    status = {"failed": 2}
    first, result = counted({"completions": 5, "backoffLimit": 2, "status": status}, [pod("x", "Failed"), pod("r")])
    assert first.delete == ["r"] and any(c["type"] == "FailureTarget" for c in first.status["conditions"])
    assert result.status["failed"] == 3
    failed = next(c for c in result.status["conditions"] if c["type"] == "Failed")
    assert (
        failed["reason"] == "BackoffLimitExceeded"
        and failed["message"] == "Job has reached the specified backoff limit"
    )
    assert result.delete == ["r"] and result.create == []


def test_a_deleted_pod_counts_as_failed():
    result = plan(job(completions=1), [pod("d", deleted=True)], NOW)
    assert result.status["uncountedTerminatedPods"]["failed"] == ["uid-d"]


def test_pod_failure_policy_fail_job_and_ignore():
    policy = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}},
        ]
    }
    _, fatal = counted({"completions": 3, "podFailurePolicy": policy}, [pod("p", "Failed", exit_code=42)])
    failed = next(c for c in fatal.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "failed with exit code 42 matching FailJob rule at index 0" in failed["message"]
    ignored = plan(job(completions=3, backoffLimit=0, podFailurePolicy=policy), [pod("q", "Failed", exit_code=7)], NOW)
    assert ignored.status["failed"] == 0 and ignored.remove_finalizer == ["q"]
    assert not any(c["type"] == "Failed" for c in ignored.status.get("conditions", []))


def test_active_deadline_fails_the_job():
    status = {"startTime": timestamps.format_epoch(NOW - 61)}
    result = plan(job(completions=3, activeDeadlineSeconds=60, status=status), [pod("r")], NOW)
    assert next(c for c in result.status["conditions"] if c["type"] == "Failed")["reason"] == "DeadlineExceeded"
    waiting = plan(
        job(completions=3, activeDeadlineSeconds=60, status={"startTime": timestamps.format_epoch(NOW - 10)}),
        [pod("r")],
        NOW,
    )
    assert waiting.requeue_after_s == 50


def test_indexed_job_runs_each_index_once_with_its_index():
    status = {"completedIndexes": "0", "succeeded": 1}
    result = plan(
        job(completions=4, parallelism=2, completionMode="Indexed", status=status),
        [pod("pi-1", index=1), pod("pi-2", "Succeeded", index=2)],
        NOW,
    )
    created = result.create
    assert [c["metadata"]["annotations"][INDEX_KEY] for c in created] == ["3"]
    body = created[0]
    assert body["spec"]["hostname"] == "pi-3" and body["metadata"]["generateName"] == "pi-3-"
    assert body["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
    # index 2 counts once its finalizer is gone
    later = plan(
        job(completions=4, parallelism=2, completionMode="Indexed", status=result.status),
        [pod("pi-1", index=1), pod("pi-2", "Succeeded", index=2, finalizer=False)],
        NOW,
    )
    assert parse_indexes(later.status["completedIndexes"]) == {0, 2}


def test_a_second_success_of_a_completed_index_is_not_counted_again():
    status = {"completedIndexes": "0", "succeeded": 1,
              "uncountedTerminatedPods": {"succeeded": ["uid-pi-0b"], "failed": []}}
    result = plan(job(completions=2, parallelism=2, completionMode="Indexed", status=status),
                  [pod("pi-0b", "Succeeded", index=0, finalizer=False)], NOW)
    assert result.status["succeeded"] == 1 and result.status["completedIndexes"] == "0"


def test_suspend_deletes_active_pods_and_resume_restarts_the_clock():
    suspended = plan(job(completions=2, suspend=True, status={"startTime": "x"}), [pod("r")], NOW)
    assert suspended.delete == ["r"] and "startTime" not in suspended.status
    assert next(c for c in suspended.status["conditions"] if c["type"] == "Suspended")["status"] == "True"
    resumed = plan(job(completions=2, status=suspended.status), [], NOW + 30)
    cond = next(c for c in resumed.status["conditions"] if c["type"] == "Suspended")
    assert cond["status"] == "False" and cond["reason"] == "JobResumed"
    assert resumed.status["startTime"] == timestamps.format_epoch(NOW + 30) and len(resumed.create) == 1


def test_work_queue_job_without_completions_ends_on_first_success_when_none_active():
    result = plan(
        job(parallelism=3, status={"uncountedTerminatedPods": {"succeeded": ["uid-a"], "failed": []}}),
        [pod("a", "Succeeded", finalizer=False)],
        NOW,
    )
    assert any(c["type"] == "Complete" for c in result.status["conditions"])
    still = plan(job(parallelism=3, status={"succeeded": 1}), [pod("b")], NOW)
    assert still.create == [] and not still.status.get("conditions")


def test_lower_parallelism_deletes_the_excess():
    result = plan(job(completions=10, parallelism=1), [pod("a"), pod("b", ready=False)], NOW)
    assert result.delete == ["b"]


def test_index_ranges_round_trip():
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert format_indexes(set()) == ""


def test_ttl_after_finished():
    finished = job(
        ttlSecondsAfterFinished=30,
        status={"conditions": [{"type": "Complete", "status": "True"}], "completionTime": timestamps.format_epoch(NOW)},
    )
    assert ttl_expiry(finished) == NOW + 30
    assert ttl_expiry(job(ttlSecondsAfterFinished=30)) is None
