"""CronJob: which Job to start now, which to delete, what to say, and when to look again.

`plan(cronjob, jobs, now)` is pure: the CronJob object, the Jobs it controls (from the informer)
and the current instant in; a `CronPlan` out. It keeps the rules of Kubernetes' CronJob
controller (v2):
- the schedule is read in `spec.timeZone` (an IANA name; UTC when unset); an unknown zone or an
  unparseable schedule is a Warning event and nothing else;
- the run to start is the most recent scheduled time after `status.lastScheduleTime` (or the
  creation time), never more than one catch-up after an outage; past 100 missed times a
  `TooManyMissedTimes` warning says so; with `startingDeadlineSeconds`, a time older than the
  deadline is missed, not started;
- `concurrencyPolicy`: Allow starts regardless; Forbid skips while a Job is active; Replace
  deletes the active Jobs (in the background) and starts the new one;
- a Job is named `<cronjob>-<scheduled minutes since the epoch>`, so a retried create after a
  crash finds its own Job instead of starting a second;
- finished Jobs beyond `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit` (1) are
  deleted, oldest first; `suspend` stops new runs but not the bookkeeping.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.controllers.plans.cron import Schedule, ScheduleError
from orchestrator.controllers.plans.job import job_finished

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MISSED_WARNING_AFTER = 100


@dataclass
class CronPlan:
    create: dict | None = None                                  # a Job body to create
    delete: list[str] = field(default_factory=list)             # Job names, deleted in the background
    events: list[tuple[str, str, str]] = field(default_factory=list)   # (type, reason, message)
    status: dict = field(default_factory=dict)                  # the CronJob status to write
    requeue_after_s: float | None = None


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_name(cronjob: dict, scheduled: datetime) -> str:
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def plan(cronjob: dict, jobs: list[dict], now: datetime) -> CronPlan:
    spec, meta = cronjob.get("spec") or {}, cronjob["metadata"]
    result = CronPlan()
    status = copy.deepcopy(cronjob.get("status") or {})
    result.status = status
    zone_name = spec.get("timeZone")
    try:
        zone = ZoneInfo(zone_name) if zone_name else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        result.events.append(("Warning", "UnknownTimeZone", f"invalid timeZone: {zone_name!r}"))
        return result
    try:
        schedule = Schedule.parse(spec.get("schedule", ""))
    except ScheduleError as err:
        result.events.append(
            ("Warning", "UnparseableSchedule", f"unparseable schedule: {spec.get('schedule')!r} : {err}")
        )
        return result

    _reconcile_active(status, jobs, result)
    _trim_history(spec, jobs, result)
    if spec.get("suspend"):
        return result
    next_run = schedule.next_after(now, zone)
    result.requeue_after_s = None if next_run is None else max(0.0, (next_run - now).total_seconds())

    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(meta.get("creationTimestamp")) or now
    deadline_s = spec.get("startingDeadlineSeconds")
    if deadline_s is not None and earliest < now - timedelta(seconds=deadline_s):
        earliest = now - timedelta(seconds=deadline_s)
    missed = schedule.times_between(earliest, now, zone, limit=MISSED_WARNING_AFTER + 1)
    if not missed:
        return result
    if len(missed) > MISSED_WARNING_AFTER:
        result.events.append(
            (
                "Warning",
                "TooManyMissedTimes",
                f"too many missed start times: > {MISSED_WARNING_AFTER}. Set or decrease "
                ".spec.startingDeadlineSeconds or check clock skew",
            )
        )
    # at most one catch-up: the latest time missed, however many there were
    scheduled = schedule.last_at_or_before(now, zone) or missed[-1]
    if deadline_s is not None and scheduled + timedelta(seconds=deadline_s) < now:
        result.events.append(
            ("Warning", "MissSchedule", f"Missed scheduled time to start a job: {format_time(scheduled)}")
        )
        return result
    name = job_name(cronjob, scheduled)
    if any(j["metadata"]["name"] == name for j in jobs):
        return result  # started already (an earlier pass, perhaps by another leader)
    active = [ref["name"] for ref in status.get("active") or []]
    policy = spec.get("concurrencyPolicy", "Allow")
    if policy == "Forbid" and active:
        # not started; looked at again when the active Job finishes (the missed time may start
        # then, unless startingDeadlineSeconds has passed) or at the next time
        result.events.append(("Normal", "JobAlreadyActive",
                              "Not starting job because prior execution is running and concurrency policy is Forbid"))
        return result
    if policy == "Replace":
        for job in active:
            result.delete.append(job)
            result.events.append(("Normal", "SuccessfulDelete", f"Deleted job {job}"))
        status["active"] = []
    result.create = job_from_template(cronjob, name, scheduled, zone)
    result.events.append(("Normal", "SuccessfulCreate", f"Created job {name}"))
    status.setdefault("active", []).append(
        {"kind": "Job", "namespace": meta["namespace"], "name": name, "apiVersion": "batch/v1"}
    )
    status["lastScheduleTime"] = format_time(scheduled)
    return result


def _reconcile_active(status: dict, jobs: list[dict], result: CronPlan) -> None:
    """`status.active` lists exactly the unfinished Jobs; a finished one is seen once, as in Kubernetes."""
    by_name = {j["metadata"]["name"]: j for j in jobs}
    active = []
    for ref in status.get("active") or []:
        job = by_name.get(ref.get("name"))
        if job is None:
            result.events.append(("Normal", "MissingJob", f"Active job went missing: {ref.get('name')}"))
        elif job_finished(job):
            state = job_finished(job)
            result.events.append(("Normal", "SawCompletedJob", f"Saw completed job: {ref['name']}, condition: {state}"))
        else:
            active.append(ref)
    listed = {ref["name"] for ref in active}
    for job in jobs:
        if (
            not job_finished(job)
            and job["metadata"]["name"] not in listed
            and not job["metadata"].get("deletionTimestamp")
        ):
            meta = job["metadata"]
            active.append(
                {
                    "kind": "Job",
                    "namespace": meta.get("namespace"),
                    "name": meta["name"],
                    "uid": meta.get("uid"),
                    "apiVersion": "batch/v1",
                }
            )
    for job in jobs:
        if job_finished(job) == "Complete":
            finished = parse_time((job.get("status") or {}).get("completionTime"))
            last = parse_time(status.get("lastSuccessfulTime"))
            if finished and (last is None or finished > last):
                status["lastSuccessfulTime"] = format_time(finished)
    status["active"] = active
    if not active:
        status.pop("active")


def _trim_history(spec: dict, jobs: list[dict], result: CronPlan) -> None:
    for outcome, key, default in (
        ("Complete", "successfulJobsHistoryLimit", 3),
        ("Failed", "failedJobsHistoryLimit", 1),
    ):
        finished = sorted(
            (j for j in jobs if job_finished(j) == outcome and not j["metadata"].get("deletionTimestamp")),
            key=lambda j: (
                (j.get("status") or {}).get("startTime") or j["metadata"].get("creationTimestamp") or "",
                j["metadata"]["name"],
            ),
        )
        limit = spec.get(key, default)
        for job in finished[: max(0, len(finished) - limit)]:
            result.delete.append(job["metadata"]["name"])
            result.events.append(("Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}"))


def job_from_template(cronjob: dict, name: str, scheduled: datetime, zone) -> dict:
    template = copy.deepcopy((cronjob.get("spec") or {}).get("jobTemplate") or {})
    meta = template.get("metadata") or {}
    meta.update({"name": name, "namespace": cronjob["metadata"]["namespace"]})
    meta.setdefault("annotations", {})[SCHEDULED_AT] = scheduled.astimezone(zone).isoformat()
    meta["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": cronjob["metadata"]["name"],
            "uid": cronjob["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template.get("spec") or {}}
