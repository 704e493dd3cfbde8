"""Statements run prepared on SQLite store and read what SQLAlchemy's own execution does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from router.store import schema
from router.store.prepared import SQLITE_MAX_VARIABLES, prepare
from router.store.statements import statements

NOW = datetime(2026, 12, 7, 3, 12, 45, 123456, tzinfo=UTC)
SQL = statements("sqlite")


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'prepared.db'}",
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
    )
    schema.metadata.create_all(engine)
    return engine


def alert_row(n: int) -> dict[str, Any]:
    return {
        "fingerprint": f"{n:016x}",
        "starts_at": NOW + timedelta(microseconds=n),
        "source": "alertmanager",
        "status": "firing",
        "alertname": "DiskFull",
        "labels": {"alertname": "DiskFull", "instance": f"host-{n}", "note": "é ✓"},
        "annotations": {"summary": "disk is full"},
        "details": {},
        "ends_at": None,
        "received_at": NOW,
        "updated_at": NOW,
    }


def test_rows_inserted_prepared_read_back_the_same_through_sqlalchemy(engine: sa.Engine) -> None:
    rows = [alert_row(n) for n in range(3)]
    with engine.begin() as conn:
        prepared = prepare(conn, SQL.insert_alerts, tuple(rows[0]))
        returned = prepared.insert_rows(conn, rows)
    assert sorted(fingerprint for _, fingerprint in returned) == [f"{n:016x}" for n in range(3)]
    with engine.connect() as conn:
        stored = [dict(row) for row in conn.execute(sa.select(schema.alerts)).mappings()]
    assert [
        {key: row[key] for key in rows[0]} for row in sorted(stored, key=lambda r: r["id"])
    ] == rows


def test_an_insert_of_more_rows_than_one_statement_takes_is_split(engine: sa.Engine) -> None:
    per_statement = SQLITE_MAX_VARIABLES // len(alert_row(0))
    rows = [alert_row(n) for n in range(per_statement + 7)]
    with engine.begin() as conn:
        prepared = prepare(conn, SQL.insert_alerts, tuple(rows[0]))
        assert len(prepared.insert_rows(conn, rows)) == len(rows)
        # Instances already stored meet their unique key: nothing is returned for them.
        assert prepared.insert_rows(conn, rows[:5]) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.alerts)).scalar() == len(
            rows
        )


def test_rows_stored_by_sqlalchemy_read_the_same_prepared(engine: sa.Engine) -> None:
    values = {
        "key": "DiskFull/host-1",
        "severity": "P1",
        "rule": None,
        "policy": "default",
        "title": "DiskFull: disk is full",
        "opened_at": NOW,
        "classification": {"reason": "matched", "labels": ["a", "b"]},
        "runbook": None,
        "state": "triggered",
        "step": 1,
        "round": 0,
        "next_action": "escalate",
        "next_action_at": NOW + timedelta(minutes=5),
    }
    with engine.begin() as conn:
        conn.execute(schema.incidents.insert(), values)
        through_sqlalchemy = dict(
            conn.execute(SQL.open_incident_by_key, {"incident_key": values["key"]}).mappings().one()
        )
        prepared = prepare(conn, SQL.open_incident_by_key, ()).mappings(
            conn, {"incident_key": values["key"]}
        )
    assert prepared == [through_sqlalchemy]
    assert prepared[0]["next_action_at"] == NOW + timedelta(minutes=5)
    assert prepared[0]["classification"] == values["classification"]


def test_a_driver_error_is_sqlalchemys_error_of_the_same_kind(engine: sa.Engine) -> None:
    row = {"incident_id": 999, "alert_id": 999, "severity": "P1"}
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"), engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        prepare(conn, SQL.insert_links, tuple(row)).run_many(conn, [row])


def test_a_list_parameter_cannot_be_prepared(engine: sa.Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="instances: an expanding"):
        prepare(conn, SQL.known_alerts, ())
