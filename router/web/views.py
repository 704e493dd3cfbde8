"""What the pages show, made from the store's records and the rules in force: plain values that the
templates only lay out (no decisions in the templates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import markupsafe

from router.api.views import NextStep, next_escalation
from router.incidents.schedule import format_duration
from router.outbox.context import PageRunbook
from router.routing import Routing, percent
from router.rules import RuleSet
from router.store.base import AlertRecord, IncidentRecord, PageRecord
from router.web.markdown import section_html

# The links a source sends with an alert (in the stored alert's details), as the page names them.
ALERT_LINKS = (
    ("generator_url", "source"),
    ("dashboard_url", "dashboard"),
    ("panel_url", "panel"),
    ("silence_url", "silence"),
)


def age(since: datetime, now: datetime) -> str:
    """`3m`, `2h5m`: how long ago, in the one duration format of the router."""
    return format_duration(max(now - since, timedelta(0)))


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident: IncidentRecord
    age: str
    next: NextStep | None


def incident_rows(
    routing: Routing, records: list[IncidentRecord], now: datetime
) -> list[IncidentRow]:
    return [
        IncidentRow(record, age(record.opened_at, now), next_escalation(routing, record))
        for record in records
    ]


@dataclass(frozen=True, slots=True)
class AlertView:
    alert: AlertRecord
    links: list[tuple[str, str]]
    value: str | None


def alert_view(alert: AlertRecord) -> AlertView:
    links = [
        (name, str(alert.details[key]))
        for key, name in ALERT_LINKS
        if isinstance(alert.details.get(key), str)
        and str(alert.details[key]).startswith(("http://", "https://"))
    ]
    value = alert.details.get("value")
    return AlertView(alert, links, None if value is None else str(value))


@dataclass(frozen=True, slots=True)
class RunbookView:
    """The section attached to an incident: where it is, how it was found, and its text."""

    heading: str
    path: str
    link: str
    method: str
    confidence: str | None
    html: str | None  # None when the section is gone from the runbooks since


def runbook_view(routing: Routing, runbook: dict[str, Any] | None) -> RunbookView | None:
    reference = PageRunbook.from_json(runbook)
    if reference is None:
        return None
    section = routing.section(reference)
    confidence = reference.confidence
    return RunbookView(
        heading=reference.heading,
        path=" › ".join(reference.path) or reference.heading,
        link=section.link(routing.rules.runbook_base_url) if section else reference.link,
        method=reference.method,
        confidence=percent(confidence) if confidence is not None else None,
        # markdown-it escapes the runbook's raw HTML itself (router/web/markdown.py).
        html=markupsafe.Markup(section_html(section.text)) if section else None,  # noqa: S704
    )


@dataclass(frozen=True, slots=True)
class DeliveryView:
    page: PageRecord
    delay: str | None  # from queued to delivered


def delivery_views(pages: list[PageRecord]) -> list[DeliveryView]:
    return [
        DeliveryView(
            page,
            _delay(page.delivered_at - page.created_at) if page.delivered_at else None,
        )
        for page in pages
    ]


def _delay(value: timedelta) -> str:
    # Most pages go out within a second: the tenths say more than `0s` would.
    seconds = value.total_seconds()
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(value)


@dataclass(frozen=True, slots=True)
class PolicyRow:
    policy: str
    severity: str
    steps: list[str]
    repeat: int


def policy_rows(rules: RuleSet) -> list[PolicyRow]:
    rows = []
    for policy in rules.policies.values():
        for severity, plan in policy.by_severity.items():
            steps = [
                f"{', '.join(step.tiers)}"
                + (f" (ack within {format_duration(step.ack_within)})" if step.ack_within else "")
                for step in plan.steps
            ]
            rows.append(PolicyRow(policy.name, severity, steps, plan.repeat))
    return rows


@dataclass(frozen=True, slots=True)
class RuleRow:
    name: str
    severity: str
    policy: str
    conditions: list[str]
    runbook: str | None
    section: str | None  # the heading path of the referenced section, None if not found
    source: str


def rule_rows(routing: Routing) -> list[RuleRow]:
    rows = []
    for rule in routing.rules.rules:
        conditions = [str(matcher) for matcher in rule.matchers]
        conditions += [str(condition) for condition in (rule.text, rule.value) if condition]
        section = routing.runbooks.get(rule.runbook) if rule.runbook else None
        rows.append(
            RuleRow(
                name=rule.name,
                severity=rule.severity,
                policy=rule.policy,
                conditions=conditions,
                runbook=rule.runbook,
                section=" › ".join(section.path) or section.heading if section else None,
                source=rule.source,
            )
        )
    return rows
