"""Durations, business hours and the planned escalation timeline."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from router.incidents.escalation import PlannedStep, plan_timeline
from router.incidents.schedule import BusinessHours, format_duration, parse_duration
from router.rules import SeverityPolicy, Step

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def office(
    tz: ZoneInfo | None = None, days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
) -> BusinessHours:
    return BusinessHours.from_names(days, time(9), time(18), tz or ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("1y", 31536000),
        ("250ms", 0.25),
        ("1h0m5s", 3605),
        # The longest duration Prometheus reads: 2**63-1 nanoseconds, in whole milliseconds.
        ("292y24w3d23h47m16s854ms", 9_223_372_036.854),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "5min", "1m1h", "-5m", "1.5h", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text", ["293y", "10000y", "292y24w3d23h47m16s855ms", "1" * 30 + "s", "9" * 400 + "ms"]
)
def test_durations_beyond_prometheus_range(text: str) -> None:
    with pytest.raises(ValueError, match="out of range: the longest is 292y24w3d23h47m16s854ms"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (300, "5m"), (5400, "1h30m"), (227_400, "2d15h10m"), (0.25, "250ms"), (-60, "-1m")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


# 2024-05-10 is a Friday.
@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2024-05-10T08:59:59", False),
        ("2024-05-10T09:00:00", True),  # exactly at opening: open
        ("2024-05-10T12:00:00", True),
        ("2024-05-10T17:59:59", True),
        ("2024-05-10T18:00:00", False),  # exactly at closing: closed
        ("2024-05-11T12:00:00", False),  # Saturday
        ("2024-05-12T12:00:00", False),  # Sunday
        ("2024-05-13T09:00:00", True),  # Monday
    ],
)
def test_is_open(at: str, open_: bool) -> None:
    assert office().is_open(utc(at)) is open_


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2024-05-10T12:00:00", "2024-05-10T12:00:00"),  # open: itself
        ("2024-05-10T07:00:00", "2024-05-10T09:00:00"),  # before opening: today
        ("2024-05-10T18:00:00", "2024-05-13T09:00:00"),  # Friday evening: Monday
        ("2024-05-11T03:00:00", "2024-05-13T09:00:00"),  # Saturday
        ("2024-05-12T23:59:59", "2024-05-13T09:00:00"),  # Sunday night
        ("2024-05-13T18:30:00", "2024-05-14T09:00:00"),  # a weekday evening: tomorrow
    ],
)
def test_next_open(at: str, expected: str) -> None:
    assert office().next_open(utc(at)) == utc(expected)


def test_next_open_returns_the_callers_timezone() -> None:
    at = datetime(2024, 5, 10, 20, 0, tzinfo=BERLIN)  # Friday 18:00 UTC
    opened = office().next_open(at)
    assert opened.tzinfo is BERLIN
    assert opened == utc("2024-05-13T09:00:00")


def test_weekend_only_hours() -> None:
    hours = office(days=("sat", "sun"))
    assert hours.next_open(utc("2024-05-10T12:00:00")) == utc("2024-05-11T09:00:00")
    assert hours.next_open(utc("2024-05-12T18:00:00")) == utc("2024-05-18T09:00:00")


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Spring forward in Berlin, Sunday 2024-03-31: 09:00 is 08:00 UTC before, 07:00 UTC after.
        ("2024-03-29T08:00:00", "2024-03-29T08:00:00"),  # Friday 09:00 CET: open
        ("2024-03-29T07:59:00", "2024-03-29T08:00:00"),
        ("2024-03-29T17:00:00", "2024-04-01T07:00:00"),  # Friday 18:00 CET -> Monday 09:00 CEST
        ("2024-04-01T06:59:59", "2024-04-01T07:00:00"),
        # Fall back, Sunday 2024-10-27: 09:00 is 07:00 UTC before, 08:00 UTC after.
        ("2024-10-25T16:00:00", "2024-10-28T08:00:00"),  # Friday 18:00 CEST -> Monday 09:00 CET
        ("2024-10-28T07:30:00", "2024-10-28T08:00:00"),  # Monday 08:30 CET: not yet
    ],
)
def test_business_hours_follow_local_time_across_dst(at: str, expected: str) -> None:
    assert office(BERLIN).next_open(utc(at)) == utc(expected)


def test_new_york_hours() -> None:
    # Friday 2024-11-01 17:30 EDT; Monday 2024-11-04 09:00 EST (the clocks went back on Sunday).
    hours = office(NEW_YORK)
    assert hours.is_open(utc("2024-11-01T21:30:00"))
    assert hours.next_open(utc("2024-11-01T22:00:00")) == utc("2024-11-04T14:00:00")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        office().is_open(datetime(2024, 5, 10, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_timeline(SeverityPolicy((Step(("a",), None),)), None, datetime(2024, 5, 10, 12))


@pytest.mark.parametrize(
    "problem",
    [
        {"days": ()},
        {"days": ("mon", "fri"), "start": time(18), "end": time(9)},
        {"days": ("mon",), "start": time(9), "end": time(9)},
    ],
)
def test_impossible_business_hours(problem: dict[str, object]) -> None:
    arguments: dict[str, object] = {"start": time(9), "end": time(18), "tz": UTC, **problem}
    with pytest.raises(ValueError):
        BusinessHours.from_names(**arguments)  # type: ignore[arg-type]


def step(tiers: str, ack_within: str | None) -> Step:
    return Step(tuple(tiers.split(",")), parse_duration(ack_within) if ack_within else None)


P0 = SeverityPolicy(
    (
        step("oncall", "5m"),
        step("team-lead", "15m"),
        step("eng-manager", "15m"),
        step("cto", "30m"),
    ),
    repeat=2,
)
P2 = SeverityPolicy((step("oncall", "4h"), step("team-lead", "8h")))


def summary(planned: list[PlannedStep]) -> list[tuple[int, int, str, str, bool]]:
    return [
        (
            p.step,
            p.round,
            ",".join(p.tiers),
            p.at.astimezone(UTC).strftime("%a %d %H:%M"),
            p.waited_for_business_hours,
        )
        for p in planned
    ]


def test_steps_then_repeats_of_the_last_step() -> None:
    planned = plan_timeline(P0, None, utc("2024-05-11T03:00:00"))
    assert summary(planned) == [
        (1, 0, "oncall", "Sat 11 03:00", False),
        (2, 0, "team-lead", "Sat 11 03:05", False),
        (3, 0, "eng-manager", "Sat 11 03:20", False),
        (4, 0, "cto", "Sat 11 03:35", False),
        (4, 1, "cto", "Sat 11 04:05", False),
        (4, 2, "cto", "Sat 11 04:35", False),
    ]
    assert [p.ack_within for p in planned][:2] == [timedelta(minutes=5), timedelta(minutes=15)]


def test_a_friday_evening_escalation_waits_for_monday() -> None:
    planned = plan_timeline(P2, office(), utc("2024-05-10T17:30:00"))
    assert summary(planned) == [
        (1, 0, "oncall", "Fri 10 17:30", False),
        (2, 0, "team-lead", "Mon 13 09:00", True),
    ]


def test_a_weekend_incident_first_pages_on_monday() -> None:
    planned = plan_timeline(P2, office(), utc("2024-05-11T10:00:00"))
    assert summary(planned) == [
        (1, 0, "oncall", "Mon 13 09:00", True),
        (2, 0, "team-lead", "Mon 13 13:00", False),  # 4h after the page, not after the opening
    ]


def test_a_page_due_exactly_at_closing_waits() -> None:
    planned = plan_timeline(P2, office(), utc("2024-05-13T14:00:00"))
    assert summary(planned)[1] == (2, 0, "team-lead", "Tue 14 09:00", True)


def test_a_page_due_exactly_at_opening_does_not_wait() -> None:
    planned = plan_timeline(P2, office(), utc("2024-05-13T05:00:00"))
    assert summary(planned) == [
        (1, 0, "oncall", "Mon 13 09:00", True),
        (2, 0, "team-lead", "Mon 13 13:00", False),
    ]
    planned = plan_timeline(
        SeverityPolicy((step("a", "4h"), step("b", None))), office(), utc("2024-05-13T05:00:00")
    )
    assert planned[0].at == utc("2024-05-13T09:00:00")


def test_business_hours_across_spring_forward() -> None:
    # Opened Saturday 2024-03-30 in Berlin: the first page is Monday 09:00 CEST, 07:00 UTC.
    planned = plan_timeline(P2, office(BERLIN), utc("2024-03-30T12:00:00"))
    assert [p.at for p in planned] == [utc("2024-04-01T07:00:00"), utc("2024-04-01T11:00:00")]


def test_a_step_without_ack_within_ends_the_timeline() -> None:
    queue = SeverityPolicy((step("team-queue", None),), repeat=3)
    planned = plan_timeline(queue, None, utc("2024-05-13T10:00:00"))
    assert summary(planned) == [(1, 0, "team-queue", "Mon 13 10:00", False)]


def test_several_tiers_in_one_step() -> None:
    policy = SeverityPolicy((step("oncall,team-lead", "5m"),), repeat=1)
    planned = plan_timeline(policy, None, utc("2024-05-13T10:00:00"))
    assert summary(planned) == [
        (1, 0, "oncall,team-lead", "Mon 13 10:00", False),
        (1, 1, "oncall,team-lead", "Mon 13 10:05", False),
    ]


def test_no_steps_no_pages() -> None:
    assert plan_timeline(SeverityPolicy(()), None, utc("2024-05-13T10:00:00")) == []
