"""Runbook coverage: which rules, and which alerts seen in a period, would page without a runbook
section, by severity, with how often they fired (`runbook-router check --coverage`).

A rule is a gap when it names no section (`runbook:`) and no alert it classified in the period
found one another way (an annotation, the search): nothing then promises its page a section. An
alert is a gap when, routed by these rules as the daemon routes it, it pages (its policy has a
step) and no section is attached. Pure: the history is read elsewhere (router/store/history.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from router.history import History
from router.routing import Routing


@dataclass(frozen=True, slots=True)
class RuleGap:
    rule: str
    severity: str
    source: str  # file:line
    fired: int  # alerts it classified in the period (none of which found a section)


@dataclass(frozen=True, slots=True)
class AlertGap:
    """Alerts of one name, rule and severity that paged without a section."""

    severity: str
    alertname: str
    rule: str | None
    fired: int


@dataclass(frozen=True, slots=True)
class ChangedSection:
    """A section that incidents of the period carried, changed (or gone) since."""

    reference: str
    incidents: int
    gone: bool


@dataclass(frozen=True, slots=True)
class CoverageReport:
    alerts: int  # alerts of the period
    history: bool  # False when no history was read: the rules alone were checked
    rules: tuple[RuleGap, ...]
    alert_gaps: tuple[AlertGap, ...]
    changed: tuple[ChangedSection, ...] = ()

    def failing(self, routing: Routing, threshold: str) -> list[str]:
        """Descriptions of the gaps at `threshold` or more severe."""
        limit = routing.rank(threshold)
        rules = [
            f"rule {gap.rule} ({gap.severity}, {gap.source})"
            for gap in self.rules
            if routing.rank(gap.severity) <= limit
        ]
        alerts = [
            f"alert {gap.alertname or '(no alertname)'} ({gap.severity}, fired {gap.fired}x)"
            for gap in self.alert_gaps
            if routing.rank(gap.severity) <= limit
        ]
        return rules + alerts


def _pages(routing: Routing, policy: str, severity: str) -> bool:
    return bool(routing.severity_policy(policy, severity).steps)


def coverage(routing: Routing, history: History | None) -> CoverageReport:
    fired: Counter[str] = Counter()
    found: Counter[str] = Counter()
    gaps: Counter[tuple[str, str, str | None]] = Counter()
    for item in history.alerts if history else ():
        routed = routing.route(item.alert)
        c = routed.classification
        attached = routed.match is not None and routed.match.section is not None
        if c.rule is not None:
            fired[c.rule] += 1
            found[c.rule] += attached
        if not attached and _pages(routing, c.policy, c.severity):
            gaps[(c.severity, item.alert.name, c.rule)] += 1
    rules = [
        RuleGap(rule.name, rule.severity, rule.source, fired[rule.name])
        for rule in routing.rules.rules
        if rule.runbook is None
        and not found[rule.name]
        and _pages(routing, rule.policy, rule.severity)
    ]
    alert_gaps = [
        AlertGap(severity, name, rule, count)
        for (severity, name, rule), count in sorted(
            gaps.items(), key=lambda item: (routing.rank(item[0][0]), -item[1], item[0][1])
        )
    ]
    rules.sort(key=lambda gap: (routing.rank(gap.severity), gap.rule))
    return CoverageReport(
        alerts=len(history.alerts) if history else 0,
        history=history is not None,
        rules=tuple(rules),
        alert_gaps=tuple(alert_gaps),
        changed=_changed_sections(routing, history) if history else (),
    )


def _changed_sections(routing: Routing, history: History) -> tuple[ChangedSection, ...]:
    """Sections whose text changed since incidents of the period carried them: what the
    responders read then is not what the runbook says now."""
    changed: Counter[tuple[str, bool]] = Counter()
    for incident in history.incidents.values():
        if incident.runbook is None or incident.runbook_hash is None:
            continue
        section = routing.runbooks.get(incident.runbook)
        if section is None or section.content_hash != incident.runbook_hash:
            changed[(incident.runbook, section is None)] += 1
    return tuple(
        ChangedSection(reference, count, gone)
        for (reference, gone), count in sorted(changed.items())
    )
