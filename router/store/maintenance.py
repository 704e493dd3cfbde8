"""The maintenance windows made at run time, in the `maintenance_windows` table.

Rows come back as `maintenance.Window`s, their matchers parsed again (they were checked when the
window was made). `SqlTransaction` and `SqlStore` call these on their connection.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from router.incidents.escalation import IncidentState
from router.maintenance.windows import Window, run_time_window
from router.store import schema

table = schema.maintenance_windows


def windows_ending_after(conn: Connection, after: datetime) -> list[Window]:
    """The windows that have not ended by `after` (started or not), the soonest to end first."""
    query = sa.select(table).where(table.c.ends_at > after).order_by(table.c.ends_at, table.c.id)
    return [_window(row) for row in conn.execute(query).mappings()]


def windows_in_force_during(conn: Connection, since: datetime, until: datetime) -> list[Window]:
    """The windows that held at some time in [since, until), each from when it was made (it hid
    nothing before then, whatever its `starts_at`) until it ended or was ended early: what a
    replay of that period applies."""
    query = (
        sa.select(table)
        .where(table.c.ends_at > since, table.c.created_at < until, table.c.starts_at < until)
        .order_by(table.c.id)
    )
    return [
        replace(_window(row), starts_at=max(row["starts_at"], row["created_at"]))
        for row in conn.execute(query).mappings()
    ]


def insert_window(conn: Connection, window: Window, now: datetime) -> None:
    assert window.starts_at is not None and window.ends_at is not None
    conn.execute(
        table.insert().values(
            name=window.name,
            matchers=list(window.matcher_texts),
            reason=window.reason,
            include_p0=window.include_p0,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            created_at=now,
            created_by=window.created_by,
        )
    )


def end_window(conn: Connection, name: str, now: datetime) -> Window | None:
    """End the window `name` that has not ended yet, at `now`; the window as it was, or None."""
    found = (
        conn.execute(sa.select(table).where(table.c.name == name, table.c.ends_at > now))
        .mappings()
        .first()
    )
    if found is None:
        return None
    conn.execute(table.update().where(table.c.id == found["id"]).values(ends_at=now))
    return _window(found)


def wake_suppressed(conn: Connection, now: datetime) -> int:
    """Make every suppressed incident due now, so that the engine looks at its windows again (one
    ended early, or the rules changed); how many."""
    incidents = schema.incidents
    result = conn.execute(
        incidents.update()
        .where(
            incidents.c.state == IncidentState.SUPPRESSED.value,
            incidents.c.next_action_at > now,
        )
        .values(next_action_at=now)
    )
    return int(result.rowcount or 0)


def _window(row: Any) -> Window:
    return run_time_window(
        name=row["name"],
        matchers=tuple(row["matchers"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        reason=row["reason"],
        include_p0=bool(row["include_p0"]),
        created_by=row["created_by"],
    )
