"""The clock of the tests: the time the service sees, moved by the test instead of slept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# A Tuesday, 10:00 in Berlin: inside business hours.
TUESDAY_10_BERLIN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeClock:
    """The time the service sees; tests move it instead of sleeping."""

    def __init__(self, start: datetime = TUESDAY_10_BERLIN) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
