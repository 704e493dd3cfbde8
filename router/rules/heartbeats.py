"""Heartbeats: alerts or pings that must keep arriving, a dead man's switch.

A heartbeat is declared in the rules (`heartbeats:`). An alert that its matchers select (the
`Watchdog` alert that kube-prometheus fires for ever), or a `POST /heartbeats/{name}`, is a beat.
When no beat arrived for `interval`, the router opens an incident with the heartbeat's severity and
policy; the next beat resolves it. This module holds the declaration and the pure decisions about
it; `router/incidents/service.py` applies them to the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.incidents.schedule import format_duration
from router.models import Alert
from router.rules.matchers import Matcher

# Heartbeat incidents are keyed apart from rules' keys (`rule|label=value`): no rule can be named
# so, as rule names never hold `:`.
KEY_PREFIX = "heartbeat:"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One heartbeat: `matchers` select the alerts that count as beats (none: pings only)."""

    name: str
    matchers: tuple[Matcher, ...]
    interval: timedelta
    severity: str
    policy: str
    source: str  # `file:line` where the rules declare it

    def matches(self, alert: Alert) -> bool:
        """Whether `alert` is a beat of this heartbeat (when it fires)."""
        if not self.matchers:
            return False
        labels = alert.labels
        return all(matcher.test(labels.get(matcher.name, "")) for matcher in self.matchers)

    @property
    def incident_key(self) -> str:
        return f"{KEY_PREFIX}{self.name}"

    def deadline(self, last_beat: datetime | None, watched_since: datetime) -> datetime:
        """When the heartbeat is missed if nothing arrives: `interval` after the later of its last
        beat and the time this process began watching it (its start, or the reload that added
        it), so that a router that was down, or a heartbeat just declared, is given a whole
        interval before anyone is paged."""
        start = watched_since if last_beat is None else max(last_beat, watched_since)
        return start + self.interval

    def missed_title(self, silent_for: timedelta) -> str:
        """`Heartbeat watchdog: nothing received for 12m` (whole minutes, or seconds below one)."""
        seconds = max(int(silent_for.total_seconds()), 0)
        whole = seconds - seconds % 60 if seconds >= 60 else seconds
        silence = format_duration(timedelta(seconds=whole))
        return f"Heartbeat {self.name}: nothing received for {silence}"

    def describe_matchers(self) -> str:
        return " and ".join(str(matcher) for matcher in self.matchers)


def heartbeat_for(heartbeats: Iterable[Heartbeat], alert: Alert) -> Heartbeat | None:
    """The first heartbeat (in rules order) that `alert` beats, or None."""
    for heartbeat in heartbeats:
        if heartbeat.matches(alert):
            return heartbeat
    return None
