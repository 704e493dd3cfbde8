"""Table definitions shared by SQLite and PostgreSQL (SQLAlchemy Core).

Times are stored as whole microseconds since the Unix epoch (`UTCDateTime`): exact, comparable and
sortable the same way in both databases, and free of SQLite's time-zone-less text dates.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

SCHEMA_VERSION = 4

# What each version adds to a database made by the one before (`SqlStore` applies them in order).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE incidents ADD COLUMN alerts_joined INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE incidents ADD COLUMN alerts_resolved INTEGER NOT NULL DEFAULT 0",
    ),
    # Flap detection finds the incident of a key that resolved last (ix_incidents_key_resolved).
    3: ("CREATE INDEX IF NOT EXISTS ix_incidents_key_resolved ON incidents (key, resolved_at)",),
    # The `storms` table is new (created whole at start); the pages of a tier are counted by it.
    4: ("CREATE INDEX IF NOT EXISTS ix_pages_tier ON pages (tier, created_at)",),
}

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

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# An incident: alerts that share an incident key, and where its escalation stands. At most one
# incident per key is open at a time (the partial unique index); a re-fire after resolution opens
# a new one.
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(32), nullable=False),
    sa.Column("rule", sa.String(255)),
    sa.Column("policy", sa.String(255), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("next_action", sa.String(16)),
    sa.Column("next_action_at", UTCDateTime),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("acknowledged_by", sa.String(255)),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", sa.String(255)),
    sa.Column("classification", sa.JSON, nullable=False),
    sa.Column("runbook", sa.JSON),
    # How many alerts joined the incident after the one that opened it, and how many of its
    # alerts resolved: the timeline lists the first few and sums up the rest in one note.
    sa.Column("alerts_joined", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alerts_resolved", sa.Integer, nullable=False, server_default="0"),
)
sa.Index(
    "uq_incidents_open_key",
    incidents.c.key,
    unique=True,
    sqlite_where=incidents.c.state != "resolved",
    postgresql_where=incidents.c.state != "resolved",
)
sa.Index("ix_incidents_due", incidents.c.next_action_at)
# The incident of a key that resolved last, for flap detection (a re-fire may reopen it).
sa.Index("ix_incidents_key_resolved", incidents.c.key, incidents.c.resolved_at)

# Which incident an alert instance belongs to (alerts that resolved unseen belong to none).
incident_alerts = sa.Table(
    "incident_alerts",
    metadata,
    sa.Column("incident_id", _ID, sa.ForeignKey("incidents.id"), primary_key=True),
    sa.Column("alert_id", _ID, sa.ForeignKey("alerts.id"), primary_key=True),
    sa.Column("severity", sa.String(32), nullable=False),
)
sa.Index("ix_incident_alerts_alert", incident_alerts.c.alert_id)

# The timeline: every decision about an incident, with its reason, in order.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("incident_id", _ID, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)
sa.Index("ix_events_incident", events.c.incident_id, events.c.id)

# The outbox: one row per delivery to one channel. The dispatcher claims due rows, sends outside
# any transaction, and records the outcome; a claim that is never recorded (a crash) expires and
# the row is sent again: at least once, never zero times.
pages = sa.Table(
    "pages",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("incident_id", _ID, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # trigger, escalate, acknowledge, resolve
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(255), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # pagerduty, apprise, log
    sa.Column("channel_index", sa.Integer, nullable=False),  # position in the tier's channels
    sa.Column("channel_label", sa.String(255), nullable=False),  # safe to show: no secret
    sa.Column("context", sa.JSON, nullable=False),  # what the page is about, rendered when sent
    sa.Column("sent", sa.JSON),  # {"title", "body"} as the channel sent it
    # pending, sending, delivered, failed; or folded (never sent: its tier was in a storm)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("deadline_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
)
sa.Index("ix_pages_due", pages.c.state, pages.c.next_attempt_at)
sa.Index("ix_pages_incident", pages.c.incident_id)
# How many incidents were paged to a tier lately: what decides an alert storm.
sa.Index("ix_pages_tier", pages.c.tier, pages.c.created_at)

# An alert storm of one tier: from the page that went beyond the threshold until a window passes
# with no more than the threshold (`ended_at`). Its storm pages are rows of `pages` (event
# `storm`) attached to an incident folded into it.
storms = sa.Table(
    "storms",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("tier", sa.String(255), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("last_page_at", UTCDateTime, nullable=False),
    # Incidents folded since the last storm page: an updated page is due then.
    sa.Column("update_due_at", UTCDateTime),
    sa.Column("folded", sa.Integer, nullable=False),  # pages folded into it, all told
    # The incident its next storm page is attached to (no foreign key: retention may delete it).
    sa.Column("last_incident_id", _ID, nullable=False),
)
sa.Index("ix_storms_tier", storms.c.tier, storms.c.ended_at)

# Small named values the router keeps for itself (the generated link-signing key).
settings_kv = sa.Table(
    "router_settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Nonces of acknowledgement links already used, and PagerDuty webhook ids already handled:
# a replayed link or a redelivered webhook changes nothing.
seen_tokens = sa.Table(
    "seen_tokens",
    metadata,
    sa.Column("token", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
)

# The last beat of each heartbeat of the rules (router/rules/heartbeats.py), shared by replicas
# and kept across restarts. `missed_at` is set when a miss opened an incident and cleared by the
# next beat: one miss opens one incident, even if it is resolved by hand while still silent.
# A new table needs no migration: `create_all` adds it to a database of an earlier version.
heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("last_beat_at", UTCDateTime),
    sa.Column("last_beat_via", sa.String(255)),
    sa.Column("missed_at", UTCDateTime),
)
# Maintenance windows made at run time (the API, `runbook-router maintenance add`); those of the
# rules live in the rules. Kept after they end, as a record; a name is reused only once its window
# has ended, which the API checks under an advisory lock on the name.
maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("matchers", sa.JSON, nullable=False),  # as written: ['service="ledger"']
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("include_p0", sa.Boolean, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),  # set to the time it was ended early
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
)
sa.Index("ix_maintenance_windows_ends", maintenance_windows.c.ends_at)
