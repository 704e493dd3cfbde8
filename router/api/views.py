"""The JSON the incident API shows: made here from the store's records, never by the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.incidents import escalation
from router.incidents.escalation import NextAction
from router.routing import Routing
from router.store.base import AlertRecord, EventRecord, IncidentDetail, IncidentRecord, PageRecord


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True, slots=True)
class NextStep:
    at: datetime
    tiers: tuple[str, ...]


def next_escalation(routing: Routing, incident: IncidentRecord) -> NextStep | None:
    """When the incident escalates next and to whom, if nobody acknowledges; None if it won't."""
    progress = incident.progress
    if progress.next_action is not NextAction.ESCALATE or progress.next_action_at is None:
        return None
    context = routing.escalation_context(incident.policy, incident.severity)
    tiers = escalation.next_tiers(progress, context)
    return NextStep(progress.next_action_at, tiers) if tiers else None


def incident_json(record: IncidentRecord, routing: Routing) -> dict[str, Any]:
    """An incident as `GET /api/v1/incidents` lists it (docs/incidents.md); `next_tiers` are
    the tiers the next escalation pages, under the rules in force."""
    progress = record.progress
    following = next_escalation(routing, record)
    return {
        "id": record.id,
        "key": record.key,
        "state": record.state.value,
        "severity": record.severity,
        "title": record.title,
        "rule": record.rule,
        "policy": record.policy,
        "step": progress.step + 1,
        "round": progress.round,
        "next_action": progress.next_action.value if progress.next_action else None,
        "next_action_at": _iso(progress.next_action_at),
        "next_tiers": list(following.tiers) if following else None,
        "opened_at": _iso(record.opened_at),
        "acknowledged_at": _iso(record.acknowledged_at),
        "acknowledged_by": record.acknowledged_by,
        "resolved_at": _iso(record.resolved_at),
        "resolved_by": record.resolved_by,
        "reason": record.classification.get("reason"),
        "matched_rules": record.classification.get("matched_rules", []),
        "runbook": record.runbook,
        "runbook_candidates": record.classification.get("runbook_candidates", []),
    }


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "alertname": alert.alertname,
        "status": alert.status,
        "severity": alert.severity,
        "source": alert.source,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": _iso(alert.ends_at),
        **alert.details,
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    return {"at": event.at.isoformat(), "kind": event.kind, "detail": event.detail}


def page_json(page: PageRecord) -> dict[str, Any]:
    """A delivery as the incident API shows it (the page's title, not its whole body)."""
    return {
        "id": page.id,
        "event": page.event,
        "step": page.step + 1,
        "round": page.round,
        "tier": page.tier,
        "channel": page.channel_label,
        "state": page.state,
        "attempts": page.attempts,
        "created_at": page.created_at.isoformat(),
        "delivered_at": _iso(page.delivered_at),
        "last_error": page.last_error,
        "title": page.sent["title"] if page.sent else None,
    }


def detail_json(detail: IncidentDetail, routing: Routing) -> dict[str, Any]:
    """An incident with its alerts, timeline and deliveries (`GET /api/v1/incidents/{id}`)."""
    return {
        **incident_json(detail.incident, routing),
        "alerts": [alert_json(alert) for alert in detail.alerts],
        "timeline": [event_json(event) for event in detail.events],
        "pages": [page_json(page) for page in detail.pages],
    }
