"""The writes of one transaction on SQLAlchemy Core: alerts, incidents, events and the outbox.

`SqlStore.write` runs a function of a `SqlTransaction` inside one database transaction, in the
store's database thread; every method is one statement or a few, so a webhook's writes commit
together or not at all (docs/architecture.md, "Transactions: what is atomic").

Alert links and timeline notes, the many small rows of a storm, are kept back and written in one
executemany: before any query that could read them, and when the work ends (`flush`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from router.incidents.escalation import Progress
from router.maintenance.windows import Window
from router.models import Alert, AlertStatus, PageEvent, PageState
from router.outbox.context import PageContext
from router.store import maintenance, schema
from router.store.base import (
    ALERT_NOTES_LISTED,
    AlertChange,
    HeartbeatRecord,
    IncidentRecord,
    NewPage,
    PagedChannel,
    StoredAlert,
    StormRecord,
    TierPaged,
    Transaction,
)
from router.store.prepared import Prepared, prepare
from router.store.rows import heartbeat_record, incident_record
from router.store.statements import insert_ignore, statements, update_incident


class SqlTransaction(Transaction):
    """`Transaction` over one SQLAlchemy connection inside `engine.begin()`."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self._conn = conn
        self._dialect = dialect
        self._sql = statements(dialect)
        self._links: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._alert_notes: dict[tuple[int, AlertChange], list[tuple[datetime, Alert]]] = {}
        self._storms_locked = False
        # SQLite runs the statements of this module compiled once (store/prepared.py).
        self._prepared = dialect == "sqlite"

    # --- running statements: prepared on SQLite, through SQLAlchemy on PostgreSQL ----------

    def _prepare(self, statement: sa.Executable, values: Mapping[str, Any]) -> Prepared:
        # An INSERT is compiled for the columns it writes (those of its values).
        keys = tuple(values) if isinstance(statement, sa.Insert) else ()
        return prepare(self._conn, statement, keys)

    def _rows(self, statement: sa.Executable, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        if self._prepared:
            return list(self._prepare(statement, values).rows(self._conn, values))
        return list(self._conn.execute(statement, dict(values)).all())

    def _mappings(
        self, statement: sa.Executable, values: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        if self._prepared:
            return list(self._prepare(statement, values).mappings(self._conn, values))
        return [dict(row) for row in self._conn.execute(statement, dict(values)).mappings()]

    def _first(
        self, statement: sa.Executable, values: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        found = self._mappings(statement, values)
        return found[0] if found else None

    def _scalar(self, statement: sa.Executable, values: Mapping[str, Any]) -> Any:
        return self._rows(statement, values)[0][0]

    def _write(self, statement: sa.Executable, rows: Sequence[Mapping[str, Any]]) -> int:
        """A statement without results, once per row (one executemany); the rows it changed."""
        if self._prepared:
            return self._prepare(statement, rows[0]).run_many(self._conn, rows)
        return int(self._conn.execute(statement, [dict(row) for row in rows]).rowcount)

    # --- the transaction's work -----------------------------------------------------------

    def flush(self) -> None:
        """Write the links and notes kept back."""
        if self._alert_notes:
            notes, self._alert_notes = self._alert_notes, {}
            for (incident_id, change), changes in notes.items():
                self._write_alert_notes(incident_id, change, changes)
        if self._links:
            links, self._links = self._links, []
            self._write(self._sql.insert_links, links)
        if self._events:
            events, self._events = self._events, []
            self._write(self._sql.insert_events, events)

    def store_alerts(
        self, alerts: Sequence[Alert], received: Sequence[datetime]
    ) -> list[StoredAlert]:
        stored: list[StoredAlert] = []
        # A run of alerts with distinct fingerprints is written in one statement of each kind;
        # a fingerprint seen again starts a new run, so that it meets its earlier instance.
        run: list[tuple[Alert, datetime]] = []
        in_run: set[str] = set()
        for alert, now in zip(alerts, received, strict=True):
            if alert.fingerprint in in_run:
                stored += self._store_run(run)
                run, in_run = [], set()
            run.append((alert, now))
            in_run.add(alert.fingerprint)
        if run:
            stored += self._store_run(run)
        return stored

    def _store_run(self, run: list[tuple[Alert, datetime]]) -> list[StoredAlert]:
        conn = self._conn
        alerts = [alert for alert, _ in run]
        starts = [alert.starts_at or self._legacy_start(alert, now) for alert, now in run]
        rows = [
            {
                "fingerprint": alert.fingerprint,
                "starts_at": starts_at,
                "source": alert.source.value,
                "status": alert.status.value,
                "alertname": alert.name[:255],
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "details": _details(alert),
                "ends_at": alert.ends_at,
                "received_at": now,
                "updated_at": now,
            }
            for (alert, now), starts_at in zip(run, starts, strict=True)
        ]
        new = {fingerprint: int(new_id) for new_id, fingerprint in self._inserted_alerts(rows)}
        seen = [
            (alert.fingerprint, starts_at)
            for alert, starts_at in zip(alerts, starts, strict=True)
            if alert.fingerprint not in new
        ]
        known: dict[str, tuple[int, str]] = {}
        if seen:
            known = {
                fingerprint: (int(id_), status)
                for id_, fingerprint, status in conn.execute(
                    self._sql.known_alerts, {"instances": seen}
                )
            }
        stored: list[StoredAlert] = []
        resolutions: list[dict[str, Any]] = []
        for alert, now in run:
            if alert.fingerprint in new:
                stored.append(StoredAlert(new[alert.fingerprint], "new", alert.firing))
                continue
            alert_id, status = known[alert.fingerprint]
            if alert.status is not AlertStatus.RESOLVED or status != AlertStatus.FIRING.value:
                # A repeat, or a late retry of the firing notice after the resolution: no change.
                stored.append(
                    StoredAlert(alert_id, "duplicate", status == AlertStatus.FIRING.value)
                )
                continue
            resolutions.append(
                {"alert_id": alert_id, "resolved_at": alert.ends_at or now, "now": now}
            )
            stored.append(StoredAlert(alert_id, "updated", False))
        if resolutions:
            self._write(self._sql.resolve_alert, resolutions)
        return [
            self._resolve_earlier(alert, starts_at, now, found)
            if alert.status is AlertStatus.RESOLVED
            else found
            for (alert, now), starts_at, found in zip(run, starts, stored, strict=True)
        ]

    def _resolve_earlier(
        self, alert: Alert, starts_at: datetime, now: datetime, stored: StoredAlert
    ) -> StoredAlert:
        """A resolution resolves every firing instance of its fingerprint that started before it:
        a resolved notice may carry a later start than the firing one that was stored."""
        earlier = self._rows(
            self._sql.resolve_earlier,
            {
                "resolved_fingerprint": alert.fingerprint,
                "resolved_start": starts_at,
                "resolved_at": alert.ends_at or now,
                "now": now,
            },
        )
        ids = tuple(int(row[0]) for row in earlier)
        return dataclasses.replace(stored, earlier=ids) if ids else stored

    def _inserted_alerts(self, rows: list[dict[str, Any]]) -> list[Sequence[Any]]:
        """(id, fingerprint) of the rows that were new (the others met their unique key)."""
        if self._prepared:
            prepared = self._prepare(self._sql.insert_alerts, rows[0])
            return list(prepared.insert_rows(self._conn, rows))
        return list(self._conn.execute(self._sql.insert_alerts, rows).all())

    def _legacy_start(self, alert: Alert, now: datetime) -> datetime:
        """Legacy Grafana sends no start time: an alert fires from when it was first received
        and stays the same instance until it resolves."""
        table = schema.alerts
        current = self._conn.execute(
            sa.select(table.c.starts_at)
            .where(
                table.c.fingerprint == alert.fingerprint,
                table.c.status == AlertStatus.FIRING.value,
            )
            .order_by(table.c.starts_at.desc())
            .limit(1)
        )
        found: datetime | None = current.scalar()
        return found or now

    def lock_incident_keys(self, keys: Sequence[str]) -> None:
        # Two replicas receiving alerts of one new incident at once would both find no open
        # incident and both insert one. A transaction-scoped advisory lock per key makes the
        # second wait for the first to commit. Taken in sorted order, so that two transactions
        # never wait for each other. SQLite serialises every writer already.
        if self._dialect != "postgresql":
            return
        for key in sorted(set(keys)):
            self._conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0)))
            )

    def open_incident_by_key(self, key: str) -> IncidentRecord | None:
        row = self._first(self._sql.open_incident_by_key, {"incident_key": key})
        return incident_record(row) if row else None

    def last_resolved_incident(self, key: str, since: datetime) -> IncidentRecord | None:
        row = self._first(self._sql.last_resolved_incident, {"incident_key": key, "since": since})
        return incident_record(row) if row else None

    def count_events(self, incident_id: int, kind: str, since: datetime) -> int:
        self.flush()
        values = {"incident_id": incident_id, "kind": kind, "since": since}
        return int(self._scalar(self._sql.count_events, values))

    def incident(self, incident_id: int, *, lock: bool = True) -> IncidentRecord | None:
        query = self._sql.locked_incident if lock else self._sql.incident
        row = self._first(query, {"incident_id": incident_id})
        return incident_record(row) if row else None

    def open_incidents_of_alert(self, alert_id: int) -> list[IncidentRecord]:
        self.flush()
        found = self._mappings(self._sql.open_incidents_of_alert, {"alert_id": alert_id})
        return [incident_record(row) for row in found]

    def create_incident(
        self,
        *,
        key: str,
        severity: str,
        rule: str | None,
        policy: str,
        title: str,
        progress: Progress,
        opened_at: datetime,
        classification: dict[str, Any],
        runbook: dict[str, Any] | None,
    ) -> IncidentRecord:
        values = {
            "key": key,
            "severity": severity,
            "rule": rule,
            "policy": policy,
            "title": title,
            "opened_at": opened_at,
            "classification": classification,
            "runbook": runbook,
            **_progress_columns(progress),
        }
        return incident_record(self._mappings(self._sql.insert_incident, values)[0])

    def update_incident(self, incident_id: int, progress: Progress, **fields: Any) -> None:
        columns = {**_progress_columns(progress), **fields}
        self._write(
            update_incident(tuple(columns)),
            [
                {
                    "incident": incident_id,
                    **{f"new_{name}": value for name, value in columns.items()},
                }
            ],
        )

    def link_alert(self, incident_id: int, alert_id: int, severity: str) -> None:
        self._links.append({"incident_id": incident_id, "alert_id": alert_id, "severity": severity})

    def firing_alerts(self, incident_id: int) -> int:
        self.flush()
        return int(self._scalar(self._sql.firing_alerts, {"incident_id": incident_id}))

    def add_event(self, incident_id: int, at: datetime, kind: str, detail: str) -> None:
        self._events.append({"incident_id": incident_id, "at": at, "kind": kind, "detail": detail})

    def note_alert(self, incident_id: int, at: datetime, change: AlertChange, alert: Alert) -> None:
        self._alert_notes.setdefault((incident_id, change), []).append((at, alert))

    def _write_alert_notes(
        self, incident_id: int, change: AlertChange, changes: list[tuple[datetime, Alert]]
    ) -> None:
        """The first ALERT_NOTES_LISTED alerts of a kind get a note each; the rest one note."""
        counted = self._scalar(
            self._sql.count_alert_changes[change],
            {"incident_id": incident_id, "added": len(changes)},
        )
        before = int(counted) - len(changes)
        listed = max(0, ALERT_NOTES_LISTED - before)
        for at, alert in changes[:listed]:
            self.add_event(incident_id, at, "alert", f"{alert.description} {change.value}")
        if len(changes) <= listed:
            return
        at, latest = changes[-1]
        kind = f"alerts_{change.value}"
        detail = (
            f"{int(counted) - ALERT_NOTES_LISTED} more alerts {change.value}, "
            f"latest {latest.description}"
        )
        updated = self._write(
            self._sql.update_summary,
            [
                {
                    "summary_incident": incident_id,
                    "summary_kind": kind,
                    "latest_at": at,
                    "summary": detail,
                }
            ],
        )
        if not updated:
            self.add_event(incident_id, at, kind, detail)

    def enqueue_pages(self, pages: Sequence[NewPage]) -> None:
        if not pages:
            return
        self._write(
            self._sql.insert_pages,
            [
                {
                    "incident_id": page.incident_id,
                    "event": page.event,
                    "step": page.step,
                    "round": page.round,
                    "tier": page.tier,
                    "channel": page.channel,
                    "channel_index": page.channel_index,
                    "channel_label": page.channel_label,
                    "context": page.context.to_json(),
                    "state": page.state,
                    "attempts": 0,
                    "next_attempt_at": page.due_at,
                    "deadline_at": page.deadline_at,
                    "created_at": page.due_at,
                }
                for page in pages
            ],
        )

    def paged_channels(self, incident_id: int) -> list[PagedChannel]:
        pages = schema.pages
        query = (
            sa.select(pages.c.tier, pages.c.channel, pages.c.channel_index, pages.c.channel_label)
            .where(
                pages.c.incident_id == incident_id,
                pages.c.event.in_((PageEvent.TRIGGER, PageEvent.ESCALATE)),
                pages.c.state != PageState.FOLDED,
            )
            .group_by(pages.c.tier, pages.c.channel, pages.c.channel_index, pages.c.channel_label)
            .order_by(sa.func.min(pages.c.id))
        )
        return [PagedChannel(*row) for row in self._conn.execute(query)]

    # --- alert storms ---------------------------------------------------------------------

    def lock_storms(self) -> None:
        # One lock for every tier, taken once per transaction: transactions that fold pages
        # then never wait for each other in a cycle. SQLite serialises every writer already.
        if self._dialect != "postgresql" or self._storms_locked:
            return
        self._conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_STORM_LOCK)))
        self._storms_locked = True

    def incidents_paged(
        self, tier: str, since: datetime, at_most: int, *, exclude: int | None = None
    ) -> int:
        # No incident has id 0: excluding it excludes none.
        parameters = {"tier": tier, "since": since, "at_most": at_most, "exclude": exclude or 0}
        return int(self._scalar(self._sql.incidents_paged, parameters))

    def tier_paged(self, tier: str, since: datetime, until: datetime) -> list[TierPaged]:
        pages, incidents = schema.pages, schema.incidents
        paged = (
            sa.select(
                pages.c.incident_id,
                sa.func.min(pages.c.event).label("event"),  # "escalate" < "trigger"
            )
            .where(
                pages.c.tier == tier,
                pages.c.created_at > since,
                pages.c.created_at <= until,
                pages.c.event.in_((PageEvent.TRIGGER, PageEvent.ESCALATE)),
            )
            .group_by(pages.c.incident_id)
            .subquery()
        )
        query = (
            sa.select(
                incidents.c.id, incidents.c.severity, incidents.c.classification, paged.c.event
            )
            .join(paged, paged.c.incident_id == incidents.c.id)
            .order_by(incidents.c.id)
        )
        return [
            TierPaged(int(id_), severity, classification or {}, event == PageEvent.ESCALATE)
            for id_, severity, classification, event in self._conn.execute(query)
        ]

    def open_storm(self, tier: str) -> StormRecord | None:
        storms = schema.storms
        row = (
            self._conn.execute(
                sa.select(storms).where(storms.c.tier == tier, storms.c.ended_at.is_(None))
            )
            .mappings()
            .first()
        )
        return _storm(row) if row else None

    def storms_to_watch(self) -> list[StormRecord]:
        storms = schema.storms
        query = (
            sa.select(storms)
            .where(sa.or_(storms.c.ended_at.is_(None), storms.c.update_due_at.is_not(None)))
            .order_by(storms.c.id)
        )
        return [_storm(row) for row in self._conn.execute(query).mappings()]

    def start_storm(self, tier: str, now: datetime, incident_id: int) -> StormRecord:
        storms = schema.storms
        values = {
            "tier": tier,
            "started_at": now,
            "last_page_at": now,
            "folded": 0,
            "last_incident_id": incident_id,
        }
        row = self._conn.execute(storms.insert().values(values).returning(storms)).mappings().one()
        return _storm(row)

    def update_storm(self, storm_id: int, **columns: Any) -> None:
        storms = schema.storms
        self._conn.execute(storms.update().where(storms.c.id == storm_id).values(**columns))

    def refresh_storm_pages(
        self, tier: str, since: datetime, context: Callable[[], PageContext]
    ) -> int:
        pages = schema.pages
        waiting = (
            pages.c.tier == tier,
            pages.c.event == PageEvent.STORM,
            pages.c.state == PageState.PENDING,
            pages.c.created_at >= since,
        )
        if self._conn.execute(sa.select(pages.c.id).where(*waiting).limit(1)).first() is None:
            return 0
        updated = self._conn.execute(
            pages.update().where(*waiting).values(context=context().with_(tier=tier).to_json())
        )
        return int(updated.rowcount)

    def claim_due_incidents(self, now: datetime, limit: int) -> list[IncidentRecord]:
        due = self._mappings(self._sql.claim_due_incidents, {"now": now, "limit": limit})
        return [incident_record(row) for row in due]

    def finish_page(
        self,
        page_id: int,
        *,
        state: str,
        attempts: int,
        next_attempt_at: datetime,
        error: str | None,
        now: datetime,
        sent: dict[str, str] | None = None,
    ) -> None:
        self._write(
            self._sql.finish_page,
            [
                {
                    "page_id": page_id,
                    "new_state": state,
                    "new_attempts": attempts,
                    "new_next_attempt_at": next_attempt_at,
                    "new_claimed_until": None,
                    "new_last_error": error,
                    "new_delivered_at": now if state is PageState.DELIVERED else None,
                    "new_sent": sent,
                }
            ],
        )

    def remember_token(self, token: str, kind: str, now: datetime) -> bool:
        row = {"token": token, "kind": kind, "seen_at": now}
        # RETURNING rather than rowcount, which psycopg does not report for ON CONFLICT inserts.
        insert = insert_ignore(self._dialect, schema.seen_tokens, ("token",))
        return (
            self._conn.execute(insert.returning(schema.seen_tokens.c.token), row).first()
            is not None
        )

    def heartbeat(self, name: str) -> HeartbeatRecord | None:
        table = schema.heartbeats
        row = self._conn.execute(sa.select(table).where(table.c.name == name)).mappings().first()
        return heartbeat_record(row) if row else None

    def record_beat(self, name: str, at: datetime, via: str) -> None:
        table = schema.heartbeats
        self._conn.execute(insert_ignore(self._dialect, table, ("name",)), {"name": name})
        later = sa.or_(table.c.last_beat_at.is_(None), table.c.last_beat_at <= at)
        beat_at = sa.literal(at, type_=table.c.last_beat_at.type)
        self._conn.execute(
            table.update()
            .where(table.c.name == name)
            .values(
                last_beat_at=sa.case((later, beat_at), else_=table.c.last_beat_at),
                last_beat_via=sa.case((later, via[:255]), else_=table.c.last_beat_via),
                missed_at=None,
            )
        )

    def mark_missed(self, name: str, at: datetime) -> None:
        table = schema.heartbeats
        self._conn.execute(insert_ignore(self._dialect, table, ("name",)), {"name": name})
        self._conn.execute(table.update().where(table.c.name == name).values(missed_at=at))

    # --- maintenance windows made at run time ---------------------------------------------------

    def maintenance_windows(self, after: datetime) -> list[Window]:
        return maintenance.windows_ending_after(self._conn, after)

    def firing_alert_labels(self, incident_id: int) -> list[dict[str, str]]:
        self.flush()
        alerts, links = schema.alerts, schema.incident_alerts
        query = (
            sa.select(alerts.c.labels)
            .join(links, links.c.alert_id == alerts.c.id)
            .where(links.c.incident_id == incident_id, alerts.c.status == AlertStatus.FIRING.value)
        )
        return [dict(labels) for labels in self._conn.execute(query).scalars()]

    def add_maintenance_window(self, window: Window, now: datetime) -> None:
        maintenance.insert_window(self._conn, window, now)

    def end_maintenance_window(self, name: str, now: datetime) -> Window | None:
        return maintenance.end_window(self._conn, name, now)

    def wake_suppressed(self, now: datetime) -> int:
        return maintenance.wake_suppressed(self._conn, now)


# The advisory lock of the storm counts (any fixed number that no incident key hashes to often).
_STORM_LOCK = 0x5354_4F52_4D00


def _storm(row: Any) -> StormRecord:
    return StormRecord(
        id=int(row["id"]),
        tier=row["tier"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        last_page_at=row["last_page_at"],
        update_due_at=row["update_due_at"],
        folded=int(row["folded"]),
        last_incident_id=int(row["last_incident_id"]),
    )


def _progress_columns(progress: Progress) -> dict[str, Any]:
    return {
        "state": progress.state.value,
        "step": progress.step,
        "round": progress.round,
        "next_action": progress.next_action.value if progress.next_action else None,
        "next_action_at": progress.next_action_at,
    }


def _details(alert: Alert) -> dict[str, Any]:
    """What an alert carries beyond labels and annotations, for pages and the API."""
    return {
        key: value for key, value in alert.details_json().items() if value not in (None, {}, "")
    }
