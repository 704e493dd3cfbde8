"""`Store` on SQLAlchemy Core (async): SQLite through aiosqlite, PostgreSQL through asyncpg.

SQLite runs in WAL mode with `synchronous=FULL`, so a committed transaction survives a crash of the
process and of the machine; a single connection serialises writers, which is what SQLite does anyway
and spares us its lock-upgrade deadlocks. PostgreSQL gets a small pool and shares work between
replicas with row locks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from router.errors import StoreError
from router.incidents.escalation import IncidentState
from router.models import AlertStatus, PageState
from router.store import schema
from router.store.base import (
    EventRecord,
    IncidentDetail,
    IncidentRecord,
    PageRecord,
    Pruned,
    Store,
    Transaction,
)
from router.store.rows import alert_record, incident_record, page_record
from router.store.sql_transaction import SqlTransaction, insert_ignore

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
            return [incident_record(row) for row in (await conn.execute(query)).mappings()]

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
            alerts = [
                alert_record(alert) for alert in (await conn.execute(alerts_query)).mappings()
            ]
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
            pages = [page_record(page) for page in (await conn.execute(pages_query)).mappings()]
        return IncidentDetail(incident_record(row), alerts, events, pages)

    async def list_pages(self, incident_id: int | None = None) -> list[PageRecord]:
        query = sa.select(schema.pages).order_by(schema.pages.c.id)
        if incident_id is not None:
            query = query.where(schema.pages.c.incident_id == incident_id)
        async with self._transaction("list pages") as conn:
            return [page_record(row) for row in (await conn.execute(query)).mappings()]

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
                    ).where(pages.c.state.in_((PageState.PENDING, PageState.SENDING)))
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
            sa.and_(pages.c.state == PageState.PENDING, pages.c.next_attempt_at <= now),
            # A claim that was never recorded: the process that held it died mid-send.
            sa.and_(pages.c.state == PageState.SENDING, pages.c.claimed_until <= now),
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
                    .values(state=PageState.SENDING, claimed_until=lease_until)
                )
        return [page_record(row) for row in rows]

    async def pending_pages(self) -> int:
        pages = schema.pages
        query = sa.select(sa.func.count()).where(
            pages.c.state.in_((PageState.PENDING, PageState.SENDING))
        )
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
                insert_ignore(self.dialect, table, ("name",)), {"name": name, "value": default}
            )
            found = await conn.execute(sa.select(table.c.value).where(table.c.name == name))
            return str(found.scalar_one())


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
