"""The statements of the write path, built once per dialect with bound parameters.

Building a SQLAlchemy statement and working out its cache key costs more than SQLite takes to run
it; a statement built once is compiled once and then only executed. `statements(dialect)` holds
those of the webhook and escalation paths; rarer ones are built where they are used.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from router.models import AlertStatus, PageEvent
from router.store import schema
from router.store.base import AlertChange

incidents, alerts, events, links, pages = (
    schema.incidents,
    schema.alerts,
    schema.events,
    schema.incident_alerts,
    schema.pages,
)

# "The incident is open", with the state written inline rather than bound: SQLite uses the
# partial index of open incidents only for a condition it can see implies the index's own.
OPEN = incidents.c.state != sa.literal_column("'resolved'")


def _inline(*values: str) -> list[sa.ColumnElement[Any]]:
    """Constants of an IN list written in the SQL, not bound: a statement run prepared
    (store/prepared.py) has one placeholder per parameter, not a list of them."""
    return [sa.literal_column(f"'{value}'") for value in values]


@functools.cache
def insert_ignore(dialect: str, table: sa.Table, keys: tuple[str, ...]) -> sa.Insert:
    """INSERT that does nothing when the row's unique key exists (RETURNING tells which).

    Built once per table: the row goes in as execute() parameters.
    """
    insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    return insert.on_conflict_do_nothing(index_elements=list(keys))


@dataclass(frozen=True)
class Statements:
    insert_alerts: sa.Insert  # RETURNING (id, fingerprint) of the instances that were new
    known_alerts: sa.Select[Any]  # id, fingerprint, status of (fingerprint, starts_at) pairs
    resolve_alert: sa.Update
    open_incident_by_key: sa.Select[Any]
    last_resolved_incident: sa.Select[Any]  # of a key, resolved since a time
    count_events: sa.Select[Any]  # of one kind, of an incident, since a time
    incident: sa.Select[Any]
    locked_incident: sa.Select[Any]
    open_incidents_of_alert: sa.Select[Any]
    firing_alerts: sa.Select[Any]
    insert_links: sa.Insert
    insert_events: sa.Insert
    count_alert_changes: dict[AlertChange, sa.Update]  # RETURNING the new count
    update_summary: sa.Update
    resolve_earlier: sa.Update  # RETURNING the ids of the instances it resolved
    insert_incident: sa.Insert  # RETURNING the whole row
    insert_pages: sa.Insert
    finish_page: sa.Update
    incidents_paged: sa.Select[Any]  # at most `at_most` incidents paged to `tier` since `since`
    claim_due_incidents: sa.Select[Any]  # at most `limit` whose next action is due at `now`


@functools.cache
def statements(dialect: str) -> Statements:
    def locked(query: sa.Select[Any]) -> sa.Select[Any]:
        # Row locks matter on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers already.
        return query.with_for_update() if dialect == "postgresql" else query

    return Statements(
        insert_alerts=insert_ignore(dialect, alerts, ("fingerprint", "starts_at")).returning(
            alerts.c.id, alerts.c.fingerprint
        ),
        known_alerts=locked(
            sa.select(alerts.c.id, alerts.c.fingerprint, alerts.c.status).where(
                sa.tuple_(alerts.c.fingerprint, alerts.c.starts_at).in_(
                    sa.bindparam("instances", expanding=True)
                )
            )
        ),
        resolve_alert=alerts.update()
        .where(alerts.c.id == sa.bindparam("alert_id"))
        .values(
            status=AlertStatus.RESOLVED.value,
            ends_at=sa.bindparam("resolved_at"),
            updated_at=sa.bindparam("now"),
        ),
        open_incident_by_key=locked(
            sa.select(incidents).where(incidents.c.key == sa.bindparam("incident_key"), OPEN)
        ),
        last_resolved_incident=locked(
            sa.select(incidents)
            .where(
                incidents.c.key == sa.bindparam("incident_key"),
                incidents.c.state == "resolved",
                incidents.c.resolved_at >= sa.bindparam("since"),
            )
            .order_by(incidents.c.resolved_at.desc(), incidents.c.id.desc())
            .limit(1)
        ),
        count_events=sa.select(sa.func.count())
        .select_from(events)
        .where(
            events.c.incident_id == sa.bindparam("incident_id"),
            events.c.kind == sa.bindparam("kind"),
            events.c.at >= sa.bindparam("since"),
        ),
        incident=sa.select(incidents).where(incidents.c.id == sa.bindparam("incident_id")),
        locked_incident=locked(
            sa.select(incidents).where(incidents.c.id == sa.bindparam("incident_id"))
        ),
        open_incidents_of_alert=locked(
            sa.select(incidents)
            .join(links, links.c.incident_id == incidents.c.id)
            .where(links.c.alert_id == sa.bindparam("alert_id"), OPEN)
        ),
        incidents_paged=sa.select(sa.func.count()).select_from(
            sa.select(pages.c.incident_id)
            .distinct()
            .where(
                pages.c.tier == sa.bindparam("tier"),
                pages.c.created_at > sa.bindparam("since"),
                pages.c.event.in_(_inline(PageEvent.TRIGGER, PageEvent.ESCALATE)),
                pages.c.incident_id != sa.bindparam("exclude"),
            )
            .limit(sa.bindparam("at_most"))
            .subquery()
        ),
        claim_due_incidents=sa.select(incidents)
        .where(incidents.c.next_action_at <= sa.bindparam("now", type_=schema.UTCDateTime))
        .order_by(incidents.c.next_action_at, incidents.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .with_for_update(skip_locked=True),
        firing_alerts=sa.select(sa.func.count())
        .select_from(links.join(alerts, alerts.c.id == links.c.alert_id))
        .where(
            links.c.incident_id == sa.bindparam("incident_id"),
            alerts.c.status == AlertStatus.FIRING.value,
        ),
        insert_links=insert_ignore(dialect, links, ("incident_id", "alert_id")),
        insert_events=events.insert(),
        count_alert_changes={
            change: incidents.update()
            .where(incidents.c.id == sa.bindparam("incident_id"))
            .values({column: column + sa.bindparam("added", type_=sa.Integer)})
            .returning(column)
            for change in AlertChange
            for column in (incidents.c[f"alerts_{change.value}"],)
        },
        update_summary=events.update()
        .where(
            events.c.incident_id == sa.bindparam("summary_incident"),
            events.c.kind == sa.bindparam("summary_kind"),
        )
        .values(at=sa.bindparam("latest_at"), detail=sa.bindparam("summary")),
        resolve_earlier=alerts.update()
        .where(
            alerts.c.fingerprint == sa.bindparam("resolved_fingerprint"),
            alerts.c.status == AlertStatus.FIRING.value,
            alerts.c.starts_at < sa.bindparam("resolved_start"),
        )
        .values(
            status=AlertStatus.RESOLVED.value,
            ends_at=sa.bindparam("resolved_at"),
            updated_at=sa.bindparam("now"),
        )
        .returning(alerts.c.id),
        insert_incident=incidents.insert().returning(*incidents.c),
        insert_pages=pages.insert(),
        finish_page=pages.update()
        .where(pages.c.id == sa.bindparam("page_id"))
        .values(
            {
                column: sa.bindparam(f"new_{column}")
                for column in (
                    "state",
                    "attempts",
                    "next_attempt_at",
                    "claimed_until",
                    "last_error",
                    "delivered_at",
                    "sent",
                )
            }
        ),
    )


@functools.cache
def update_incident(columns: tuple[str, ...]) -> sa.Update:
    """UPDATE of these columns of one incident; parameters `incident` and `new_<column>`."""
    return (
        incidents.update()
        .where(incidents.c.id == sa.bindparam("incident"))
        .values({column: sa.bindparam(f"new_{column}") for column in columns})
    )
