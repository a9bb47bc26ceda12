"""Five-field cron schedules as CronJobs read them: minute hour day-of-month month day-of-week.

Rules kept (those of the cron library Kubernetes uses, robfig/cron v3, standard parser):
- each field is a comma list of `*`, `?` (as `*`), `N`, `A-B`, with an optional `/STEP`; a bare
  `N/STEP` means N through the field's maximum;
- months and weekdays also take names (`jan`..`dec`, `sun`..`sat`, any case); weekday 7 is not
  accepted (0 is Sunday), as in robfig;
- the descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`;
- day of month and day of week: when both are restricted, a day matching either runs (Vixie cron);
  when either is `*` (or `?`, or `*/1`), both must match;
- `TZ=` and `CRON_TZ=` prefixes are refused: Kubernetes wants `spec.timeZone` instead.

Times are timezone-aware datetimes; the schedule is evaluated in the zone given (DST gaps are
skipped and repeated hours run once, because the search walks wall-clock minutes and converts
each candidate back to an instant). No clock is read here: `now` is always an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

MONTHS = {name: i for i, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
WEEKDAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
# (name, min, max, names)
FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
          ("month", 1, 12, MONTHS), ("day of week", 0, 6, WEEKDAYS))
SEARCH_YEARS = 5  # robfig gives up after five years too (a schedule such as "0 0 30 2 *" never runs)


class ScheduleError(ValueError):
    """The schedule cannot be parsed; the message names the field, as kubectl shows it."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool       # day of month was unrestricted
    any_weekday: bool   # day of week was unrestricted

    @classmethod
    def parse(cls, text: str) -> Schedule:
        spec = (text or "").strip()
        if spec.upper().startswith(("TZ=", "CRON_TZ=")):
            raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
        spec = DESCRIPTORS.get(spec.lower(), spec)
        if spec.startswith("@"):
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        parts = spec.split()
        if len(parts) != 5:
            raise ScheduleError(f"expected exactly 5 fields, found {len(parts)}: {text}")
        parsed = [_parse_field(part, *field) for part, field in zip(parts, FIELDS, strict=True)]
        return cls(*(values for values, _ in parsed), any_day=parsed[2][1], any_weekday=parsed[4][1])

    def day_matches(self, moment: datetime) -> bool:
        in_month = moment.day in self.days
        in_week = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def matches(self, moment: datetime) -> bool:
        return (moment.minute in self.minutes and moment.hour in self.hours and moment.month in self.months
                and self.day_matches(moment))

    def next_after(self, after: datetime, zone: tzinfo = timezone.utc) -> datetime | None:
        """The first scheduled instant strictly after `after` (aware), in UTC; None if none within five years."""
        local = after.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        limit = local.replace(year=local.year + SEARCH_YEARS) if not (local.month == 2 and local.day == 29) \
            else local + timedelta(days=365 * SEARCH_YEARS)
        while local < limit:
            if local.month not in self.months:
                local = _first_of_next_month(local)
                continue
            if not self.day_matches(local):
                local = (local + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if local.hour not in self.hours:
                local = (local + timedelta(hours=1)).replace(minute=0)
                continue
            if local.minute not in self.minutes:
                local += timedelta(minutes=1)
                continue
            instant = _to_instant(local, zone)
            if instant is not None and instant > after:
                return instant
            local += timedelta(minutes=1)
        return None

    def last_at_or_before(self, moment: datetime, zone: tzinfo = timezone.utc) -> datetime | None:
        """The latest scheduled instant at or before `moment`, in UTC; None if none within five years."""
        local = moment.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
        limit = local - timedelta(days=366 * SEARCH_YEARS)
        while local > limit:
            if local.month not in self.months:
                local = local.replace(day=1, hour=0, minute=0) - timedelta(minutes=1)
                continue
            if not self.day_matches(local):
                local = local.replace(hour=0, minute=0) - timedelta(minutes=1)
                continue
            if local.hour not in self.hours:
                local = local.replace(minute=0) - timedelta(minutes=1)
                continue
            if local.minute not in self.minutes:
                local -= timedelta(minutes=1)
                continue
            instant = _to_instant(local, zone)
            if instant is not None and instant <= moment:
                return instant
            local -= timedelta(minutes=1)
        return None

    def times_between(self, start: datetime, end: datetime, zone: tzinfo = timezone.utc,
                      limit: int = 101) -> list[datetime]:
        """Scheduled instants t with start < t <= end, at most `limit` of them (oldest first)."""
        found: list[datetime] = []
        moment = self.next_after(start, zone)
        while moment is not None and moment <= end and len(found) < limit:
            found.append(moment)
            moment = self.next_after(moment, zone)
        return found


def _to_instant(local: datetime, zone: tzinfo) -> datetime | None:
    """A wall-clock minute as an instant; None in a DST gap (that minute does not exist)."""
    aware = local.replace(tzinfo=zone, fold=0)
    back = aware.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
    if back != local:
        return None
    return aware.astimezone(timezone.utc)


def _first_of_next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0)


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    unrestricted = False
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"empty value in {name} field: {text!r}")
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            step = _number(step_text, name, names={})
            if step <= 0:
                raise ScheduleError(f"step of {name} must be positive: {item!r}")
        if span in ("*", "?"):
            start, end = low, high
            unrestricted = unrestricted or step == 1
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, name, names), _number(last, name, names)
        else:
            start = _number(span, name, names)
            end = high if step_text else start
        if not low <= start <= high or not low <= end <= high:
            raise ScheduleError(f"{name} out of range ({low}-{high}): {item!r}")
        if start > end:
            raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}) in {name}: {item!r}")
        values.update(range(start, end + 1, step))
    return frozenset(values), unrestricted


def _number(text: str, name: str, names: dict[str, int]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ScheduleError(f"failed to parse int from {text!r} in {name} field")
    return int(text)
