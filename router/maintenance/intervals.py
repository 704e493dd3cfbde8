"""Recurring time intervals in the shape of Alertmanager's `time_intervals`, and when they end.

A `TimeInterval` holds when each of its fields holds (a field left out always holds); a field holds
when any of its ranges holds. The fields and their syntax are Alertmanager's
(`timeinterval/timeinterval.go`), so an interval copied from an Alertmanager configuration means
the same here:

- `times`: `{start_time: "HH:MM", end_time: "HH:MM"}`, end exclusive, `24:00` for the end of the
  day; the start must be before the end;
- `weekdays`: `monday`, or an inclusive range `monday:friday` (any case). Sunday is the first day
  of the week, as in Alertmanager, so a range cannot wrap past it: write `saturday:sunday` as
  `[saturday, sunday]`;
- `days_of_month`: `1`, `1:5`, `-1` (the last day), `-7:-1`; a day past the end of a short month
  is clamped to it; a negative start needs a negative end;
- `months`: `january:march` or `1:3`;
- `years`: `2026`, `2026:2027`;
- `location`: the IANA time zone the interval is read in (default UTC). Local wall-clock times
  are what count, so `14:00` is 14:00 in Berlin on both sides of a daylight-saving change.

Everything is pure: instants are passed in, aware.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.incidents.schedule import require_aware

# Sunday is 0, as in Alertmanager (and Go's time.Weekday).
WEEKDAY_NUMBERS = {
    "sunday": 0,
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
}
MONTH_NUMBERS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
_TIME = re.compile(r"^(?:([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00))$")
_INTEGER = re.compile(r"^[-+]?[0-9]+$")
MINUTES_PER_DAY = 1440
UTC_ZONE: tzinfo = ZoneInfo("UTC")
# How far `active_until` follows an interval that goes on from one range into the next (a window
# every day from 00:00 to 24:00, or one without fields, never ends): past this, it says the window
# lasts at least until then, and the engine asks again at that time.
LONGEST_LOOK_AHEAD = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Minutes of the day from `start` (inclusive) to `end` (exclusive), 0 to 1440."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Span:
    """An inclusive range of numbers: weekdays (0 = Sunday), days of month, months, years."""

    begin: int
    end: int

    def holds(self, value: int) -> bool:
        return self.begin <= value <= self.end


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """One entry of `time_intervals`: `None` for a field left out (it always holds)."""

    times: tuple[TimeRange, ...] | None = None
    weekdays: tuple[Span, ...] | None = None
    days_of_month: tuple[Span, ...] | None = None
    months: tuple[Span, ...] | None = None
    years: tuple[Span, ...] | None = None
    location: tzinfo = UTC_ZONE

    def contains(self, at: datetime) -> bool:
        """Whether `at` falls inside the interval (Alertmanager's `ContainsTime`)."""
        require_aware(at)
        local = at.astimezone(self.location)
        if self.times is not None:
            minute = local.hour * 60 + local.minute
            if not any(r.start <= minute < r.end for r in self.times):
                return False
        return self._day_holds(local.date())

    def _day_holds(self, day: date) -> bool:
        if self.days_of_month is not None and not any(
            _day_of_month_holds(span, day) for span in self.days_of_month
        ):
            return False
        if self.months is not None and not any(span.holds(day.month) for span in self.months):
            return False
        # Python counts Monday as 0; Alertmanager Sunday.
        weekday = (day.weekday() + 1) % 7
        if self.weekdays is not None and not any(span.holds(weekday) for span in self.weekdays):
            return False
        return self.years is None or any(span.holds(day.year) for span in self.years)

    def range_end(self, at: datetime) -> datetime:
        """The end of the stretch of the interval `at` is in (which must contain `at`): the end
        of its time range that day, or midnight when the interval has no `times`."""
        local = at.astimezone(self.location)
        minute = local.hour * 60 + local.minute
        end = MINUTES_PER_DAY
        if self.times is not None:
            end = max(r.end for r in self.times if r.start <= minute < r.end)
        # Wall-clock arithmetic: combine the local date with the end time in the zone, so that a
        # day of 23 or 25 hours ends at its own midnight.
        day = local.date() + timedelta(days=end // MINUTES_PER_DAY)
        minutes = end % MINUTES_PER_DAY
        return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.location)


def active_until(intervals: tuple[TimeInterval, ...], at: datetime) -> datetime | None:
    """When the union of `intervals` stops holding, if it holds at `at`; None when it does not.

    Stretches that meet (16:00-24:00 then 00:00-06:00 the next day, or one interval ending where
    another begins) are followed as one, up to LONGEST_LOOK_AHEAD."""
    require_aware(at)
    current = at
    horizon = at + LONGEST_LOOK_AHEAD
    while current < horizon:
        holding = [interval for interval in intervals if interval.contains(current)]
        if not holding:
            return None if current == at else current
        ends = max(interval.range_end(current) for interval in holding)
        # In the repeated hour of an autumn night a wall-clock end may read as the first of the
        # two instants, before `current`: step on by a minute rather than go back.
        current = ends if ends > current else current + timedelta(minutes=1)
    return current


def _day_of_month_holds(span: Span, day: date) -> bool:
    # timeinterval.go: negative days count from the month's end (-1 the last); a start past the
    # end of a short month never holds; otherwise both ends are clamped to the month.
    days = _days_in_month(day)
    begin = days + span.begin + 1 if span.begin < 0 else span.begin
    end = days + span.end + 1 if span.end < 0 else span.end
    if begin > days:
        return False
    begin = max(min(begin, days), -days)
    end = max(min(end, days), -days)
    return begin <= day.day <= end


def _days_in_month(day: date) -> int:
    first_of_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (first_of_next - timedelta(days=1)).day


# --- parsing, one value at a time (the loader and the API attach the place of each error) -------


def parse_location(text: str) -> tzinfo:
    """An IANA time zone name; ValueError naming it if unknown."""
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'unknown time zone "{text}" (an IANA name such as Europe/Berlin or UTC)'
        ) from None


def parse_time(text: str) -> int:
    """`HH:MM` (00:00 to 24:00) as minutes of the day; ValueError if bad."""
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f'"{text}" is not a time of day HH:MM from 00:00 to 24:00')
    hours, minutes = (match.group(1), match.group(2)) if match.group(1) else ("24", "00")
    return int(hours) * 60 + int(minutes)


def parse_time_range(start_text: str, end_text: str) -> TimeRange:
    start, end = parse_time(start_text), parse_time(end_text)
    if start >= end:
        raise ValueError(f"start_time {start_text} must be before end_time {end_text}")
    return TimeRange(start, end)


def _split(text: str, what: str, names: dict[str, int], *, numbers: bool) -> Span:
    """`a` or `a:b` (Alertmanager's `stringableRangeFromString`, lower-cased): each a name of
    `names` or, with `numbers`, an integer."""
    parts = text.strip().lower().split(":")
    if len(parts) > 2:
        raise ValueError(f'"{text}" is not a {what} or a range {what}:{what}')
    found = []
    for part in parts:
        if part in names:
            found.append(names[part])
        elif numbers and _INTEGER.match(part):
            found.append(int(part))
        else:
            raise ValueError(f'"{part}" is not a valid {what}')
    return Span(found[0], found[-1])


def parse_weekdays(text: str) -> Span:
    span = _split(text, "weekday", WEEKDAY_NUMBERS, numbers=False)
    if span.begin > span.end:
        raise ValueError(
            f'"{text}": the range ends before it starts (weeks start on sunday, as in '
            "Alertmanager: list the days on either side instead, e.g. [saturday, sunday])"
        )
    return span


def parse_days_of_month(text: str) -> Span:
    span = _split(text, "day of month", {}, numbers=True)
    for value in (span.begin, span.end):
        if value == 0 or not -31 <= value <= 31:
            raise ValueError(f"day of month {value} is out of range (1 to 31, or -1 to -31)")
    if span.begin < 0 < span.end:
        raise ValueError(f'"{text}": the end must be negative when the start is')
    # As Alertmanager: a range that ends before it starts in every month (28 days or more).
    begin = 28 + span.begin if span.begin < 0 else span.begin
    end = 28 + span.end if span.end < 0 else span.end
    if begin > end:
        raise ValueError(f'"{text}": day {span.end} is always before day {span.begin}')
    return span


def parse_months(text: str) -> Span:
    span = _split(text, "month", MONTH_NUMBERS, numbers=True)
    for value in (span.begin, span.end):
        if not 1 <= value <= 12:
            raise ValueError(f"month {value} is out of range (1 to 12)")
    if span.begin > span.end:
        raise ValueError(f'"{text}": the end month is before the start month')
    return span


def parse_years(text: str) -> Span:
    span = _split(text, "year", {}, numbers=True)
    for value in (span.begin, span.end):
        if not 1 <= value <= 9999:
            raise ValueError(f"year {value} is out of range (1 to 9999)")
    if span.begin > span.end:
        raise ValueError(f'"{text}": the end year is before the start year')
    return span
