"""Maintenance windows as the rules declare them: loading, errors with their place, and the
time intervals in Alertmanager's shape and meaning."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.cli import main
from router.maintenance.intervals import (
    TimeInterval,
    active_until,
    parse_days_of_month,
    parse_location,
    parse_months,
    parse_time_range,
    parse_weekdays,
    parse_years,
)
from router.maintenance.windows import cover, run_time_window
from router.rules import check_rules, load_rules

SCENARIO = Path(__file__).parent / "fixtures" / "rules" / "scenario" / "rules.yaml"
BERLIN = parse_location("Europe/Berlin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def rules_with(tmp_path: Path, maintenance: str) -> Path:
    shutil.copy(SCENARIO, tmp_path / "10-rules.yaml")
    (tmp_path / "20-maintenance.yaml").write_text(maintenance)
    return tmp_path


def test_a_weekly_window_loads_with_its_place_and_its_zone(tmp_path: Path) -> None:
    directory = rules_with(
        tmp_path,
        """maintenance:
  - name: weekly-deploy
    matchers: ['service="ledger"']
    time_intervals: [{weekdays: [tuesday], times: [{start_time: 14:00, end_time: "16:00"}]}]
    location: Europe/Berlin
    reason: weekly deploy
""",
    )
    (window,) = load_rules(directory, {}, strict_secrets=True).maintenance
    assert (window.name, window.reason, window.include_p0) == (
        "weekly-deploy",
        "weekly deploy",
        False,
    )
    assert window.source == f"{directory / '20-maintenance.yaml'}:2"
    # An unquoted 14:00 is a base-60 number to YAML 1.1: read as written.
    assert window.active_until(at("2026-11-24T13:00:00+00:00")) == at("2026-11-24T16:00:00+01:00")
    assert window.active_until(at("2026-11-24T12:59:00+00:00")) is None
    assert window.active_until(at("2026-11-25T13:30:00+00:00")) is None  # a Wednesday


def test_bad_windows_are_reported_with_file_line_and_field(tmp_path: Path) -> None:
    directory = rules_with(
        tmp_path,
        """maintenance:
  - name: no-matchers
    time_intervals: [{weekdays: [tuesday]}]
  - name: bad-day
    matchers: ['service="ledger"']
    time_intervals: [{weekdays: [tuesdya]}]
  - name: wraps
    matchers: ['service="ledger"']
    time_intervals: [{weekdays: ["saturday:monday"], times: [{start_time: "16:00", end_time: "14:00"}]}]
  - name: bad-zone
    matchers: ['service="ledger"']
    location: Mars/Olympus
    time_intervals: [{days_of_month: ["-1:5"], months: [smarch], years: ["2027:2026"]}]
  - name: no-when
    matchers: ['service="ledger"']
  - name: no-offset
    matchers: ['service=~"("']
    starts_at: "2026-12-01T10:00:00"
    ends_at: "2026-12-01T09:00:00Z"
    include_p0: yes please
    colour: red
  - name: no-when
    matchers: ['service="x"']
    ends_at: "2026-12-01T09:00:00Z"
""",
    )
    report = check_rules(directory, {})
    file = directory / "20-maintenance.yaml"
    assert not report.ok
    expected = [
        f"{file}:2: maintenance no-matchers: matchers: is missing",
        f'{file}:6: maintenance bad-day: time_intervals[0]: weekdays[0]: "tuesdya" is not a valid weekday',
        f'{file}:9: maintenance wraps: time_intervals[0]: weekdays[0]: "saturday:monday": the range ends before it starts',
        f"{file}:9: maintenance wraps: time_intervals[0]: times[0]: start_time 16:00 must be before end_time 14:00",
        f'{file}:12: maintenance bad-zone: location: unknown time zone "Mars/Olympus"',
        f'{file}:13: maintenance bad-zone: time_intervals[0]: days_of_month[0]: "-1:5": the end must be negative when the start is',
        f'{file}:13: maintenance bad-zone: time_intervals[0]: months[0]: "smarch" is not a valid month',
        f'{file}:13: maintenance bad-zone: time_intervals[0]: years[0]: "2027:2026": the end year is before the start year',
        f"{file}:14: maintenance no-when: give time_intervals (recurring) or ends_at (one-off)",
        f"{file}:17: maintenance no-offset: matchers[0]:",
        f'{file}:18: maintenance no-offset: starts_at: "2026-12-01T10:00:00" has no offset',
        f'{file}:20: maintenance no-offset: include_p0: must be true or false, got "yes please"',
        f'{file}:21: maintenance no-offset: unknown key "colour"',
        f"{file}:22: maintenance no-when: the name is already used at {file}:14",
    ]
    for line in expected:
        assert any(error.startswith(line) for error in report.errors), (line, report.errors)
    assert len(report.errors) == len(expected), report.errors


def test_a_one_off_window_ends_after_it_starts(tmp_path: Path) -> None:
    directory = rules_with(
        tmp_path,
        """maintenance:
  - name: backwards
    matchers: ['service="ledger"']
    starts_at: "2026-12-01T10:00:00+01:00"
    ends_at: "2026-12-01T09:00:00Z"
""",
    )
    (error,) = check_rules(directory, {}).errors
    assert error.endswith(
        "20-maintenance.yaml:5: maintenance backwards: ends_at: must be after starts_at"
    )


# --- time intervals, as Alertmanager reads them --------------------------------------------


def test_weekday_ranges_days_of_month_months_and_years() -> None:
    assert parse_weekdays("Monday:Friday") == parse_weekdays("monday:friday")
    weekdays = TimeInterval(weekdays=(parse_weekdays("monday:friday"),))
    assert weekdays.contains(at("2026-11-27T12:00:00Z"))  # Friday
    assert not weekdays.contains(at("2026-11-29T12:00:00Z"))  # Sunday
    last_week = TimeInterval(days_of_month=(parse_days_of_month("-7:-1"),))
    assert last_week.contains(at("2026-02-22T00:00:00Z"))  # February has 28 days in 2026
    assert not last_week.contains(at("2026-02-21T23:59:00Z"))
    assert last_week.contains(at("2026-03-25T00:00:00Z"))
    # A day past the end of a short month: a start beyond it never holds; an end is clamped.
    assert not TimeInterval(days_of_month=(parse_days_of_month("30:31"),)).contains(
        at("2026-02-28T10:00:00Z")
    )
    assert TimeInterval(days_of_month=(parse_days_of_month("28:31"),)).contains(
        at("2026-02-28T10:00:00Z")
    )
    winter = TimeInterval(months=(parse_months("january:march"), parse_months("12")))
    assert winter.contains(at("2026-12-05T00:00:00Z")) and not winter.contains(
        at("2026-04-01T00:00:00Z")
    )
    assert TimeInterval(years=(parse_years("2026:2027"),)).contains(at("2027-12-31T23:59:00Z"))
    with pytest.raises(ValueError, match="out of range"):
        parse_days_of_month("0")
    with pytest.raises(ValueError, match="from 00:00 to 24:00"):
        parse_time_range("9:00", "10:00")  # Alertmanager wants two digits


def test_an_interval_that_runs_into_the_next_day_is_followed_to_its_end() -> None:
    evening = TimeInterval(times=(parse_time_range("18:00", "24:00"),), location=BERLIN)
    morning = TimeInterval(times=(parse_time_range("00:00", "06:00"),), location=BERLIN)
    until = active_until((evening, morning), at("2026-11-24T20:00:00+01:00"))
    assert until == at("2026-11-25T06:00:00+01:00")


def test_a_recurring_window_follows_wall_clock_time_across_daylight_saving() -> None:
    tuesday = TimeInterval(
        weekdays=(parse_weekdays("tuesday"),),
        times=(parse_time_range("14:00", "16:00"),),
        location=BERLIN,
    )
    # Summer time (UTC+2) on 20 October 2026, winter time (UTC+1) from 25 October.
    assert tuesday.contains(at("2026-10-20T12:00:00Z"))
    assert not tuesday.contains(at("2026-10-20T14:00:00Z"))
    assert not tuesday.contains(at("2026-10-27T12:30:00Z"))
    assert active_until((tuesday,), at("2026-10-27T13:00:00Z")) == at("2026-10-27T15:00:00Z")


def test_only_a_window_that_says_so_hides_the_most_severe_severity() -> None:
    plain = run_time_window(
        name="plain", matchers=('service="ledger"',),
        starts_at=at("2026-11-24T09:00:00Z"), ends_at=at("2026-11-24T11:00:00Z"),
    )  # fmt: skip
    everything = run_time_window(
        name="everything", matchers=('service="ledger"',), include_p0=True,
        starts_at=at("2026-11-24T09:00:00Z"), ends_at=at("2026-11-24T10:00:00Z"),
    )  # fmt: skip
    labels = {"service": "ledger"}
    now = at("2026-11-24T09:30:00Z")
    found = cover((plain, everything), labels, most_severe=False, at=now)
    assert found is not None and found.window.name == "plain"  # the one lasting longest
    found = cover((plain, everything), labels, most_severe=True, at=now)
    assert found is not None and found.window.name == "everything"
    assert cover((plain,), labels, most_severe=True, at=now) is None
    assert cover((plain,), {"service": "payments"}, most_severe=False, at=now) is None
    assert cover((plain,), labels, most_severe=False, at=at("2026-11-24T11:00:00Z")) is None
    assert now.tzinfo is UTC or now.utcoffset() is not None


def test_route_shows_which_window_hides_an_alert_and_plans_its_pages_from_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = Path(__file__).parent / "fixtures" / "rules" / "maintenance"
    labels = [
        {"alertname": "SlowThing", "service": "billing"},  # inside billing-morning
        {"alertname": "DataCorruption", "service": "billing"},  # P0: not hidden
    ]
    body = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": lab,
                "annotations": {},
                "startsAt": "2026-11-24T08:59:00Z",
            }
            for lab in labels
        ],
    }
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(body))
    args = ["route", str(payload), "--rules", str(rules), "--at", "2026-11-24T09:00:00Z"]
    assert main([*args, "--json"]) == 0
    slow, corruption = json.loads(capsys.readouterr().out)["alerts"]
    assert slow["maintenance"] == {
        "window": "billing-morning",
        "reason": "billing migration",
        "until": "2026-11-24T11:00:00Z",
    }
    assert slow["timeline"][0]["at"] == "2026-11-24T11:00:00Z"
    assert corruption["maintenance"] is None
    assert corruption["timeline"][0]["at"] == "2026-11-24T09:00:00Z"
    assert main(args) == 0
    text = capsys.readouterr().out
    assert (
        "  window    suppressed by maintenance window billing-morning (billing migration) until "
        "Tue 2026-11-24 12:00 CET: nobody is paged before" in text
    )
    assert text.count("suppressed by maintenance window") == 1
