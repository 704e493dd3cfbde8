"""A router service on a temporary SQLite file, a clock the test moves, and ways to read what it did."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from router.app import RouterService
from router.payloads import label_fingerprint

from .conftest import auth_headers

SCENARIO_RULES = Path(__file__).parent / "fixtures" / "rules" / "scenario"
# A Tuesday, 10:00 in Berlin: inside business hours.
TUESDAY_10_BERLIN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeClock:
    """The time the service sees; tests move it instead of sleeping."""

    def __init__(self, start: datetime = TUESDAY_10_BERLIN) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def alertmanager_body(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    return {
        "version": "4",
        "status": status or alerts[0]["status"],
        "receiver": "runbook-router",
        "groupKey": "{}:{}",
        "alerts": list(alerts),
    }


def alert(
    name: str,
    *,
    status: str = "firing",
    starts: str = "2026-11-24T08:59:00Z",
    fingerprint: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    all_labels = {"alertname": name, "service": "ledger", **labels}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} on ledger"},
        "startsAt": starts,
        "endsAt": "2026-11-24T10:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint or label_fingerprint(all_labels),
    }


async def send(client: TestClient[Any, Any], *alerts: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        "/webhooks/alertmanager", json=alertmanager_body(*alerts), headers=auth_headers()
    )
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


def database(service: RouterService) -> sqlite3.Connection:
    return sqlite3.connect(service.settings.database_url.removeprefix("sqlite:///"))


def pages(
    service: RouterService, incident_id: int | None = None
) -> list[tuple[str, str, int, str, str]]:
    """(event, tier, step, state, created_at) of every page, in order."""
    query = "SELECT event, tier, step + 1, state, created_at, incident_id FROM pages ORDER BY id"
    with database(service) as connection:
        rows = connection.execute(query).fetchall()
    return [
        (event, tier, step, state, datetime.fromtimestamp(created / 1e6, UTC).strftime("%H:%M"))
        for event, tier, step, state, created, incident in rows
        if incident_id is None or incident == incident_id
    ]


def incidents(service: RouterService) -> list[dict[str, Any]]:
    with database(service) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM incidents ORDER BY id").fetchall()
    return [dict(row) for row in rows]


async def timeline(service: RouterService, incident_id: int) -> list[tuple[str, str]]:
    detail = await service.store.incident_detail(incident_id)
    assert detail is not None
    return [(event["kind"], event["detail"]) for event in detail["timeline"]]


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
