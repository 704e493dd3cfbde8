"""Maintenance windows, and which of them hides an alert at a given time.

A window holds for an alert when every one of its matchers holds for the alert's labels (the
rules' matcher syntax and semantics) and the time falls inside it: between `starts_at` and
`ends_at` when those are given (a one-off window, or one made at run time), and inside one of its
`time_intervals` when it has any (a recurring window). A window never hides an alert of the most
severe severity (P0) unless it says `include_p0: true`.

`cover` picks, among the windows that hold, the one that lasts longest: the incident stays
silent until then, and is looked at again at that time (another window may hold by then).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from router.incidents.schedule import require_aware
from router.maintenance.intervals import TimeInterval, active_until
from router.rules.matchers import Matcher, parse_matchers


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance window, declared in the rules or made at run time.

    `matcher_texts` are the matchers as written (shown and stored); `source` says where it came
    from: `file:line` for the rules, `api` for one made at run time.
    """

    name: str
    matchers: tuple[Matcher, ...]
    matcher_texts: tuple[str, ...]
    intervals: tuple[TimeInterval, ...] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    reason: str = ""
    include_p0: bool = False
    source: str = "api"
    created_by: str = ""

    @property
    def from_rules(self) -> bool:
        return self.source != "api"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.test(labels.get(matcher.name, "")) for matcher in self.matchers)

    def active_until(self, at: datetime) -> datetime | None:
        """When the window stops holding, if it holds at `at`; None when it does not."""
        require_aware(at)
        if self.starts_at is not None and at < self.starts_at:
            return None
        if self.ends_at is not None and at >= self.ends_at:
            return None
        until = self.ends_at
        if self.intervals:
            recurring = active_until(self.intervals, at)
            if recurring is None:
                return None
            until = recurring if until is None else min(until, recurring)
        # A window with neither an end nor intervals is refused when it is made.
        assert until is not None, "a window has an end or time intervals"
        return until

    def describe(self) -> str:
        """`weekly-deploy (weekly deploy)`: the name and the reason, for timelines."""
        return f"{self.name} ({self.reason})" if self.reason else self.name


@dataclass(frozen=True, slots=True)
class Cover:
    """A window that hides an alert now, and until when."""

    window: Window
    until: datetime

    def note(self) -> str:
        return (
            f"maintenance window {self.window.describe()} until {self.until.isoformat()}: "
            "nobody is paged; if it still fires then, it pages as a new trigger"
        )


def cover(
    windows: Iterable[Window], labels: Mapping[str, str], *, most_severe: bool, at: datetime
) -> Cover | None:
    """The window that hides an alert with `labels` at `at` the longest, or None.

    `most_severe`: the alert is of the most severe severity, which only windows that say
    `include_p0` hide."""
    found: Cover | None = None
    for window in windows:
        if most_severe and not window.include_p0:
            continue
        if not window.matches(labels):
            continue
        until = window.active_until(at)
        if until is not None and (found is None or until > found.until):
            found = Cover(window, until)
    return found


def cover_all(
    windows: Iterable[Window],
    labels: Iterable[Mapping[str, str]],
    *,
    most_severe: bool,
    at: datetime,
) -> Cover | None:
    """The cover of a group of alerts (an incident's firing alerts): None unless a window hides
    every one of them; then until the first of them is uncovered."""
    windows = tuple(windows)
    found: Cover | None = None
    for alert_labels in labels:
        this = cover(windows, alert_labels, most_severe=most_severe, at=at)
        if this is None:
            return None
        if found is None or this.until < found.until:
            found = this
    return found


def run_time_window(
    *,
    name: str,
    matchers: tuple[str, ...],
    starts_at: datetime,
    ends_at: datetime,
    reason: str = "",
    include_p0: bool = False,
    created_by: str = "",
) -> Window:
    """A window made at run time (the API, the CLI) from its matchers as written; MatcherError if
    one is bad, ValueError if it holds no matcher or ends before it starts."""
    parsed = tuple(m for text in matchers for m in parse_matchers(text))
    if not parsed:
        raise ValueError("a window needs at least one matcher: it names what it hides")
    if ends_at <= starts_at:
        raise ValueError("a window must end after it starts")
    return Window(
        name=name,
        matchers=parsed,
        matcher_texts=matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        include_p0=include_p0,
        source="api",
        created_by=created_by,
    )
