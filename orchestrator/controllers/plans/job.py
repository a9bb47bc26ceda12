"""Job: the pods to create and delete, the finalizers to drop, and the status, from what is seen.

`plan(job, pods, now)` is pure (the Job, every pod it controls, the current time in epoch
seconds) and keeps the rules of Kubernetes' Job controller (batch/v1, 1.32):
- **Tracking with finalizers.** Every pod is created with `batch.kubernetes.io/job-tracking`.
  A finished pod is first recorded in `status.uncountedTerminatedPods` (status written first),
  then its finalizer is removed, and only then moved into `succeeded` / `failed`. Each step is
  safe to repeat after a crash, so no finished pod is counted twice or missed.
- `parallelism` (1), `completions` (unset: the first success ends the Job), `completionMode`
  Indexed (each index 0..completions-1 succeeds once; pods carry the index as the
  `batch.kubernetes.io/job-completion-index` annotation and label, `JOB_COMPLETION_INDEX` in the
  environment and hostname `<job>-<index>`).
- **Failures.** A pod in phase Failed, or deleted before it succeeded, is a failure. New pods
  wait an exponential back-off after failures since the last success (10 s doubling, capped at
  6 minutes). Past `backoffLimit` (6) failures the Job fails with `BackoffLimitExceeded`.
  `podFailurePolicy` rules match exit codes (In / NotIn, optional container) or pod
  conditions and act: FailJob (fail now, reason PodFailurePolicy), Ignore (not counted), Count.
- `activeDeadlineSeconds` from `status.startTime`: `DeadlineExceeded`. `suspend`: active pods
  are deleted, `Suspended` is True; resuming restarts `startTime` (and so the deadline).
- **Finishing in two steps**, as Kubernetes 1.31+: once the Job has succeeded (or must fail)
  it gets `SuccessCriteriaMet` (or `FailureTarget`) and its active pods are deleted; `Complete`
  (or `Failed`), `completionTime` and the event come only when every finished pod is counted,
  so a client that sees the final condition reads final `succeeded` / `failed` counters.
- A finished Job (Complete or Failed) creates nothing; its remaining active pods are deleted.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from orchestrator.api import timestamps

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 360.0


@dataclass
class JobPlan:
    create: list[dict] = field(default_factory=list)          # pod bodies
    delete: list[str] = field(default_factory=list)           # pod names
    remove_finalizer: list[str] = field(default_factory=list)  # pod names (after the status is written)
    status: dict = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after_s: float | None = None


def condition_true(job: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def job_finished(job: dict) -> str:
    """"Complete", "Failed" or "" (as the CronJob controller and `kubectl wait` read it)."""
    for kind in ("Complete", "Failed"):
        if condition_true(job, kind):
            return kind
    return ""


def pod_outcome(pod: dict) -> str:
    """"Succeeded", "Failed" or "" (still counts as active or terminating)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return phase
    if pod["metadata"].get("deletionTimestamp"):
        return "Failed"  # deleted before it succeeded: Kubernetes counts it as failed
    return ""


def pod_index(pod: dict) -> int | None:
    text = (pod["metadata"].get("annotations") or {}).get(INDEX_KEY)
    return int(text) if text is not None and text.isdigit() else None


def finish_time(pod: dict) -> float:
    """When a pod ended: its last container's finishedAt, else its deletion time, else its start."""
    ends = [timestamps.epoch(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            for c in (pod.get("status") or {}).get("containerStatuses") or []]
    ends = [e for e in ends if e is not None]
    if ends:
        return max(ends)
    return (timestamps.epoch(pod["metadata"].get("deletionTimestamp"))
            or timestamps.epoch((pod.get("status") or {}).get("startTime"))
            or timestamps.epoch(pod["metadata"].get("creationTimestamp")) or 0.0)


def parse_indexes(text: str | None) -> set[int]:
    """"1,3-5" -> {1, 3, 4, 5}: the format of status.completedIndexes."""
    found: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found


def format_indexes(indexes: set[int]) -> str:
    runs: list[str] = []
    ordered = sorted(indexes)
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        runs.append(str(ordered[start]) if start == end else f"{ordered[start]}-{ordered[end]}")
        start = end + 1
    return ",".join(runs)


def failure_rule(job: dict, pod: dict) -> tuple[str, str] | None:
    """The first matching podFailurePolicy rule's action and Kubernetes' message for it."""
    policy = (job.get("spec") or {}).get("podFailurePolicy") or {}
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    meta = pod["metadata"]
    for i, rule in enumerate(policy.get("rules") or []):
        codes = rule.get("onExitCodes")
        if codes:
            for status in statuses:
                if codes.get("containerName") and codes["containerName"] != status.get("name"):
                    continue
                code = ((status.get("state") or {}).get("terminated") or {}).get("exitCode")
                if code is None or code == 0:
                    continue
                inside = code in (codes.get("values") or [])
                if inside == (codes.get("operator", "In") == "In"):
                    return rule.get("action", "Count"), (
                        f"Container {status.get('name')} for pod {meta.get('namespace')}/{meta['name']} failed with "
                        f"exit code {code} matching {rule.get('action')} rule at index {i}")
        for wanted in rule.get("onPodConditions") or []:
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == wanted.get("type") and cond.get("status") == wanted.get("status", "True"):
                    return rule.get("action", "Count"), (
                        f"Pod {meta.get('namespace')}/{meta['name']} has condition {cond['type']} matching "
                        f"{rule.get('action')} rule at index {i}")
    return None


def _condition(kind: str, reason: str, message: str, now: float, status: str = "True") -> dict:
    stamp = timestamps.format_epoch(now)
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastProbeTime": stamp, "lastTransitionTime": stamp}


def _set_condition(status: dict, condition: dict) -> None:
    conditions = status.setdefault("conditions", [])
    for i, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            if existing.get("status") == condition["status"] and existing.get("reason") == condition["reason"]:
                return
            conditions[i] = condition
            return
    conditions.append(condition)


def plan(job: dict, pods: list[dict], now: float) -> JobPlan:
    spec = job.get("spec") or {}
    result = JobPlan(status=copy.deepcopy(job.get("status") or {}))
    status = result.status
    uncounted = status.setdefault("uncountedTerminatedPods", {})
    uncounted.setdefault("succeeded", [])
    uncounted.setdefault("failed", [])
    by_uid = {p["metadata"]["uid"]: p for p in pods}

    # 1. move recorded pods whose finalizer is gone into the counters
    for outcome, key in (("succeeded", "succeeded"), ("failed", "failed")):
        keep = []
        for uid in uncounted[outcome]:
            pod = by_uid.get(uid)
            if pod is None or TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
                index = pod_index(pod) if key == "succeeded" and pod is not None else None
                done = parse_indexes(status.get("completedIndexes"))
                if index in done:
                    continue  # a second success of an index already complete is not counted again
                status[key] = status.get(key, 0) + 1
                if index is not None:
                    status["completedIndexes"] = format_indexes(done | {index})
            else:
                keep.append(uid)
        uncounted[outcome] = keep

    # 2. record newly finished pods; their finalizers go once this status is written
    recorded = set(uncounted["succeeded"]) | set(uncounted["failed"])
    ignored_failures = 0
    fail_job: str | None = None
    for pod in pods:
        uid = pod["metadata"]["uid"]
        outcome = pod_outcome(pod)
        if not outcome or TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
            continue
        if uid not in recorded:
            rule = failure_rule(job, pod) if outcome == "Failed" else None
            if rule and rule[0] == "Ignore":
                ignored_failures += 1
                result.remove_finalizer.append(pod["metadata"]["name"])
                continue
            if rule and rule[0] == "FailJob":
                fail_job = rule[1]
            uncounted["succeeded" if outcome == "Succeeded" else "failed"].append(uid)
            recorded.add(uid)
        result.remove_finalizer.append(pod["metadata"]["name"])

    active = [p for p in pods if not pod_outcome(p)]
    terminating = [p for p in pods if p["metadata"].get("deletionTimestamp") and
                   (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    succeeded = status.get("succeeded", 0) + len(uncounted["succeeded"])
    failed = status.get("failed", 0) + len(uncounted["failed"])
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions")
    parallelism = spec.get("parallelism", 1)
    recorded_indexes = {pod_index(by_uid[uid]) for uid in uncounted["succeeded"] if uid in by_uid}
    done_indexes = parse_indexes(status.get("completedIndexes")) | (recorded_indexes - {None})
    if indexed:
        succeeded = len(done_indexes)

    status["active"] = len(active)
    status["ready"] = sum(1 for p in active if _pod_ready(p))
    status["terminating"] = len(terminating)
    for key in ("succeeded", "failed"):
        status.setdefault(key, 0)
    if not uncounted["succeeded"] and not uncounted["failed"]:
        status["uncountedTerminatedPods"] = {}

    if job_finished(job):
        result.delete = [p["metadata"]["name"] for p in active if not p["metadata"].get("deletionTimestamp")]
        return result

    # 3. suspension
    if spec.get("suspend"):
        result.delete = [p["metadata"]["name"] for p in active]
        if not condition_true(job, "Suspended"):
            _set_condition(status, _condition("Suspended", "JobSuspended", "Job suspended", now))
            result.events.append(("Normal", "Suspended", "Job suspended"))
        status.pop("startTime", None)
        return result
    if condition_true(job, "Suspended"):
        _set_condition(status, _condition("Suspended", "JobResumed", "Job resumed", now, status="False"))
        result.events.append(("Normal", "Resumed", "Job resumed"))
        status["startTime"] = timestamps.format_epoch(now)
    status.setdefault("startTime", timestamps.format_epoch(now))

    # 4. finished?
    failure = None
    target = next((c for c in (job.get("status") or {}).get("conditions") or []
                   if c.get("type") == "FailureTarget" and c.get("status") == "True"), None)
    if fail_job:
        failure = ("PodFailurePolicy", fail_job)
    elif target is not None:  # decided by an earlier reconcile, waiting for its pods to be counted
        failure = (target.get("reason", ""), target.get("message", ""))
    elif failed > spec.get("backoffLimit", 6):
        failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    else:
        deadline = spec.get("activeDeadlineSeconds")
        started = timestamps.epoch(status.get("startTime"))
        if deadline is not None and started is not None and now - started >= deadline:
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        elif deadline is not None and started is not None:
            result.requeue_after_s = started + deadline - now
    # The final condition waits until every finished pod is counted (uncountedTerminatedPods
    # empty), as Kubernetes' does: a client that sees Complete or Failed reads final counters.
    counted = not uncounted["succeeded"] and not uncounted["failed"]
    if failure:
        result.delete = [p["metadata"]["name"] for p in active]
        _set_condition(status, _condition("FailureTarget", failure[0], failure[1], now))
        if counted:
            _set_condition(status, _condition("Failed", failure[0], failure[1], now))
            result.events.append(("Warning", failure[0], failure[1]))
        return result
    complete = (succeeded >= completions) if completions is not None else (succeeded > 0 and not active)
    if complete:
        result.delete = [p["metadata"]["name"] for p in active]
        _set_condition(
            status,
            _condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", now),
        )
        if counted:
            _set_condition(
                status, _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", now)
            )
            status["completionTime"] = timestamps.format_epoch(now)
            result.events.append(("Normal", "Completed", "Job completed"))
        return result

    # 5. how many pods should run now
    _plan_pods(job, pods, active, done_indexes, succeeded, parallelism, completions, indexed, now, result)
    return result


def _pod_ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _plan_pods(job, pods, active, done_indexes, succeeded, parallelism, completions, indexed, now, result) -> None:
    if indexed:
        running = {pod_index(p) for p in active}
        pending = [i for i in range(completions or 0) if i not in done_indexes and i not in running]
        wanted = min(parallelism, len(pending) + len(active))
    elif completions is not None:
        pending = []
        wanted = min(parallelism, completions - succeeded)
    else:
        pending = []
        wanted = parallelism if succeeded == 0 else len(active)
    if len(active) > wanted:
        doomed = sorted(active, key=lambda p: (_pod_ready(p), p["metadata"].get("creationTimestamp") or ""))
        result.delete = [p["metadata"]["name"] for p in doomed[: len(active) - wanted]]
        return
    missing = wanted - len(active)
    if missing <= 0:
        return
    wait_s = backoff_remaining_s(pods, now)
    if wait_s > 0:
        result.requeue_after_s = min(wait_s, result.requeue_after_s or wait_s)
        return
    for n in range(missing):
        result.create.append(pod_from_template(job, pending[n] if indexed else None))


def backoff_remaining_s(pods: list[dict], now: float) -> float:
    """Seconds to wait before new pods: 10 s doubling per failure since the last success, capped at 6 min."""
    last_success = max((finish_time(p) for p in pods if pod_outcome(p) == "Succeeded"), default=0.0)
    failures = sorted(finish_time(p) for p in pods if pod_outcome(p) == "Failed" and finish_time(p) >= last_success)
    if not failures:
        return 0.0
    delay = min(BACKOFF_BASE_S * 2 ** (len(failures) - 1), BACKOFF_MAX_S)
    return max(0.0, failures[-1] + delay - now)


def pod_from_template(job: dict, index: int | None) -> dict:
    meta, spec = job["metadata"], job.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    pod_meta = template.get("metadata") or {}
    pod_spec = template.get("spec") or {}
    labels = pod_meta.setdefault("labels", {})
    labels.update(
        {CONTROLLER_UID: meta["uid"], JOB_NAME: meta["name"], "controller-uid": meta["uid"], "job-name": meta["name"]}
    )
    pod_meta["generateName"] = f"{meta['name']}-" if index is None else f"{meta['name']}-{index}-"
    pod_meta["namespace"] = meta["namespace"]
    pod_meta["finalizers"] = [TRACKING_FINALIZER]
    pod_meta["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    if index is not None:
        pod_meta.setdefault("annotations", {})[INDEX_KEY] = str(index)
        labels[INDEX_KEY] = str(index)
        pod_spec.setdefault("hostname", f"{meta['name']}-{index}")
        env = {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}},
        }
        for container in pod_spec.get("containers") or []:
            container.setdefault("env", []).insert(0, dict(env))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def ttl_expiry(job: dict) -> float | None:
    """When a finished Job with ttlSecondsAfterFinished may be deleted (epoch seconds), else None."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    outcome = job_finished(job)
    if ttl is None or not outcome:
        return None
    status = job.get("status") or {}
    finished = timestamps.epoch(status.get("completionTime"))
    if finished is None:
        finished = max(
            (
                timestamps.epoch(c.get("lastTransitionTime")) or 0.0
                for c in status.get("conditions") or []
                if c.get("type") == outcome
            ),
            default=0.0,
        )
    return finished + ttl
