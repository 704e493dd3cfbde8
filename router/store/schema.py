"""Table definitions shared by SQLite and PostgreSQL (SQLAlchemy Core).

Times are stored as whole microseconds since the Unix epoch (`UTCDateTime`): exact, comparable and
sortable the same way in both databases, and free of SQLite's time-zone-less text dates.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

SCHEMA_VERSION = 1

metadata = sa.MetaData()

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware datetime stored as microseconds since the epoch."""

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; times must be aware")
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        seconds, micros = divmod(int(value), 1_000_000)
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

# One row per alert instance: a fingerprint firing from `starts_at`. Redeliveries of the same
# instance (Alertmanager retries, HA peers) meet the unique key and change nothing.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("alertname", sa.String(255), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("annotations", sa.JSON, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("ends_at", UTCDateTime),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("fingerprint", "starts_at", name="uq_alerts_instance"),
)
sa.Index("ix_alerts_fingerprint_status", alerts.c.fingerprint, alerts.c.status)
