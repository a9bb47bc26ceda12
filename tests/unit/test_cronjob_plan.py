"""The CronJob plan: which Job starts when, concurrency policies, missed runs, history limits."""

from datetime import datetime, timedelta, timezone

from orchestrator.controllers.plans.cronjob import SCHEDULED_AT, job_name, plan

UTC = timezone.utc
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cronjob(schedule="* * * * *", **spec) -> dict:
    status = spec.pop("status", {})
    return {"metadata": {"name": "tick", "namespace": "default", "uid": "cj-1", "creationTimestamp": stamp(T0)},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}},
                     **spec},
            "status": status}


def job(name: str, outcome: str = "", started: datetime = T0, completed: datetime | None = None) -> dict:
    conditions = [{"type": outcome, "status": "True"}] if outcome else []
    status = {"conditions": conditions, "startTime": stamp(started)}
    if completed:
        status["completionTime"] = stamp(completed)
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}, "status": status}


def test_nothing_before_the_first_scheduled_time_then_one_job_named_after_it():
    early = plan(cronjob(), [], T0 + timedelta(seconds=30))
    assert early.create is None and early.requeue_after_s == 30
    due = plan(cronjob(), [], T0 + timedelta(minutes=1, seconds=2))
    assert due.create["metadata"]["name"] == f"tick-{int((T0 + timedelta(minutes=1)).timestamp()) // 60}"
    assert due.create["metadata"]["ownerReferences"][0]["uid"] == "cj-1"
    assert due.create["metadata"]["annotations"][SCHEDULED_AT].startswith("2026-01-01T12:01:00")
    assert due.status["lastScheduleTime"] == "2026-01-01T12:01:00Z"
    assert [r["name"] for r in due.status["active"]] == [due.create["metadata"]["name"]]
    assert ("Normal", "SuccessfulCreate", f"Created job {due.create['metadata']['name']}") in due.events


def test_a_job_already_created_for_that_time_is_not_created_again():
    now = T0 + timedelta(minutes=1, seconds=5)
    existing = job(job_name(cronjob(), T0 + timedelta(minutes=1)))
    assert plan(cronjob(), [existing], now).create is None


def test_forbid_skips_while_a_job_is_active_and_allow_does_not():
    running = job("tick-old")
    active = {"active": [{"name": "tick-old"}], "lastScheduleTime": stamp(T0)}
    now = T0 + timedelta(minutes=1, seconds=1)
    forbidden = plan(cronjob(concurrencyPolicy="Forbid", status=active), [running], now)
    assert forbidden.create is None
    assert [reason for _, reason, _ in forbidden.events] == ["JobAlreadyActive"]
    assert plan(cronjob(concurrencyPolicy="Allow", status=active), [running], now).create is not None


def test_replace_deletes_the_active_job_and_starts_the_new_one():
    result = plan(cronjob(concurrencyPolicy="Replace", status={"active": [{"name": "tick-old"}],
                                                                "lastScheduleTime": stamp(T0)}),
                  [job("tick-old")], T0 + timedelta(minutes=1, seconds=1))
    assert result.delete == ["tick-old"] and result.create is not None
    assert [r["name"] for r in result.status["active"]] == [result.create["metadata"]["name"]]


def test_after_an_outage_only_the_latest_missed_run_starts():
    result = plan(cronjob(status={"lastScheduleTime": stamp(T0)}), [], T0 + timedelta(minutes=30, seconds=10))
    assert result.status["lastScheduleTime"] == stamp(T0 + timedelta(minutes=30))
    assert result.create is not None and not [e for e in result.events if e[1] == "TooManyMissedTimes"]


def test_more_than_100_missed_runs_warn_and_still_start_one():
    result = plan(cronjob(status={"lastScheduleTime": stamp(T0)}), [], T0 + timedelta(hours=5, seconds=3))
    assert any(e[1] == "TooManyMissedTimes" for e in result.events)
    assert result.status["lastScheduleTime"] == stamp(T0 + timedelta(hours=5))


def test_starting_deadline_turns_a_late_run_into_a_miss():
    # the controller was down from 12:00:30 to 12:01:50; the 12:01 run is 50 s late with a 30 s deadline
    result = plan(cronjob(startingDeadlineSeconds=30, status={"lastScheduleTime": stamp(T0)}), [],
                  T0 + timedelta(minutes=1, seconds=50))
    assert result.create is None
    # and the deadline window also bounds the missed-run count: no warning for a long outage
    long = plan(cronjob(startingDeadlineSeconds=200, status={"lastScheduleTime": stamp(T0)}), [],
                T0 + timedelta(hours=5, seconds=10))
    assert long.create is not None and not any(e[1] == "TooManyMissedTimes" for e in long.events)


def test_suspend_starts_nothing_but_still_notices_finished_jobs():
    done = job("tick-1", "Complete", completed=T0 + timedelta(seconds=20))
    result = plan(cronjob(suspend=True, status={"active": [{"name": "tick-1"}]}), [done], T0 + timedelta(hours=1))
    assert result.create is None and "active" not in result.status
    assert result.status["lastSuccessfulTime"] == stamp(T0 + timedelta(seconds=20))
    assert any(e[1] == "SawCompletedJob" for e in result.events)


def test_history_limits_delete_the_oldest_finished_jobs():
    jobs = [job(f"ok-{i}", "Complete", started=T0 + timedelta(minutes=i)) for i in range(5)]
    jobs += [job(f"bad-{i}", "Failed", started=T0 + timedelta(minutes=i)) for i in range(3)]
    result = plan(cronjob(suspend=True), jobs, T0 + timedelta(hours=1))
    assert sorted(result.delete) == ["bad-0", "bad-1", "ok-0", "ok-1"]
    custom = plan(cronjob(suspend=True, successfulJobsHistoryLimit=0, failedJobsHistoryLimit=3), jobs,
                  T0 + timedelta(hours=1))
    assert sorted(custom.delete) == [f"ok-{i}" for i in range(5)]


def test_a_running_job_not_listed_is_adopted_into_active_and_a_vanished_one_dropped():
    result = plan(cronjob(suspend=True, status={"active": [{"name": "gone"}]}), [job("tick-7")], T0)
    assert [r["name"] for r in result.status["active"]] == ["tick-7"]
    assert any(e[1] == "MissingJob" for e in result.events)


def test_bad_zone_or_schedule_is_a_warning_event_only():
    zone = plan(cronjob(timeZone="Mars/Olympus"), [], T0 + timedelta(minutes=5))
    assert zone.create is None and zone.events[0][1] == "UnknownTimeZone"
    bad = plan(cronjob("61 * * * *"), [], T0 + timedelta(minutes=5))
    assert bad.create is None and bad.events[0][1] == "UnparseableSchedule"


def test_time_zone_applies_to_the_schedule():
    # "0 9 * * *" in Tokyo is 00:00 UTC
    result = plan(cronjob("0 9 * * *", timeZone="Asia/Tokyo",
                          status={"lastScheduleTime": "2026-01-01T00:00:00Z"}), [],
                  datetime(2026, 1, 2, 0, 0, 5, tzinfo=UTC))
    assert result.status["lastScheduleTime"] == "2026-01-02T00:00:00Z"
    assert result.create["metadata"]["annotations"][SCHEDULED_AT] == "2026-01-02T09:00:00+09:00"
