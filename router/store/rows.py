"""Database rows as the store's records (store/base.py): the one place that reads columns back."""

from __future__ import annotations

from typing import Any

from router.incidents.escalation import IncidentState, NextAction, Progress
from router.models import PageEvent, PageState
from router.store.base import (
    AlertRecord,
    HeartbeatRecord,
    IncidentRecord,
    PageRecord,
)


def incident_record(row: Any) -> IncidentRecord:
    return IncidentRecord(
        id=int(row["id"]),
        key=row["key"],
        state=IncidentState(row["state"]),
        severity=row["severity"],
        rule=row["rule"],
        policy=row["policy"],
        title=row["title"],
        progress=Progress(
            state=IncidentState(row["state"]),
            step=int(row["step"]),
            round=int(row["round"]),
            next_action=NextAction(row["next_action"]) if row["next_action"] else None,
            next_action_at=row["next_action_at"],
        ),
        opened_at=row["opened_at"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        classification=dict(row["classification"] or {}),
        runbook=row["runbook"],
    )


def page_record(row: Any) -> PageRecord:
    return PageRecord(
        id=int(row["id"]),
        incident_id=int(row["incident_id"]),
        event=PageEvent(row["event"]),
        step=int(row["step"]),
        round=int(row["round"]),
        tier=row["tier"],
        channel=row["channel"],
        channel_index=int(row["channel_index"]),
        channel_label=row["channel_label"],
        context=dict(row["context"]),
        state=PageState(row["state"]),
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        deadline_at=row["deadline_at"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        last_error=row["last_error"],
        sent=row["sent"],
    )


def alert_record(row: Any) -> AlertRecord:
    return AlertRecord(
        id=int(row["id"]),
        fingerprint=row["fingerprint"],
        alertname=row["alertname"],
        status=row["status"],
        severity=row["severity"],
        source=row["source"],
        labels=dict(row["labels"]),
        annotations=dict(row["annotations"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        details=dict(row["details"]),
    )


def heartbeat_record(row: Any) -> HeartbeatRecord:
    return HeartbeatRecord(
        name=row["name"],
        last_beat_at=row["last_beat_at"],
        last_beat_via=row["last_beat_via"],
        missed_at=row["missed_at"],
    )
