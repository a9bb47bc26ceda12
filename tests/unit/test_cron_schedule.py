"""Cron schedules as CronJobs read them (robfig/cron's standard parser), with time zones."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from orchestrator.controllers.plans.cron import Schedule, ScheduleError

UTC = timezone.utc


def at(text: str, zone=UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.mark.parametrize("spec, after, expected", [
    ("* * * * *", "2026-01-01T00:00:30", "2026-01-01T00:01:00"),
    ("*/15 * * * *", "2026-01-01T00:14:00", "2026-01-01T00:15:00"),
    ("5 4 * * *", "2026-01-01T04:05:00", "2026-01-02T04:05:00"),
    ("0 0 1 */3 *", "2026-02-10T00:00:00", "2026-04-01T00:00:00"),
    ("0 12 * * mon-fri", "2026-01-02T12:00:00", "2026-01-05T12:00:00"),  # Friday -> Monday
    ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),        # the next leap day
    ("@hourly", "2026-01-01T10:59:59", "2026-01-01T11:00:00"),
    ("@weekly", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),           # Sunday
    ("0 0 13 * fri", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),      # both restricted: either matches
    ("0 0 */2 * fri", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),     # */2 is a restriction too
    ("0 0 * * fri", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),
    ("30 1 * JAN,feb sun", "2026-01-01T00:00:00", "2026-01-04T01:30:00"),
    ("0 9/6 * * *", "2026-01-01T10:00:00", "2026-01-01T15:00:00"),       # N/step: N to the maximum
])
def test_next_run(spec, after, expected):
    assert Schedule.parse(spec).next_after(at(after)) == at(expected)


@pytest.mark.parametrize("spec, message", [
    ("* * * *", "expected exactly 5 fields"),
    ("60 * * * *", "minute out of range"),
    ("* 24 * * *", "hour out of range"),
    ("* * 0 * *", "day of month out of range"),
    ("* * * * 7", "day of week out of range"),
    ("5-1 * * * *", "beyond end of range"),
    ("*/0 * * * *", "must be positive"),
    ("a * * * *", "failed to parse int"),
    ("@fortnightly", "unrecognized descriptor"),
    ("TZ=UTC 0 * * * *", "use timeZone field instead"),
    ("CRON_TZ=Europe/Paris 0 * * * *", "use timeZone field instead"),
    ("1,,2 * * * *", "empty value"),
])
def test_bad_schedules_are_refused_with_the_field_named(spec, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(spec)


def test_time_zone_moves_the_run_to_local_wall_clock():
    paris = ZoneInfo("Europe/Paris")
    # 09:00 in Paris in winter is 08:00 UTC
    assert Schedule.parse("0 9 * * *").next_after(at("2026-01-10T00:00:00"), paris) == at("2026-01-10T08:00:00")


def test_dst_gap_skips_the_missing_minute_and_repeated_hour_runs_once():
    berlin = ZoneInfo("Europe/Berlin")
    schedule = Schedule.parse("30 2 * * *")
    # 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00): the next run is a day later
    assert schedule.next_after(at("2026-03-28T12:00:00"), berlin) == at("2026-03-30T00:30:00")
    # 2026-10-25 02:30 happens twice: the run is once
    runs = schedule.times_between(at("2026-10-24T12:00:00"), at("2026-10-26T12:00:00"), berlin)
    assert runs == [at("2026-10-25T00:30:00"), at("2026-10-26T01:30:00")]


def test_times_between_is_bounded_and_last_at_or_before_finds_the_latest():
    schedule = Schedule.parse("* * * * *")
    runs = schedule.times_between(at("2026-01-01T00:00:00"), at("2026-01-02T00:00:00"), limit=101)
    assert len(runs) == 101 and runs[0] == at("2026-01-01T00:01:00")
    assert schedule.last_at_or_before(at("2026-01-02T00:00:30")) == at("2026-01-02T00:00:00")
    assert Schedule.parse("0 0 1 1 *").last_at_or_before(at("2026-06-01T00:00:00")) == at("2026-01-01T00:00:00")


def test_an_impossible_date_never_runs():
    assert Schedule.parse("0 0 30 2 *").next_after(at("2026-01-01T00:00:00")) is None
