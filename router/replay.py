"""Replay: the stored alert history through two rule sets on a simulated clock, and what differs.

`simulate` runs the history as the daemon would have: each alert routed by `Routing.route` when it
was received, incidents opened and joined by incident key, severity raises, escalation decided by
the functions of `router.incidents.escalation` (`start`, `when_due`, `acknowledge`,
`raise_severity`, `alerts_resolved`) at the times they would have fallen due. Flap damping and
maintenance windows act as in the daemon (router/incidents/service.py): a pending period delays
the first page, a re-fire within a rule's `flapping.within` reopens the incident that resolved
(flapping at the rule's count, silent until quiet), and a window of the rules, or one made at run
time while it was in force (`History.windows`), suppresses an incident until it ends. People's
actions come from the history: an incident is acknowledged when the first real incident of its
alerts was, and an alert stops firing when it resolved or its real incident was resolved by hand.
Storm folding is not simulated: a page the daemon folded into a storm page counts as a page.

`replay` simulates both rule sets and compares them incident by incident, an incident being known
by the alert that opened it. Everything here is pure: no clock, no database, nothing sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from router.history import History, HistoryAlert
from router.incidents import escalation
from router.incidents.escalation import Context, Decision, IncidentState, NextAction, Progress
from router.maintenance.windows import Window, cover, cover_all
from router.routing import Routing

# Who the simulated acknowledgement and resolution are attributed to on the virtual timeline.
_REPLAY = "replay"


@dataclass(frozen=True, slots=True, order=True)
class SimPage:
    """One tier paged by one step on the simulated clock (`step` is 1-based)."""

    at: datetime
    tier: str
    step: int
    round: int
    event: str


@dataclass(frozen=True, slots=True)
class ReplayedIncident:
    """An incident of the simulation, known by `opener`: the id of the alert that opened it."""

    opener: int
    key: str
    severity: str
    policy: str
    runbook: str | None  # the section's `file#anchor`, None when no section was attached
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    alerts: tuple[int, ...]
    pages: tuple[SimPage, ...]

    @property
    def highest_step(self) -> int:
        return max((page.step for page in self.pages), default=0)


@dataclass(slots=True)
class _Running:
    """An incident while the simulation runs: its escalation progress and what it paged."""

    opener: int
    key: str
    severity: str
    policy: str
    runbook: str | None
    opened_at: datetime
    context: Context
    progress: Progress
    ack_at: datetime | None = None  # when people acknowledged it (from the history)
    acknowledged_at: datetime | None = None  # when the simulation applied that acknowledgement
    resolved_at: datetime | None = None
    reopened: list[datetime] = field(default_factory=list)  # re-fires that reopened it
    alerts: list[int] = field(default_factory=list)
    firing: dict[int, Mapping[str, str]] = field(default_factory=dict)  # by index, their labels
    pages: list[SimPage] = field(default_factory=list)

    def apply(self, decision: Decision, now: datetime) -> None:
        self.progress = decision.progress
        if self.progress.state is IncidentState.RESOLVED and self.resolved_at is None:
            self.resolved_at = now
        steps = self.context.policy.steps
        for order in decision.pages:
            for tier in steps[order.step].tiers:
                page = SimPage(now, tier, order.step + 1, order.round, order.kind.value)
                self.pages.append(page)

    def advance(self, until: datetime, routing: Routing, windows: tuple[Window, ...]) -> None:
        """Take every decision that falls due up to `until`: escalations, the acknowledgement,
        the end of a pending period, of a quiet time or of a maintenance window."""
        while self.progress.state is not IncidentState.RESOLVED:
            due = self.progress.next_action_at if self.progress.next_action else None
            ack = self.ack_at if self.acknowledged_at is None else None
            if ack is not None and ack <= until and (due is None or ack <= due):
                self.acknowledged_at = ack
                self.apply(escalation.acknowledge(self.progress, self.context, ack, _REPLAY), ack)
            elif due is not None and due <= until:
                self.apply(self._when_due(due, routing, windows), due)
            else:
                return

    def _when_due(self, now: datetime, routing: Routing, windows: tuple[Window, ...]) -> Decision:
        """As the daemon's escalation pass: a suppressed incident whose window ends stays
        suppressed while a window hides every alert of it that still fires."""
        if self.progress.next_action is NextAction.WINDOW_ENDS and self.firing:
            still = cover_all(
                windows,
                self.firing.values(),
                # Only windows that say `include_p0` hide the most severe level.
                most_severe=routing.rank(self.severity) == 0,
                at=now,
            )
            if still is not None:
                return escalation.suppress(still.until, f"still suppressed by {still.note()}")
        return escalation.when_due(self.progress, self.context, now, firing=bool(self.firing))

    def note_acknowledgement(self, at: datetime | None) -> None:
        """People acknowledged an incident of this alert at `at`: the earliest one after this
        incident opened is when they would have acknowledged this one."""
        if at is not None and at >= self.opened_at and (self.ack_at is None or at < self.ack_at):
            self.ack_at = at

    def finish(self) -> ReplayedIncident:
        return ReplayedIncident(
            opener=self.opener,
            key=self.key,
            severity=self.severity,
            policy=self.policy,
            runbook=self.runbook,
            opened_at=self.opened_at,
            acknowledged_at=self.acknowledged_at,
            resolved_at=self.resolved_at,
            alerts=tuple(self.alerts),
            pages=tuple(self.pages),
        )


def _ends(history: History, item: HistoryAlert) -> datetime | None:
    """When the alert stopped firing for the router: its resolution, or its incident's
    resolution by hand, whichever came first."""
    incident = history.incidents.get(item.incident_id) if item.incident_id else None
    ends = [t for t in (item.resolved_at, incident.resolved_at if incident else None) if t]
    return min(ends) if ends else None


def simulate(history: History, routing: Routing) -> list[ReplayedIncident]:
    """The incidents and pages the history would have had under `routing`, oldest first."""
    fire, end = 0, 1  # at the same instant, an alert fires before another resolves
    timeline: list[tuple[datetime, int, int]] = []
    for index, item in enumerate(history.alerts):
        timeline.append((item.received_at, fire, index))
        ends = _ends(history, item)
        if ends is not None and ends < history.until:
            timeline.append((max(ends, item.received_at), end, index))
    timeline.sort()
    windows = (*routing.rules.maintenance, *history.windows)
    running: list[_Running] = []
    # The latest incident of each key: open while its `resolved_at` is None, else the one a
    # flapping re-fire may reopen.
    latest: dict[str, _Running] = {}
    incident_of: dict[int, _Running] = {}
    for now, kind, index in timeline:
        item = history.alerts[index]
        if kind == fire:
            incident = _fired(routing, windows, item, now, latest, running)
            incident.alerts.append(item.id)
            incident.firing[index] = item.alert.labels
            real = history.incidents.get(item.incident_id) if item.incident_id else None
            incident.note_acknowledgement(real.acknowledged_at if real else None)
            incident_of[index] = incident
            continue
        incident = incident_of[index]
        incident.advance(now, routing, windows)
        incident.firing.pop(index, None)
        if incident.resolved_at is not None:
            continue
        if incident.firing:
            # A flapping incident's quiet time starts again at any of its alerts' changes.
            decision = escalation.alert_joined(incident.progress, incident.context, now)
        else:
            decision = escalation.alerts_resolved(incident.progress, incident.context, now, _REPLAY)
        incident.apply(decision, now)
    for incident in latest.values():
        incident.advance(history.until, routing, windows)
    # A page due after the end of the period is not part of it.
    for incident in running:
        incident.pages = [page for page in incident.pages if page.at < history.until]
    return [incident.finish() for incident in running]


def _fired(
    routing: Routing,
    windows: tuple[Window, ...],
    item: HistoryAlert,
    now: datetime,
    latest: dict[str, _Running],
    running: list[_Running],
) -> _Running:
    """Open the alert's incident, reopen a flapping one, or join the open one (re-paging on a
    severity raise, or when it joins a suppressed incident outside every window), as the service
    does (router/incidents/service.py `_alert_fired`)."""
    routed = routing.route(item.alert)
    c = routed.classification
    hidden = cover(windows, item.alert.labels, most_severe=routing.rank(c.severity) == 0, at=now)
    incident = latest.get(c.incident_key)
    if incident is not None:
        incident.advance(now, routing, windows)
    if incident is None or incident.resolved_at is not None:
        context = routing.escalation_context(c.policy, c.severity, c.rule)
        if incident is not None and _reopened(incident, context, c.severity, c.policy, now):
            return incident
        match = routed.match
        incident = _Running(
            opener=item.id,
            key=c.incident_key,
            severity=c.severity,
            policy=c.policy,
            runbook=match.section.reference if match and match.section else None,
            opened_at=now,
            context=context,
            progress=Progress(IncidentState.TRIGGERED),
        )
        if hidden is None:
            incident.apply(escalation.start(context, now), now)
        else:
            incident.apply(escalation.suppress(hidden.until, f"suppressed by {hidden.note()}"), now)
        latest[c.incident_key] = incident
        running.append(incident)
        return incident
    raised = routing.rank(c.severity) < routing.rank(incident.severity)
    if incident.progress.state is IncidentState.SUPPRESSED:
        if raised:
            incident.severity, incident.policy = c.severity, c.policy
            incident.context = routing.escalation_context(c.policy, c.severity)
        decision = escalation.joined_suppressed(
            incident.progress,
            incident.context,
            now,
            hidden.until if hidden else None,
            item.alert.description,
        )
        incident.apply(decision, now)
    elif raised:
        context = routing.escalation_context(c.policy, c.severity, c.rule)
        decision = escalation.raise_severity(incident.progress, context, incident.severity, now)
        incident.severity, incident.policy, incident.context = c.severity, c.policy, context
        incident.apply(decision, now)
    else:
        incident.apply(escalation.alert_joined(incident.progress, incident.context, now), now)
    return incident


def _reopened(
    incident: _Running, context: Context, severity: str, policy: str, now: datetime
) -> bool:
    """With flap detection, a re-fire within its window reopens the incident of its key that
    resolved last (router/incidents/service.py `_reopened`). True when it did."""
    flapping = context.damping.flapping
    resolved_at = incident.resolved_at
    if flapping is None or resolved_at is None or resolved_at < now - flapping.within:
        return False
    since = now - flapping.within
    refires = sum(1 for at in incident.reopened if at >= since) + 1
    decision = escalation.reopen(incident.progress, context, now, resolved_at, refires)
    incident.reopened.append(now)
    incident.severity, incident.policy, incident.context = severity, policy, context
    incident.resolved_at = None
    incident.apply(decision, now)
    return True


# --- the differences ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One property of an incident that the new rules change."""

    what: str  # severity, policy, incident_key, runbook, alerts, opens
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class HigherTier:
    """An escalation that goes further under the new rules: acknowledgement came after the new
    `ack_within` lapsed (or never came)."""

    step_before: int
    tiers_before: tuple[str, ...]
    step_after: int
    tiers_after: tuple[str, ...]
    reached_at: datetime
    acknowledged_at: datetime | None


@dataclass(frozen=True, slots=True)
class IncidentDiff:
    """What the new rules change for the incident opened by alert `opener`.

    `before`/`after` is None when that alert opened no incident under those rules (it joined
    another incident then: `joined_before`/`joined_after` is that incident's key)."""

    opener: int
    alertname: str
    opened_at: datetime
    before: ReplayedIncident | None
    after: ReplayedIncident | None
    changes: tuple[Change, ...]
    pages_added: tuple[SimPage, ...]
    pages_removed: tuple[SimPage, ...]
    higher_tier: HigherTier | None


@dataclass(frozen=True, slots=True)
class TierDay:
    """Pages to one tier on one day (UTC), before and after."""

    day: str
    tier: str
    before: int
    after: int


@dataclass(frozen=True, slots=True)
class ReplayReport:
    since: datetime
    until: datetime
    alerts: int
    incidents_before: int
    incidents_after: int
    pages_before: int
    pages_after: int
    diffs: tuple[IncidentDiff, ...]
    per_day: tuple[TierDay, ...]

    @property
    def unchanged(self) -> bool:
        return not self.diffs


def replay(history: History, before: Routing, after: Routing) -> ReplayReport:
    """The history under the rules in force and under the new ones, and every difference."""
    old, new = simulate(history, before), simulate(history, after)
    old_by_opener = {incident.opener: incident for incident in old}
    new_by_opener = {incident.opener: incident for incident in new}
    old_of_alert = {alert: incident for incident in old for alert in incident.alerts}
    new_of_alert = {alert: incident for incident in new for alert in incident.alerts}
    names = {item.id: item.alert.name for item in history.alerts}
    diffs = []
    for opener in sorted(old_by_opener.keys() | new_by_opener.keys(), key=_opened(old, new)):
        a, b = old_by_opener.get(opener), new_by_opener.get(opener)
        diff = _compare(opener, names[opener], a, b, old_of_alert[opener], new_of_alert[opener])
        if diff is not None:
            diffs.append(diff)
    return ReplayReport(
        since=history.since,
        until=history.until,
        alerts=len(history.alerts),
        incidents_before=len(old),
        incidents_after=len(new),
        pages_before=sum(len(incident.pages) for incident in old),
        pages_after=sum(len(incident.pages) for incident in new),
        diffs=tuple(diffs),
        per_day=_per_day(old, new),
    )


def _opened(*runs: list[ReplayedIncident]) -> Any:
    opened = {incident.opener: incident.opened_at for run in runs for incident in run}
    return lambda opener: (opened[opener], opener)


def _compare(
    opener: int,
    alertname: str,
    a: ReplayedIncident | None,
    b: ReplayedIncident | None,
    holder_a: ReplayedIncident,
    holder_b: ReplayedIncident,
) -> IncidentDiff | None:
    changes: list[Change] = []
    if a is None or b is None:
        # The alert opens an incident under one rule set and joins another's under the other.
        changes.append(
            Change(
                "opens",
                "incident" if a else f"joins {holder_a.key}",
                "incident" if b else f"joins {holder_b.key}",
            )
        )
    else:
        for what, x, y in (
            ("severity", a.severity, b.severity),
            ("policy", a.policy, b.policy),
            ("incident_key", a.key, b.key),
            ("runbook", a.runbook, b.runbook),
            ("alerts", str(len(a.alerts)), str(len(b.alerts))),
        ):
            if x != y:
                changes.append(Change(what, x, y))
    pages_a = Counter(a.pages if a else ())
    pages_b = Counter(b.pages if b else ())
    added = tuple(sorted((pages_b - pages_a).elements()))
    removed = tuple(sorted((pages_a - pages_b).elements()))
    higher = _higher_tier(a, b)
    if not changes and not added and not removed:
        return None
    return IncidentDiff(
        opener=opener,
        alertname=alertname,
        opened_at=(a or b or holder_a).opened_at,
        before=a,
        after=b,
        changes=tuple(changes),
        pages_added=added,
        pages_removed=removed,
        higher_tier=higher,
    )


def _higher_tier(a: ReplayedIncident | None, b: ReplayedIncident | None) -> HigherTier | None:
    if a is None or b is None or b.highest_step <= a.highest_step:
        return None
    reached = min(page.at for page in b.pages if page.step == b.highest_step)

    def tiers(incident: ReplayedIncident, step: int) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.tier for p in incident.pages if p.step == step))

    return HigherTier(
        step_before=a.highest_step,
        tiers_before=tiers(a, a.highest_step),
        step_after=b.highest_step,
        tiers_after=tiers(b, b.highest_step),
        reached_at=reached,
        acknowledged_at=b.acknowledged_at,
    )


def _per_day(
    old: Iterable[ReplayedIncident], new: Iterable[ReplayedIncident]
) -> tuple[TierDay, ...]:
    def count(run: Iterable[ReplayedIncident]) -> Counter[tuple[str, str]]:
        return Counter(
            (page.at.strftime("%Y-%m-%d"), page.tier) for incident in run for page in incident.pages
        )

    a, b = count(old), count(new)
    return tuple(
        TierDay(day, tier, a[(day, tier)], b[(day, tier)])
        for day, tier in sorted(a.keys() | b.keys())
    )


def minute(at: datetime, opened_at: datetime) -> int:
    """Whole minutes from an incident's opening, as the report shows them."""
    return int((at - opened_at).total_seconds() // 60)


def _time(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _page_json(page: SimPage, opened_at: datetime) -> dict[str, Any]:
    return {
        "tier": page.tier,
        "step": page.step,
        "round": page.round,
        "event": page.event,
        "at": _time(page.at),
        "minute": minute(page.at, opened_at),
    }


def _incident_json(incident: ReplayedIncident | None) -> dict[str, Any] | None:
    if incident is None:
        return None
    return {
        "key": incident.key,
        "severity": incident.severity,
        "policy": incident.policy,
        "runbook": incident.runbook,
        "opened_at": _time(incident.opened_at),
        "acknowledged_at": _time(incident.acknowledged_at),
        "resolved_at": _time(incident.resolved_at),
        "alerts": len(incident.alerts),
        "pages": len(incident.pages),
    }


def report_json(report: ReplayReport) -> dict[str, Any]:
    """The `replay --json` document."""
    diffs = []
    for diff in report.diffs:
        higher = diff.higher_tier
        diffs.append(
            {
                "opened_by_alert": diff.opener,
                "alertname": diff.alertname,
                "opened_at": _time(diff.opened_at),
                "before": _incident_json(diff.before),
                "after": _incident_json(diff.after),
                "changes": [
                    {"what": c.what, "before": c.before, "after": c.after} for c in diff.changes
                ],
                "pages_added": [_page_json(p, diff.opened_at) for p in diff.pages_added],
                "pages_removed": [_page_json(p, diff.opened_at) for p in diff.pages_removed],
                "higher_tier": None
                if higher is None
                else {
                    "step_before": higher.step_before,
                    "tiers_before": list(higher.tiers_before),
                    "step_after": higher.step_after,
                    "tiers_after": list(higher.tiers_after),
                    "reached_minute": minute(higher.reached_at, diff.opened_at),
                    "acknowledged_minute": minute(higher.acknowledged_at, diff.opened_at)
                    if higher.acknowledged_at
                    else None,
                },
            }
        )
    return {
        "since": _time(report.since),
        "until": _time(report.until),
        "alerts": report.alerts,
        "incidents": {"before": report.incidents_before, "after": report.incidents_after},
        "pages": {"before": report.pages_before, "after": report.pages_after},
        "unchanged": report.unchanged,
        "differences": diffs,
        "pages_per_day": [
            {"day": row.day, "tier": row.tier, "before": row.before, "after": row.after}
            for row in report.per_day
        ],
    }
