"""The stored alert history, read without writing: what `replay` and `check --coverage` replay.

It opens the database on its own read-only connection, never through `SqlStore`, which creates
tables, upgrades the schema and starts writer threads: SQLite is opened with `mode=ro` (the
file must exist: a missing one is an error, not a new database; SQLite may still create the
`-wal` and `-shm` side files that every reader of a WAL database shares), PostgreSQL in a
`READ ONLY` transaction. So a replay can run against the database of a running daemon, or a copy
of it, and change none of its data.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from router.errors import StoreError
from router.history import History, HistoryAlert, HistoryIncident
from router.models import Alert, AlertStatus, Source
from router.store import maintenance, schema
from router.store.sql import sync_url


def read_only_url(database_url: str) -> str:
    """The SQLAlchemy URL that opens `database_url` without the right to write."""
    url = sync_url(database_url)
    if not url.startswith("sqlite:///"):
        return url
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        raise StoreError(f"no database file at {path}")
    return f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"


def read_history(database_url: str, since: datetime, until: datetime) -> History:
    """Every alert received in [since, until) with its incident; StoreError when unreadable."""
    engine = sa.create_engine(
        read_only_url(database_url),
        json_deserializer=orjson.loads,
        poolclass=sa.pool.NullPool,
    )
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            return _read(conn, since, until)
    except SQLAlchemyError as exc:
        raise StoreError(f"read the alert history: {exc}") from exc
    finally:
        engine.dispose()


def _read(conn: sa.Connection, since: datetime, until: datetime) -> History:
    alerts, links, incidents = schema.alerts, schema.incident_alerts, schema.incidents
    first_incident = (
        sa.select(links.c.alert_id, sa.func.min(links.c.incident_id).label("incident_id"))
        .group_by(links.c.alert_id)
        .subquery()
    )
    window = sa.and_(alerts.c.received_at >= since, alerts.c.received_at < until)
    query = (
        sa.select(alerts, first_incident.c.incident_id)
        .outerjoin(first_incident, first_incident.c.alert_id == alerts.c.id)
        .where(window)
        .order_by(alerts.c.received_at, alerts.c.id)
    )
    history = tuple(_history_alert(row) for row in conn.execute(query).mappings())
    held = (
        sa.select(links.c.incident_id)
        .join(alerts, alerts.c.id == links.c.alert_id)
        .where(window)
        .distinct()
    )
    incident_rows = conn.execute(
        sa.select(
            incidents.c.id,
            incidents.c.key,
            incidents.c.severity,
            incidents.c.opened_at,
            incidents.c.acknowledged_at,
            incidents.c.resolved_at,
            incidents.c.runbook,
        ).where(incidents.c.id.in_(held))
    ).mappings()
    found = {
        int(row["id"]): HistoryIncident(
            id=int(row["id"]),
            key=row["key"],
            severity=row["severity"],
            opened_at=row["opened_at"],
            acknowledged_at=row["acknowledged_at"],
            resolved_at=row["resolved_at"],
            **_runbook_reference(row["runbook"]),
        )
        for row in incident_rows
    }
    windows = tuple(maintenance.windows_in_force_during(conn, since, until))
    return History(since, until, history, found, windows)


def _runbook_reference(runbook: Any) -> dict[str, str | None]:
    """The `file#anchor` and content hash an incident's runbook JSON records (hashes are kept
    since schema version 2; older incidents have none)."""
    if not isinstance(runbook, dict) or not runbook.get("file"):
        return {}
    anchor = runbook.get("anchor") or ""
    reference = f"{runbook['file']}#{anchor}" if anchor else str(runbook["file"])
    found = runbook.get("content_hash")
    return {"runbook": reference, "runbook_hash": str(found) if found else None}


def _history_alert(row: Any) -> HistoryAlert:
    details: dict[str, Any] = dict(row["details"] or {})
    status = AlertStatus(row["status"])
    # The alert as it was when it fired: that is what the rules classified.
    alert = Alert(
        source=Source(row["source"]),
        status=AlertStatus.FIRING,
        fingerprint=row["fingerprint"],
        labels=dict(row["labels"]),
        annotations=dict(row["annotations"]),
        starts_at=row["starts_at"],
        generator_url=details.get("generator_url"),
        dashboard_url=details.get("dashboard_url"),
        panel_url=details.get("panel_url"),
        silence_url=details.get("silence_url"),
        image_url=details.get("image_url"),
        values=details.get("values") or {},
        value_string=details.get("value_string"),
        group_key=details.get("group_key"),
    )
    # A resolution is stored by setting the status and `updated_at` (the moment it arrived).
    resolved_at = row["updated_at"] if status is AlertStatus.RESOLVED else None
    incident_id = row["incident_id"]
    return HistoryAlert(
        id=int(row["id"]),
        alert=alert,
        received_at=row["received_at"],
        resolved_at=resolved_at,
        incident_id=int(incident_id) if incident_id is not None else None,
    )
