"""`Store` on SQLAlchemy Core (async): SQLite through aiosqlite, PostgreSQL through asyncpg.

SQLite runs in WAL mode with `synchronous=FULL`, so a committed transaction survives a crash of the
process and of the machine; a single connection serialises writers, which is what SQLite does anyway
and spares us its lock-upgrade deadlocks. PostgreSQL gets a small pool and shares work between
replicas with row locks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from router.errors import StoreError
from router.models import Alert, AlertStatus, Notification
from router.store import schema
from router.store.base import IngestResult, Store

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

    # --- alerts ---------------------------------------------------------------------------

    async def ingest(self, notification: Notification, received_at: datetime) -> IngestResult:
        counts = {"new": 0, "updated": 0, "duplicate": 0}
        async with self._transaction("store alerts") as conn:
            for alert in notification.alerts:
                counts[await self._ingest_alert(conn, alert, received_at)] += 1
        return IngestResult(**counts)

    async def _ingest_alert(self, conn: AsyncConnection, alert: Alert, now: datetime) -> str:
        """Store one alert instance: 'new', 'updated' (it resolved) or 'duplicate'."""
        starts_at = alert.starts_at or await self._legacy_start(conn, alert, now)
        inserted = await conn.execute(
            self._insert_ignoring_duplicates(
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
            )
        )
        if inserted.rowcount:
            return "new"
        if alert.status is not AlertStatus.RESOLVED:
            # A repeat, or a late retry of the firing notice after the resolution: no change.
            return "duplicate"
        table = schema.alerts
        resolved = await conn.execute(
            table.update()
            .where(
                table.c.fingerprint == alert.fingerprint,
                table.c.starts_at == starts_at,
                table.c.status == AlertStatus.FIRING.value,
            )
            .values(status=AlertStatus.RESOLVED.value, ends_at=alert.ends_at or now, updated_at=now)
        )
        return "updated" if resolved.rowcount else "duplicate"

    async def _legacy_start(self, conn: AsyncConnection, alert: Alert, now: datetime) -> datetime:
        """Legacy Grafana sends no start time: an alert fires from when it was first received
        and stays the same instance until it resolves."""
        table = schema.alerts
        current = await conn.execute(
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

    def _insert_ignoring_duplicates(self, row: dict[str, Any]) -> sa.Insert:
        keys = ["fingerprint", "starts_at"]
        if self.dialect == "sqlite":
            return (
                sqlite.insert(schema.alerts).values(row).on_conflict_do_nothing(index_elements=keys)
            )
        return (
            postgresql.insert(schema.alerts).values(row).on_conflict_do_nothing(index_elements=keys)
        )

    async def count_alerts(self) -> int:
        async with self._transaction("count alerts") as conn:
            return int(
                (
                    await conn.execute(sa.select(sa.func.count()).select_from(schema.alerts))
                ).scalar_one()
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
