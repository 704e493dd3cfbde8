"""The pages a dry run shows: what each channel of the first step's tiers would be sent.

`route` (docs/rules.md) renders the page per channel without sending or storing anything. The
context is built from the alert and its classification as the incident service would build it; what
only exists once an incident is stored reads as a placeholder (`<ack link>`: no link can be signed
in a dry run). PagerDuty's page is the Events API event itself (routing key left out); Apprise and
log pages are the title and body their templates give, in the target's format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.errors import DeliveryError
from router.models import Alert, PageEvent
from router.outbox.channels.base import Delivery, no_excerpt
from router.outbox.context import NextEscalation, PageContext, incident_context
from router.outbox.render import LOG_FORMAT, Renderer
from router.rules import Classification, RuleSet
from router.types import Excerpt

ACK_PLACEHOLDER = "<ack link>"
INCIDENT_URL_PLACEHOLDER = "<incident url>"


@dataclass(frozen=True, slots=True)
class PreviewPage:
    """One rendered page: `channel` is the target's label (`pagerduty`, `apprise:slack`, `log`)."""

    tier: str
    channel: str
    title: str
    body: str

    def to_json(self) -> dict[str, str]:
        return {"tier": self.tier, "channel": self.channel, "title": self.title, "body": self.body}


def preview_pages(
    ruleset: RuleSet,
    alert: Alert,
    classification: Classification,
    tiers: Sequence[str],
    opened_at: datetime,
    renderer: Renderer,
    *,
    runbook: Mapping[str, Any] | None = None,
    candidates: Sequence[Mapping[str, Any]] = (),
    excerpt: Excerpt | None = None,
    next_escalation: tuple[datetime, Sequence[str]] | None = None,
) -> list[PreviewPage]:
    """The trigger page of every channel of `tiers`, as the first step would send it.

    `runbook` is the section found for the alert (`file`, `anchor`, `heading`, `method`, `link`)
    and `excerpt` cuts it to a budget; without one, `candidates` are the searched sections the
    page lists as possible (`routing.candidate_json`); `next_escalation` is when and whom the next
    step pages. A template that fails shows as a page whose body is the error, so a dry run
    reports it.
    """
    from router.outbox.channels.apprise import page_format_for
    from router.outbox.channels.pagerduty import PagerDutyChannel

    pagerduty = PagerDutyChannel("http://pagerduty.invalid", renderer)
    pages = []
    for tier in tiers:
        channels = ruleset.tiers[tier].channels if tier in ruleset.tiers else ()
        for target in channels:
            context = preview_context(
                alert,
                classification,
                tier,
                opened_at,
                runbook=runbook,
                candidates=candidates,
                next_escalation=next_escalation,
                severity_rank=ruleset.rank(classification.severity),
            )
            delivery = Delivery(
                0,
                PageEvent.TRIGGER,
                tier,
                target,
                context,
                excerpt or no_excerpt,
                timezone=ruleset.timezone,
            )
            try:
                if target.kind == "pagerduty":
                    event = pagerduty.trigger_event(delivery)
                    title = str(event["payload"]["summary"])
                    body = json.dumps(event, indent=2, ensure_ascii=False)
                else:
                    fmt = (
                        page_format_for(target.target, target.label)
                        if target.kind == "apprise"
                        else LOG_FORMAT
                    )
                    page = renderer.render(
                        fmt, PageEvent.TRIGGER, context, excerpt, timezone=ruleset.timezone
                    )
                    title, body = page.title, page.body
            except DeliveryError as exc:
                title, body = "(not rendered)", str(exc)
            pages.append(PreviewPage(tier, target.label, title, body))
    return pages


def preview_context(
    alert: Alert,
    classification: Classification,
    tier: str,
    opened_at: datetime,
    *,
    runbook: Mapping[str, Any] | None = None,
    candidates: Sequence[Mapping[str, Any]] = (),
    next_escalation: tuple[datetime, Sequence[str]] | None = None,
    severity_rank: int | None = None,
) -> PageContext:
    """The context of a first page, as the incident service would queue it, with placeholders
    for what only a stored incident has (its number, its URL, the acknowledgement link)."""
    return incident_context(
        incident_id=None,
        incident_key=classification.incident_key,
        title=alert.title,
        severity=classification.severity,
        severity_rank=severity_rank,
        opened_at=opened_at.isoformat(),
        reason=classification.reason,
        matched_rules=classification.matched_rules,
        alert=alert.page_json(),
        runbook=runbook,
        candidates=candidates,
        incident_url=INCIDENT_URL_PLACEHOLDER,
    ).with_(
        tier=tier,
        event=PageEvent.TRIGGER,
        step=1,
        round=0,
        ack_url=ACK_PLACEHOLDER,
        next_escalation=(
            NextEscalation(next_escalation[0].isoformat(), tuple(next_escalation[1]))
            if next_escalation
            else None
        ),
    )


def format_pages(pages: Sequence[PreviewPage], indent: str = "    ") -> list[str]:
    """Lines for the human `route` output: each page's channel and title, then its body."""
    lines = []
    for page in pages:
        lines.append(f"{indent}{page.tier} via {page.channel}: {page.title}")
        lines += [f"{indent}  | {line}".rstrip() for line in page.body.splitlines()]
    return lines
