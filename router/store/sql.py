"""`Store` on SQLAlchemy Core: SQLite through the standard library, PostgreSQL through psycopg.

Statements run in database threads, never on the event loop: a transaction is one call into a
thread (router/store/writer.py). SQLite runs in WAL mode with `synchronous=FULL`, so a committed
transaction survives a crash of the process and of the machine; one writer thread owns the only
connection that writes and commits the transactions that wait together with one fsync, while reads
use their own connections (WAL lets them read beside the writer). PostgreSQL runs each transaction
on a small pool of threads and shares work between replicas with row locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from router.errors import ConfigError, StoreError
from router.incidents.escalation import IncidentState
from router.logs import fields
from router.maintenance.windows import Window
from router.models import AlertStatus, PageState
from router.store import maintenance, schema
from router.store.base import (
    EventRecord,
    HeartbeatRecord,
    IncidentDetail,
    IncidentFilter,
    IncidentRecord,
    PageRecord,
    Pruned,
    Store,
    Transaction,
)
from router.store.rows import alert_record, heartbeat_record, incident_record, page_record
from router.store.sql_transaction import SqlTransaction
from router.store.statements import insert_ignore
from router.store.writer import GroupWriter, PooledWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

# Threads (and connections) for PostgreSQL transactions, and for SQLite reads.
POSTGRESQL_THREADS = 8
SQLITE_READERS = 2
# The row of `router_settings` that readiness rewrites to prove that the database takes writes.
HEARTBEAT = "heartbeat"


def sync_url(database_url: str) -> str:
    """The SQLAlchemy URL, with its driver, for a `ROUTER_DATABASE_URL`."""
    if database_url.startswith("sqlite:///"):
        return database_url
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url.removeprefix(prefix)
    raise StoreError(f"unsupported database URL scheme: {database_url.split(':', 1)[0]}")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class SqlStore(Store):
    def __init__(self, database_url: str) -> None:
        self._url = sync_url(database_url)
        self._sqlite_path = (
            database_url.removeprefix("sqlite:///") if database_url.startswith("sqlite") else None
        )
        self._engine: Engine | None = None  # writes (and, on PostgreSQL, reads)
        self._read_engine: Engine | None = None  # SQLite reads
        self._writer: GroupWriter | PooledWriter | None = None
        self._readers: ThreadPoolExecutor | None = None

    @property
    def dialect(self) -> str:
        return "sqlite" if self._sqlite_path is not None else "postgresql"

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._sqlite_path == ":memory:":
            raise ConfigError("open database: an in-memory database loses every alert; give a file")
        try:
            await asyncio.to_thread(self._open)
        except BaseException as exc:
            # Leave nothing half open: start() is tried again while the database fails.
            await self.close()
            if isinstance(exc, SQLAlchemyError | OSError):
                raise StoreError(f"open database: {exc}") from exc
            raise

    def _open(self) -> None:
        engine = self._create_engine()
        with engine.begin() as conn:
            schema.metadata.create_all(conn)
            self._check_schema_version(conn)
        self._engine = engine
        if self._sqlite_path is None:
            self._writer = PooledWriter(engine, POSTGRESQL_THREADS)
        else:
            self._writer = GroupWriter(engine)
            self._read_engine = sa.create_engine(
                self._url,
                json_serializer=_json,
                json_deserializer=orjson.loads,
                pool_size=SQLITE_READERS,
                max_overflow=0,
                connect_args={"check_same_thread": False},
            )
            event.listen(self._read_engine, "connect", _configure_sqlite_connection)
            event.listen(self._read_engine, "begin", _begin_deferred)
            self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="router-db-read")
        self._writer.start()

    def _create_engine(self) -> Engine:
        json_options: dict[str, Any] = {"json_serializer": _json, "json_deserializer": orjson.loads}
        if self._sqlite_path is None:
            return sa.create_engine(
                self._url,
                pool_size=POSTGRESQL_THREADS,
                max_overflow=2,
                pool_pre_ping=True,
                **json_options,
            )
        assert self._sqlite_path is not None
        Path(self._sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        # The writer thread opens the one writing connection and keeps it.
        engine = sa.create_engine(self._url, poolclass=NullPool, **json_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_immediate)
        return engine

    def _check_schema_version(self, conn: Connection) -> None:
        found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
        if found is None:
            conn.execute(
                schema.schema_version.insert().values(
                    version=schema.SCHEMA_VERSION, applied_at=datetime.now(UTC)
                )
            )
        elif found > schema.SCHEMA_VERSION:
            raise ConfigError(
                f"database schema version {found} is newer than this runbook-router "
                f"({schema.SCHEMA_VERSION}); upgrade runbook-router"
            )
        else:
            for version in range(found + 1, schema.SCHEMA_VERSION + 1):
                for statement in schema.MIGRATIONS[version]:
                    conn.exec_driver_sql(statement)
                conn.execute(
                    schema.schema_version.insert().values(
                        version=version, applied_at=datetime.now(UTC)
                    )
                )
                log.info("database schema upgraded", extra=fields(version=version))

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.close)
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        for engine in (self._engine, self._read_engine):
            if engine is not None:
                engine.dispose()
        self._engine = self._read_engine = None

    async def write(
        self,
        what: str,
        work: Callable[[Transaction], T],
        weight: int = 1,
        *,
        bulk: bool = False,
    ) -> T:
        def run(conn: Connection) -> T:
            tx = SqlTransaction(conn, self.dialect)
            result = work(tx)
            tx.flush()
            return result

        return await self._submit(what, run, weight, bulk=bulk)

    async def _submit(
        self, what: str, work: Callable[[Connection], T], weight: int = 1, *, bulk: bool = False
    ) -> T:
        if self._writer is None:
            raise StoreError(f"{what}: the store is not started")
        return await self._writer.submit(what, work, weight, bulk=bulk)

    async def _read(self, what: str, work: Callable[[Connection], T]) -> T:
        """A read-only transaction: beside the writer on SQLite, on the pool on PostgreSQL."""
        if self._read_engine is None or self._readers is None:
            return await self._submit(what, work)
        engine = self._read_engine

        def run() -> T:
            try:
                with engine.begin() as conn:
                    return work(conn)
            except (SQLAlchemyError, OSError) as exc:
                raise StoreError(f"{what}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def ping(self) -> None:
        await self._read("ping", lambda conn: conn.execute(sa.text("SELECT 1")))

    # --- alerts ---------------------------------------------------------------------------

    async def count_alerts(self) -> int:
        query = sa.select(sa.func.count()).select_from(schema.alerts)
        return await self._read("count alerts", lambda conn: int(conn.execute(query).scalar_one()))

    # --- reads ----------------------------------------------------------------------------

    async def list_incidents(
        self, states: Sequence[IncidentState] | None, limit: int
    ) -> list[IncidentRecord]:
        table = schema.incidents
        query = sa.select(table).order_by(table.c.opened_at.desc(), table.c.id.desc()).limit(limit)
        if states:
            query = query.where(table.c.state.in_([state.value for state in states]))
        return await self._read(
            "list incidents",
            lambda conn: [incident_record(row) for row in conn.execute(query).mappings()],
        )

    async def search_incidents(
        self, where: IncidentFilter, limit: int, offset: int = 0
    ) -> list[IncidentRecord]:
        table = schema.incidents
        order = (table.c.opened_at.desc(), table.c.id.desc())
        query = sa.select(table).order_by(*order).limit(limit).offset(offset)
        if where.states:
            query = query.where(table.c.state.in_([state.value for state in where.states]))
        if where.severity:
            query = query.where(table.c.severity == where.severity)
        if where.service:
            # The key is `rule|name=value|...`: the value is followed by `|` or ends the key.
            pair = f"|service={where.service}"
            query = query.where(
                sa.or_(
                    table.c.key.contains(f"{pair}|", autoescape=True),
                    table.c.key.endswith(pair, autoescape=True),
                )
            )
        if where.text:
            needle = where.text.lower()
            query = query.where(
                sa.or_(
                    sa.func.lower(table.c.title).contains(needle, autoescape=True),
                    sa.func.lower(table.c.key).contains(needle, autoescape=True),
                )
            )
        return await self._read(
            "search incidents",
            lambda conn: [incident_record(row) for row in conn.execute(query).mappings()],
        )

    async def incident_detail(self, incident_id: int) -> IncidentDetail | None:
        return await self._read("read incident", lambda conn: _incident_detail(conn, incident_id))

    async def list_pages(self, incident_id: int | None = None) -> list[PageRecord]:
        query = sa.select(schema.pages).order_by(schema.pages.c.id)
        if incident_id is not None:
            query = query.where(schema.pages.c.incident_id == incident_id)
        return await self._read(
            "list pages", lambda conn: [page_record(row) for row in conn.execute(query).mappings()]
        )

    async def next_due(self) -> datetime | None:
        incidents, pages = schema.incidents, schema.pages
        incident_due = sa.select(sa.func.min(incidents.c.next_action_at)).where(
            incidents.c.next_action_at.is_not(None)
        )
        page_due = sa.select(
            sa.func.min(sa.func.coalesce(pages.c.claimed_until, pages.c.next_attempt_at))
        ).where(pages.c.state.in_((PageState.PENDING, PageState.SENDING)))

        def earliest(conn: Connection) -> datetime | None:
            # min() and coalesce() keep the column type, so these come back as datetimes.
            dues: list[datetime] = [
                due
                for due in (conn.execute(incident_due).scalar(), conn.execute(page_due).scalar())
                if due is not None
            ]
            return min(dues) if dues else None

        return await self._read("find next due time", earliest)

    async def count_open_incidents(self) -> dict[tuple[str, str], int]:
        table = schema.incidents
        query = (
            sa.select(table.c.severity, table.c.state, sa.func.count())
            .where(table.c.state != IncidentState.RESOLVED.value)
            .group_by(table.c.severity, table.c.state)
        )
        return await self._read(
            "count open incidents",
            lambda conn: {(row[0], row[1]): int(row[2]) for row in conn.execute(query)},
        )

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

        def claim(conn: Connection) -> list[PageRecord]:
            rows = list(conn.execute(query).mappings())
            if rows:
                conn.execute(
                    pages.update()
                    .where(pages.c.id.in_([row["id"] for row in rows]))
                    .values(state=PageState.SENDING, claimed_until=lease_until)
                )
            return [page_record(row) for row in rows]

        return await self._submit("claim due pages", claim)

    async def pending_pages(self) -> int:
        pages = schema.pages
        query = sa.select(sa.func.count()).where(
            pages.c.state.in_((PageState.PENDING, PageState.SENDING))
        )
        return await self._read(
            "count pending pages", lambda conn: int(conn.execute(query).scalar_one())
        )

    @property
    def shared(self) -> bool:
        return self._sqlite_path is None

    async def release_claims(self) -> int:
        pages = schema.pages

        def release(conn: Connection) -> int:
            released = conn.execute(
                pages.update()
                .where(pages.c.state == PageState.SENDING)
                .values(state=PageState.PENDING, claimed_until=None)
            )
            return released.rowcount or 0

        return await self._submit("release page claims", release)

    async def renew_claims(self, page_ids: Sequence[int], until: datetime) -> None:
        pages = schema.pages
        renew = (
            pages.update()
            .where(pages.c.id.in_(list(page_ids)), pages.c.state == PageState.SENDING)
            .values(claimed_until=until)
        )
        await self._submit("renew page claims", lambda conn: conn.execute(renew))

    async def check_writable(self, now: datetime) -> None:
        table = schema.settings_kv
        value = {"name": HEARTBEAT, "value": now.isoformat()}
        if self.dialect == "sqlite":
            upsert: Any = sqlite_insert(table).values(value)
        else:
            upsert = postgresql_insert(table).values(value)
        upsert = upsert.on_conflict_do_update(
            index_elements=[table.c.name], set_={"value": value["value"]}
        )
        await self._submit(
            "check that the database accepts writes", lambda conn: conn.execute(upsert)
        )

    async def prune(self, before: datetime, limit: int) -> Pruned:
        return await self._submit("delete old data", lambda conn: _prune(conn, before, limit))

    async def heartbeats(self) -> dict[str, HeartbeatRecord]:
        query = sa.select(schema.heartbeats)

        def read(conn: Connection) -> dict[str, HeartbeatRecord]:
            records = (heartbeat_record(row) for row in conn.execute(query).mappings())
            return {record.name: record for record in records}

        return await self._read("read heartbeats", read)

    async def list_maintenance_windows(self, after: datetime) -> list[Window]:
        return await self._read(
            "list maintenance windows",
            lambda conn: maintenance.windows_ending_after(conn, after),
        )

    async def setting(self, name: str, default: str) -> str:
        table = schema.settings_kv

        def read_or_store(conn: Connection) -> str:
            conn.execute(
                insert_ignore(self.dialect, table, ("name",)), {"name": name, "value": default}
            )
            found = conn.execute(sa.select(table.c.value).where(table.c.name == name))
            return str(found.scalar_one())

        return await self._submit("read router setting", read_or_store)


def _incident_detail(conn: Connection, incident_id: int) -> IncidentDetail | None:
    row = (
        conn.execute(sa.select(schema.incidents).where(schema.incidents.c.id == incident_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    alerts_query = (
        sa.select(schema.alerts, schema.incident_alerts.c.severity.label("severity"))
        .join(schema.incident_alerts, schema.incident_alerts.c.alert_id == schema.alerts.c.id)
        .where(schema.incident_alerts.c.incident_id == incident_id)
        .order_by(schema.alerts.c.id)
    )
    alerts = [alert_record(alert) for alert in conn.execute(alerts_query).mappings()]
    events_query = (
        sa.select(schema.events)
        .where(schema.events.c.incident_id == incident_id)
        .order_by(schema.events.c.id)
    )
    events = [
        EventRecord(event["at"], event["kind"], event["detail"])
        for event in conn.execute(events_query).mappings()
    ]
    pages_query = (
        sa.select(schema.pages)
        .where(schema.pages.c.incident_id == incident_id)
        .order_by(schema.pages.c.id)
    )
    pages = [page_record(page) for page in conn.execute(pages_query).mappings()]
    return IncidentDetail(incident_record(row), alerts, events, pages)


def _prune(conn: Connection, before: datetime, limit: int) -> Pruned:
    incidents, links = schema.incidents, schema.incident_alerts
    alerts, tokens = schema.alerts, schema.seen_tokens
    old = (
        conn.execute(
            sa.select(incidents.c.id)
            .where(
                incidents.c.state == IncidentState.RESOLVED.value,
                incidents.c.resolved_at < before,
            )
            .order_by(incidents.c.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if old:
        for table in (schema.events, schema.pages, links):
            conn.execute(table.delete().where(table.c.incident_id.in_(old)))
        conn.execute(incidents.delete().where(incidents.c.id.in_(old)))
    held = sa.select(links.c.alert_id).where(links.c.alert_id == alerts.c.id).exists()
    gone_alerts = conn.execute(
        alerts.delete().where(
            alerts.c.status == AlertStatus.RESOLVED.value,
            alerts.c.updated_at < before,
            ~held,
        )
    )
    gone_tokens = conn.execute(tokens.delete().where(tokens.c.seen_at < before))
    return Pruned(len(old), gone_alerts.rowcount or 0, gone_tokens.rowcount or 0)


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


def _begin_deferred(conn: Any) -> None:
    # A read sees one snapshot of the database, taken at its first statement.
    conn.exec_driver_sql("BEGIN")


def _begin_immediate(conn: Any) -> None:
    # Take the write lock at the start, so that a read-then-write transaction never has to
    # upgrade its lock (which SQLite answers with SQLITE_BUSY rather than waiting).
    conn.exec_driver_sql("BEGIN IMMEDIATE")
