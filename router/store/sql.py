"""`Store` on SQLAlchemy Core (async): SQLite through aiosqlite, PostgreSQL through asyncpg.

SQLite runs in WAL mode with `synchronous=FULL`, so a committed transaction survives a crash of the
process and of the machine; a single connection serialises writers, which is what SQLite does anyway
and spares us its lock-upgrade deadlocks. PostgreSQL gets a small pool and shares work between
replicas with row locks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from router.errors import StoreError
from router.incidents.escalation import IncidentState, NextAction, Progress
from router.models import Alert, AlertStatus
from router.store import schema
from router.store.base import (
    AlertRecord,
    EventRecord,
    IncidentDetail,
    IncidentRecord,
    NewPage,
    PagedChannel,
    PageRecord,
    Pruned,
    Store,
    StoredAlert,
    Transaction,
)

log = logging.getLogger(__name__)


def async_url(database_url: str) -> str:
    """The SQLAlchemy URL, with the async driver, for a `ROUTER_DATABASE_URL`."""
    if database_url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + database_url.removeprefix("sqlite:///")
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+asyncpg://" + database_url.removeprefix(prefix)
    raise StoreError(f"unsupported database URL scheme: {database_url.split(':', 1)[0]}")


class SqlStore(Store):
    def __init__(self, database_url: str) -> None:
        self._url = async_url(database_url)
        self._sqlite_path = (
            database_url.removeprefix("sqlite:///") if database_url.startswith("sqlite") else None
        )
        self._engine: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        return "sqlite" if self._sqlite_path is not None else "postgresql"

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._engine = self._create_engine()
            async with self._engine.begin() as conn:
                await conn.run_sync(schema.metadata.create_all)
                await self._check_schema_version(conn)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"open database: {exc}") from exc

    def _create_engine(self) -> AsyncEngine:
        if self._sqlite_path is None:
            return create_async_engine(self._url, pool_size=10, max_overflow=5, pool_pre_ping=True)
        if self._sqlite_path != ":memory:":
            Path(self._sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self._url, pool_size=1, max_overflow=0, pool_timeout=30)
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine

    async def _check_schema_version(self, conn: AsyncConnection) -> None:
        found = (
            await conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
        ).scalar()
        if found is None:
            await conn.execute(
                schema.schema_version.insert().values(
                    version=schema.SCHEMA_VERSION, applied_at=datetime.now(UTC)
                )
            )
        elif found > schema.SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {found} is newer than this runbook-router "
                f"({schema.SCHEMA_VERSION}); upgrade runbook-router"
            )

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[AsyncConnection]:
        """One transaction; any database failure becomes StoreError naming `what`."""
        if self._engine is None:
            raise StoreError(f"{what}: the store is not started")
        try:
            async with self._engine.begin() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"{what}: {exc}") from exc

    async def ping(self) -> None:
        async with self._transaction("ping") as conn:
            await conn.execute(sa.text("SELECT 1"))

    def transaction(self, what: str) -> AbstractAsyncContextManager[Transaction]:
        return self._sql_transaction(what)

    @asynccontextmanager
    async def _sql_transaction(self, what: str) -> AsyncIterator[Transaction]:
        async with self._transaction(what) as conn:
            yield SqlTransaction(conn, self.dialect)

    # --- alerts ---------------------------------------------------------------------------

    async def count_alerts(self) -> int:
        async with self._transaction("count alerts") as conn:
            query = sa.select(sa.func.count()).select_from(schema.alerts)
            return int((await conn.execute(query)).scalar_one())

    # --- reads ----------------------------------------------------------------------------

    async def list_incidents(
        self, states: Sequence[IncidentState] | None, limit: int
    ) -> list[IncidentRecord]:
        table = schema.incidents
        query = sa.select(table).order_by(table.c.opened_at.desc(), table.c.id.desc()).limit(limit)
        if states:
            query = query.where(table.c.state.in_([state.value for state in states]))
        async with self._transaction("list incidents") as conn:
            return [_incident(row) for row in (await conn.execute(query)).mappings()]

    async def incident_detail(self, incident_id: int) -> IncidentDetail | None:
        async with self._transaction("read incident") as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(schema.incidents).where(schema.incidents.c.id == incident_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            alerts_query = (
                sa.select(schema.alerts, schema.incident_alerts.c.severity.label("severity"))
                .join(
                    schema.incident_alerts, schema.incident_alerts.c.alert_id == schema.alerts.c.id
                )
                .where(schema.incident_alerts.c.incident_id == incident_id)
                .order_by(schema.alerts.c.id)
            )
            alerts = [_alert(alert) for alert in (await conn.execute(alerts_query)).mappings()]
            events_query = (
                sa.select(schema.events)
                .where(schema.events.c.incident_id == incident_id)
                .order_by(schema.events.c.id)
            )
            events = [
                EventRecord(event["at"], event["kind"], event["detail"])
                for event in (await conn.execute(events_query)).mappings()
            ]
            pages_query = (
                sa.select(schema.pages)
                .where(schema.pages.c.incident_id == incident_id)
                .order_by(schema.pages.c.id)
            )
            pages = [_page(page) for page in (await conn.execute(pages_query)).mappings()]
        return IncidentDetail(_incident(row), alerts, events, pages)

    async def list_pages(self, incident_id: int | None = None) -> list[PageRecord]:
        query = sa.select(schema.pages).order_by(schema.pages.c.id)
        if incident_id is not None:
            query = query.where(schema.pages.c.incident_id == incident_id)
        async with self._transaction("list pages") as conn:
            return [_page(row) for row in (await conn.execute(query)).mappings()]

    async def next_due(self) -> datetime | None:
        incidents, pages = schema.incidents, schema.pages
        async with self._transaction("find next due time") as conn:
            incident_due = (
                await conn.execute(
                    sa.select(sa.func.min(incidents.c.next_action_at)).where(
                        incidents.c.next_action_at.is_not(None)
                    )
                )
            ).scalar()
            page_due = (
                await conn.execute(
                    sa.select(
                        sa.func.min(
                            sa.func.coalesce(pages.c.claimed_until, pages.c.next_attempt_at)
                        )
                    ).where(pages.c.state.in_(("pending", "sending")))
                )
            ).scalar()
        # min() and coalesce() keep the column type, so these come back as datetimes.
        dues: list[datetime] = [due for due in (incident_due, page_due) if due is not None]
        return min(dues) if dues else None

    async def count_open_incidents(self) -> dict[tuple[str, str], int]:
        table = schema.incidents
        query = (
            sa.select(table.c.severity, table.c.state, sa.func.count())
            .where(table.c.state != IncidentState.RESOLVED.value)
            .group_by(table.c.severity, table.c.state)
        )
        async with self._transaction("count open incidents") as conn:
            return {(row[0], row[1]): int(row[2]) for row in await conn.execute(query)}

    # --- outbox ---------------------------------------------------------------------------

    async def claim_due_pages(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> list[PageRecord]:
        pages = schema.pages
        due = sa.or_(
            sa.and_(pages.c.state == "pending", pages.c.next_attempt_at <= now),
            # A claim that was never recorded: the process that held it died mid-send.
            sa.and_(pages.c.state == "sending", pages.c.claimed_until <= now),
        )
        query = (
            sa.select(pages)
            .where(due)
            .order_by(pages.c.next_attempt_at, pages.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._transaction("claim due pages") as conn:
            rows = list((await conn.execute(query)).mappings())
            if rows:
                await conn.execute(
                    pages.update()
                    .where(pages.c.id.in_([row["id"] for row in rows]))
                    .values(state="sending", claimed_until=lease_until)
                )
        return [_page(row) for row in rows]

    async def pending_pages(self) -> int:
        pages = schema.pages
        query = sa.select(sa.func.count()).where(pages.c.state.in_(("pending", "sending")))
        async with self._transaction("count pending pages") as conn:
            return int((await conn.execute(query)).scalar_one())

    async def prune(self, before: datetime, limit: int) -> Pruned:
        incidents, links = schema.incidents, schema.incident_alerts
        alerts, tokens = schema.alerts, schema.seen_tokens
        async with self._transaction("delete old data") as conn:
            old = (
                (
                    await conn.execute(
                        sa.select(incidents.c.id)
                        .where(
                            incidents.c.state == IncidentState.RESOLVED.value,
                            incidents.c.resolved_at < before,
                        )
                        .order_by(incidents.c.id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            if old:
                for table in (schema.events, schema.pages, links):
                    await conn.execute(table.delete().where(table.c.incident_id.in_(old)))
                await conn.execute(incidents.delete().where(incidents.c.id.in_(old)))
            held = sa.select(links.c.alert_id).where(links.c.alert_id == alerts.c.id).exists()
            gone_alerts = await conn.execute(
                alerts.delete().where(
                    alerts.c.status == AlertStatus.RESOLVED.value,
                    alerts.c.updated_at < before,
                    ~held,
                )
            )
            gone_tokens = await conn.execute(tokens.delete().where(tokens.c.seen_at < before))
        return Pruned(len(old), gone_alerts.rowcount or 0, gone_tokens.rowcount or 0)

    async def setting(self, name: str, default: str) -> str:
        table = schema.settings_kv
        async with self._transaction("read router setting") as conn:
            await conn.execute(
                _insert_ignore(self.dialect, table, ("name",)), {"name": name, "value": default}
            )
            found = await conn.execute(sa.select(table.c.value).where(table.c.name == name))
            return str(found.scalar_one())


class SqlTransaction(Transaction):
    """`Transaction` over one SQLAlchemy connection inside `engine.begin()`."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self._conn = conn
        self._dialect = dialect

    def _locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        # Row locks matter only on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers.
        return query.with_for_update() if self._dialect == "postgresql" else query

    async def store_alert(self, alert: Alert, now: datetime) -> StoredAlert:
        conn = self._conn
        table = schema.alerts
        starts_at = alert.starts_at or await self._legacy_start(alert, now)
        row = {
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
        insert = _insert_ignore(self._dialect, table, ("fingerprint", "starts_at"))
        new_id = (await conn.execute(insert.returning(table.c.id), row)).scalar()
        if new_id is not None:
            return StoredAlert(int(new_id), "new", alert.firing)
        found = await conn.execute(
            sa.select(table.c.id, table.c.status).where(
                table.c.fingerprint == alert.fingerprint, table.c.starts_at == starts_at
            )
        )
        alert_id, status = found.one()
        alert_id = int(alert_id)
        if alert.status is not AlertStatus.RESOLVED:
            # A repeat, or a late retry of the firing notice after the resolution: no change.
            return StoredAlert(alert_id, "duplicate", status == AlertStatus.FIRING.value)
        resolved = await conn.execute(
            table.update()
            .where(table.c.id == alert_id, table.c.status == AlertStatus.FIRING.value)
            .values(status=AlertStatus.RESOLVED.value, ends_at=alert.ends_at or now, updated_at=now)
        )
        return StoredAlert(alert_id, "updated" if resolved.rowcount else "duplicate", False)

    async def _legacy_start(self, alert: Alert, now: datetime) -> datetime:
        """Legacy Grafana sends no start time: an alert fires from when it was first received
        and stays the same instance until it resolves."""
        table = schema.alerts
        current = await self._conn.execute(
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

    async def lock_incident_keys(self, keys: Sequence[str]) -> None:
        # Two replicas receiving alerts of one new incident at once would both find no open
        # incident and both insert one. A transaction-scoped advisory lock per key makes the
        # second wait for the first to commit. Taken in sorted order, so that two transactions
        # never wait for each other. SQLite serialises every writer already.
        if self._dialect != "postgresql":
            return
        for key in sorted(set(keys)):
            await self._conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0)))
            )

    async def open_incident_by_key(self, key: str) -> IncidentRecord | None:
        table = schema.incidents
        query = sa.select(table).where(
            table.c.key == key, table.c.state != IncidentState.RESOLVED.value
        )
        row = (await self._conn.execute(self._locked(query))).mappings().first()
        return _incident(row) if row else None

    async def incident(self, incident_id: int, *, lock: bool = True) -> IncidentRecord | None:
        query = sa.select(schema.incidents).where(schema.incidents.c.id == incident_id)
        if lock:
            query = self._locked(query)
        row = (await self._conn.execute(query)).mappings().first()
        return _incident(row) if row else None

    async def open_incidents_of_alert(self, alert_id: int) -> list[IncidentRecord]:
        table, links = schema.incidents, schema.incident_alerts
        query = (
            sa.select(table)
            .join(links, links.c.incident_id == table.c.id)
            .where(links.c.alert_id == alert_id, table.c.state != IncidentState.RESOLVED.value)
        )
        return [
            _incident(row) for row in (await self._conn.execute(self._locked(query))).mappings()
        ]

    async def create_incident(
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
        result = await self._conn.execute(schema.incidents.insert().values(values))
        incident_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        record = await self.incident(incident_id, lock=False)
        assert record is not None
        return record

    async def update_incident(self, incident_id: int, progress: Progress, **fields: Any) -> None:
        await self._conn.execute(
            schema.incidents.update()
            .where(schema.incidents.c.id == incident_id)
            .values(**_progress_columns(progress), **fields)
        )

    async def link_alert(self, incident_id: int, alert_id: int, severity: str) -> bool:
        row = {"incident_id": incident_id, "alert_id": alert_id, "severity": severity}
        result = await self._conn.execute(
            _insert_ignore(self._dialect, schema.incident_alerts, ("incident_id", "alert_id")), row
        )
        return bool(result.rowcount)

    async def firing_alerts(self, incident_id: int) -> int:
        alerts, links = schema.alerts, schema.incident_alerts
        query = (
            sa.select(sa.func.count())
            .select_from(links.join(alerts, alerts.c.id == links.c.alert_id))
            .where(links.c.incident_id == incident_id, alerts.c.status == AlertStatus.FIRING.value)
        )
        return int((await self._conn.execute(query)).scalar_one())

    async def add_event(self, incident_id: int, at: datetime, kind: str, detail: str) -> None:
        await self._conn.execute(
            schema.events.insert(),
            {"incident_id": incident_id, "at": at, "kind": kind, "detail": detail},
        )

    async def enqueue_pages(self, pages: Sequence[NewPage]) -> None:
        if not pages:
            return
        await self._conn.execute(
            schema.pages.insert(),
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
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": page.due_at,
                    "deadline_at": page.deadline_at,
                    "created_at": page.due_at,
                }
                for page in pages
            ],
        )

    async def paged_channels(self, incident_id: int) -> list[PagedChannel]:
        pages = schema.pages
        query = (
            sa.select(pages.c.tier, pages.c.channel, pages.c.channel_index, pages.c.channel_label)
            .where(pages.c.incident_id == incident_id, pages.c.event.in_(("trigger", "escalate")))
            .group_by(pages.c.tier, pages.c.channel, pages.c.channel_index, pages.c.channel_label)
            .order_by(sa.func.min(pages.c.id))
        )
        return [PagedChannel(*row) for row in await self._conn.execute(query)]

    async def claim_due_incidents(self, now: datetime, limit: int) -> list[IncidentRecord]:
        table = schema.incidents
        query = (
            sa.select(table)
            .where(table.c.next_action_at <= now)
            .order_by(table.c.next_action_at, table.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_incident(row) for row in (await self._conn.execute(query)).mappings()]

    async def finish_page(
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
        await self._conn.execute(
            schema.pages.update()
            .where(schema.pages.c.id == page_id)
            .values(
                state=state,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                claimed_until=None,
                last_error=error,
                delivered_at=now if state == "delivered" else None,
                sent=sent,
            )
        )

    async def remember_token(self, token: str, kind: str, now: datetime) -> bool:
        row = {"token": token, "kind": kind, "seen_at": now}
        result = await self._conn.execute(
            _insert_ignore(self._dialect, schema.seen_tokens, ("token",)), row
        )
        return bool(result.rowcount)


@functools.cache
def _insert_ignore(dialect: str, table: sa.Table, keys: tuple[str, ...]) -> sa.Insert:
    """INSERT that does nothing when the row's unique key exists (rowcount tells which).

    Built once per table: the row goes in as execute() parameters, which spares building a
    statement per row on the webhook path.
    """
    insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    return insert.on_conflict_do_nothing(index_elements=list(keys))


def _progress_columns(progress: Progress) -> dict[str, Any]:
    return {
        "state": progress.state.value,
        "step": progress.step,
        "round": progress.round,
        "next_action": progress.next_action.value if progress.next_action else None,
        "next_action_at": progress.next_action_at,
    }


def _incident(row: Any) -> IncidentRecord:
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


def _page(row: Any) -> PageRecord:
    return PageRecord(
        id=int(row["id"]),
        incident_id=int(row["incident_id"]),
        event=row["event"],
        step=int(row["step"]),
        round=int(row["round"]),
        tier=row["tier"],
        channel=row["channel"],
        channel_index=int(row["channel_index"]),
        channel_label=row["channel_label"],
        context=dict(row["context"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        deadline_at=row["deadline_at"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        last_error=row["last_error"],
        sent=row["sent"],
    )


def _alert(row: Any) -> AlertRecord:
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


def _details(alert: Alert) -> dict[str, Any]:
    """What an alert carries beyond labels and annotations, for pages and the API."""
    document = alert.to_json()
    for key in ("source", "status", "fingerprint", "labels", "annotations", "starts_at", "ends_at"):
        document.pop(key)
    return {key: value for key, value in document.items() if value not in (None, {}, "")}


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of the driver's lazy BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    # Take the write lock at the start, so that a read-then-write transaction never has to
    # upgrade its lock (which SQLite answers with SQLITE_BUSY rather than waiting).
    conn.exec_driver_sql("BEGIN IMMEDIATE")
