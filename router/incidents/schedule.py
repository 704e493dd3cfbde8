"""Time arithmetic of escalation: durations and business hours.

Everything here is pure: `now` and every other instant is passed in as an aware datetime, never read
from the clock. The timeline of pages an incident gets is planned by the escalation state machine
itself (`escalation.plan_timeline`), so what `route` shows is what the daemon does.

Durations use Prometheus' and Alertmanager's notation (`5m`, `1h30m`, `2d`), parsed by the same
regular expression as `prometheus/common` `model.ParseDuration`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# prometheus/common model/time.go ParseDuration: units from the largest to the smallest, each once.
_DURATION = re.compile(
    r"^(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?$"
)
# Milliseconds per unit: durations are added up in whole milliseconds, as Prometheus does.
_UNIT_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
# Prometheus keeps a duration in Go's time.Duration, nanoseconds in a signed 64-bit integer, and
# ParseDuration refuses one longer than that ("duration out of range"): about 292 years. Beyond it
# the datetime arithmetic of escalation overflows, so the same range is refused here.
MAX_DURATION_MS = (2**63 - 1) // 1_000_000
MAX_DURATION = timedelta(milliseconds=MAX_DURATION_MS)


def parse_duration(text: str) -> timedelta:
    """A Prometheus-style duration (`30s`, `5m`, `1h30m`, `0`) as a timedelta; ValueError if bad
    or longer than Prometheus' range (MAX_DURATION, 292y24w3d23h47m16s854ms)."""
    if text == "0":
        return timedelta(0)
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f'bad duration "{text}" (use units y w d h m s ms, e.g. 30s, 5m, 1h30m)')
    total_ms = sum(
        _UNIT_MS[unit] * int(count) for unit, count in match.groupdict().items() if count
    )
    if total_ms > MAX_DURATION_MS:
        raise ValueError(
            f'duration "{text}" is out of range: the longest is '
            f"{format_duration(MAX_DURATION, years=True)}, as in Prometheus"
        )
    return timedelta(milliseconds=total_ms)


def format_duration(value: timedelta, *, years: bool = False) -> str:
    """A timedelta in the notation `parse_duration` reads: `1h30m`, `45s`, `0s`; with `years`,
    long spans in years and weeks too (`292y24w3d...`)."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    sign = "-" if total_ms < 0 else ""
    total_ms = abs(total_ms)
    parts = []
    units = [(unit, _UNIT_MS[unit]) for unit in ("y", "w", "d", "h", "m", "s")]
    for unit, size_ms in units if years else units[2:]:
        count, total_ms = divmod(total_ms, size_ms)
        if count:
            parts.append(f"{count}{unit}")
    if total_ms:
        parts.append(f"{total_ms}ms")
    return sign + "".join(parts)


def require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {at.isoformat()}")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours: on `days` (0 = Monday) from `start` (inclusive) to `end` (exclusive), in `tz`.

    Local wall-clock times are what count: across a daylight-saving change the hours open at
    09:00 local time on both sides of it.
    """

    days: frozenset[int]
    start: time
    end: time
    tz: tzinfo

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("business hours need at least one day")
        if not self.days <= set(range(7)):
            raise ValueError(f"days must be 0 (Monday) to 6 (Sunday), got {sorted(self.days)}")
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} must be after start {self.start:%H:%M}")

    @classmethod
    def from_names(cls, days: Iterable[str], start: time, end: time, tz: tzinfo) -> BusinessHours:
        """Business hours from day names as written in rules files (`mon` .. `sun`)."""
        return cls(frozenset(WEEKDAYS.index(day) for day in days), start, end, tz)

    @property
    def day_names(self) -> tuple[str, ...]:
        return tuple(WEEKDAYS[day] for day in sorted(self.days))

    def is_open(self, at: datetime) -> bool:
        require_aware(at)
        local = at.astimezone(self.tz)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open; otherwise the next opening, in `at`'s timezone."""
        require_aware(at)
        if self.is_open(at):
            return at
        local = at.astimezone(self.tz)
        # Eight days reach the same weekday a week on, so an opening is always found.
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opening = self._opening_on(day)
            if opening > at:
                return opening.astimezone(at.tzinfo)
        raise AssertionError(
            "unreachable: business hours have at least one day"
        )  # pragma: no cover

    def _opening_on(self, day: date) -> datetime:
        # A start time that a daylight-saving change skips (02:30 on the spring-forward night) is
        # resolved by zoneinfo with the offset before the change, so it opens an hour later (03:30).
        return datetime.combine(day, self.start, tzinfo=self.tz)


class StepLike(Protocol):
    """One escalation step: the tiers paged together and the time they have to acknowledge."""

    @property
    def tiers(self) -> tuple[str, ...]: ...

    @property
    def ack_within(self) -> timedelta | None: ...


class SeverityPolicyLike(Protocol):
    """The escalation of one severity: its steps, then `repeat` more pages of the last step."""

    @property
    def steps(self) -> Sequence[StepLike]: ...

    @property
    def repeat(self) -> int: ...
