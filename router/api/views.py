"""The JSON the incident API shows: made here from the store's records, never by the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from router.store.base import AlertRecord, EventRecord, IncidentDetail, IncidentRecord, PageRecord


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def incident_json(record: IncidentRecord) -> dict[str, Any]:
    """An incident as `GET /api/v1/incidents` lists it (docs/incidents.md)."""
    progress = record.progress
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


def detail_json(detail: IncidentDetail) -> dict[str, Any]:
    """An incident with its alerts, timeline and deliveries (`GET /api/v1/incidents/{id}`)."""
    return {
        **incident_json(detail.incident),
        "alerts": [alert_json(alert) for alert in detail.alerts],
        "timeline": [event_json(event) for event in detail.events],
        "pages": [page_json(page) for page in detail.pages],
    }
