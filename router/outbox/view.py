"""What a page template sees: the variables made from a page's context, and the filters.

`page_view` is the one place that turns a `PageContext` into template variables (`page`,
`incident`, `alert`, `runbook`, `runbook_candidates`, `ack_url`, `next_escalation`, `by`, and
`storm` on a storm page); the
filters (`shorten`, `when`, `label_pairs`) are the only functions templates call. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from router.outbox.context import PageContext
from router.runbooks.excerpt import cut_at_word

# How each event reads in a page.
STATUS = {
    "trigger": "triggered",
    "escalate": "escalated",
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "storm": "storm",
}

# Labels that say nothing an on-call reader does not see elsewhere in the page.
_DULL_LABELS = frozenset(
    {"alertname", "severity", "service", "__name__", "alertstate", "grafana_folder", "prometheus"}
)
# Labels that say where the problem is, most telling first.
_TELLING_LABELS = (
    "instance",
    "host",
    "pod",
    "node",
    "namespace",
    "cluster",
    "environment",
    "env",
    "region",
    "job",
    "container",
    "deployment",
    "component",
)
TELLING_LABEL_COUNT = 4


# How a page that is never sent (a dry run) names its incident.
DRY_RUN_INCIDENT = "(dry run)"


def page_view(
    event: str, context: PageContext, budget: int, timezone: str = "UTC"
) -> dict[str, Any]:
    """The variables of a page template, from the page's context; `timezone` is the rules' zone,
    which the `when` filter shows the page's times in."""
    zone = page_zone(timezone)
    alert = context.alert
    labels = dict(alert.labels)
    annotations = dict(alert.annotations)
    runbook = context.runbook
    following = context.next_escalation
    return {
        "page": {
            "event": event,
            "status": STATUS.get(event, event),
            "tier": context.tier,
            "step": context.step,
            "round": context.round,
        },
        "incident": {
            "id": DRY_RUN_INCIDENT if context.incident_id is None else context.incident_id,
            "key": context.incident_key,
            "title": context.title or alert.name or "alert",
            "severity": context.severity or "?",
            "opened_at": PageTime(context.opened_at, zone),
            "url": context.incident_url,
            "reason": context.reason,
            "matched_rules": list(context.matched_rules),
        },
        "alert": {
            "name": alert.name,
            "source": alert.source,
            "labels": labels,
            "annotations": annotations,
            "summary": annotations.get("summary") or annotations.get("title") or "",
            "description": annotations.get("description") or annotations.get("message") or "",
            "value": alert.value or "",
            "service": labels.get("service") or "",
            "telling_labels": telling_labels(labels),
            "starts_at": PageTime(alert.starts_at or context.opened_at, zone),
            "generator_url": alert.generator_url or "",
            "dashboard_url": alert.dashboard_url or "",
            "panel_url": alert.panel_url or "",
        },
        "runbook": runbook.to_json() if runbook else None,
        "runbook_candidates": [
            {"heading": p.heading, "link": p.link, "confidence": p.confidence}
            for p in context.possible_sections
        ],
        "runbook_excerpt": "",
        "ack_url": context.ack_url,
        "next_escalation": (
            {"at": PageTime(following.at, zone), "tiers": list(following.tiers)}
            if following
            else None
        ),
        "by": context.by,
        "storm": _storm_view(context),
        "budget": budget,
        "timezone": timezone,
    }


def _storm_view(context: PageContext) -> dict[str, Any] | None:
    storm = context.storm
    if storm is None:
        return None
    return {
        "id": storm.storm_id,
        "tier": storm.tier,
        "headline": storm.headline,
        "incidents": storm.incidents,
        "by_severity": [list(pair) for pair in storm.by_severity],
        "top_services": [list(pair) for pair in storm.top_services],
        "list_url": storm.list_url,
        "ended": storm.ended,
    }


def telling_labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """The labels that best say where the problem is: known place labels first, then the rest."""
    chosen = [(name, labels[name]) for name in _TELLING_LABELS if labels.get(name)]
    rest = sorted(
        (name, value)
        for name, value in labels.items()
        if value and name not in _DULL_LABELS and name not in _TELLING_LABELS
    )
    return (chosen + rest)[:TELLING_LABEL_COUNT]


def shorten(text: Any, limit: int, ellipsis: str = "…") -> str:
    """`text` on one line, cut at a word to at most `limit` characters, ending in `ellipsis`."""
    return cut_at_word(" ".join(str(text).split()), limit, ellipsis)


class PageTime(str):
    """A time of the page as templates see it: its ISO 8601 text, carrying the zone that the
    `when` filter shows it in. The zone travels with the value, so that `when` in a macro imported
    without the page's variables (`{% import "_macros.j2" as m %}`) still uses it."""

    zone: tzinfo

    def __new__(cls, text: str, zone: tzinfo) -> PageTime:
        made = super().__new__(cls, text)
        made.zone = zone
        return made


@cache
def page_zone(name: str | None) -> tzinfo:
    """The zone of an IANA name (the rules' `timezone`, which the loader checked); None is UTC."""
    return ZoneInfo(name) if name else UTC


def when(value: Any, zone: tzinfo | None = None) -> str:
    """An ISO 8601 time in `zone` (default: a `PageTime`'s own, else UTC), named:
    `2024-05-06 10:00 UTC`, `2026-12-07 14:03 CET`; None as `unknown`; anything else unchanged."""
    if zone is None:
        zone = value.zone if isinstance(value, PageTime) else UTC
    if value is None or value == "":
        return "unknown"
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def label_pairs(pairs: Iterable[tuple[str, str]], separator: str = ", ") -> str:
    return separator.join(f"{name}={value}" for name, value in pairs)
