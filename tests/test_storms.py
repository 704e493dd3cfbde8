"""Alert storms: many alerts on one incident, large webhooks, and the schema they need.

On SQLite and PostgreSQL, through the webhook endpoint: what is stored, what the timeline keeps,
and how often an incident is paged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from router.app import RouterService
from router.incidents.service import INGEST_SLICE
from router.store import open_store
from router.store.base import ALERT_NOTES_LISTED
from router.store.schema import SCHEMA_VERSION

from .scenario import (
    alert,
    pages,
    router_client,
    router_fixture,
    send,
    timeline,
)

Client = TestClient[Any, Any]


router = router_fixture()


client = router_client


def instances(count: int, *, first: int = 0, status: str = "firing") -> list[dict[str, Any]]:
    """`count` alerts of one incident (same alertname and service), each its own instance."""
    return [
        alert("DataCorruption", status=status, instance=f"db-{n}")
        for n in range(first, first + count)
    ]


async def test_a_storm_on_one_incident_keeps_a_bounded_timeline(
    router: RouterService, client: Client
) -> None:
    joining = 3 * ALERT_NOTES_LISTED
    # The opener, then the others one webhook each, then in one body: both paths of the store.
    await send(client, *instances(1))
    for one in instances(ALERT_NOTES_LISTED, first=1):
        await send(client, one)
    await send(client, *instances(joining - ALERT_NOTES_LISTED, first=ALERT_NOTES_LISTED + 1))

    assert await router.store.count_alerts() == joining + 1
    events = await timeline(router, 1)
    joined = [detail for kind, detail in events if kind == "alert"]
    assert len(joined) == ALERT_NOTES_LISTED
    assert joined[0].startswith("alertmanager alert DataCorruption (ledger, db-1,")
    summary = [detail for kind, detail in events if kind == "alerts_joined"]
    assert len(summary) == 1
    assert summary[0].startswith(
        f"{joining - ALERT_NOTES_LISTED} more alerts joined, latest alertmanager alert "
        f"DataCorruption (ledger, db-{joining},"
    )
    detail = await router.store.incident_detail(1)
    assert detail is not None and len(detail.alerts) == joining + 1
    # Paged once: joining alerts of the same severity page nobody.
    assert [page[:2] for page in await pages(router)] == [("trigger", "oncall")]


async def test_resolutions_in_a_storm_are_summed_up_too(
    router: RouterService, client: Client
) -> None:
    count = ALERT_NOTES_LISTED + 5
    await send(client, *instances(count))
    await send(client, *instances(count - 1, status="resolved"))
    events = await timeline(router, 1)
    resolved = [detail for kind, detail in events if detail.endswith(" resolved")]
    assert len(resolved) == ALERT_NOTES_LISTED
    summaries = [detail for kind, detail in events if kind == "alerts_resolved"]
    assert summaries == [
        f"{count - 1 - ALERT_NOTES_LISTED} more alerts resolved, latest "
        + summaries[0].split(", latest ", 1)[1]
    ]
    assert (await router.store.incident_detail(1)).incident.state.value == "triggered"  # type: ignore[union-attr]
    await send(client, *instances(1, first=count - 1, status="resolved"))
    assert (await router.store.incident_detail(1)).incident.state.value == "resolved"  # type: ignore[union-attr]


async def test_a_webhook_larger_than_a_slice_is_stored_whole(
    router: RouterService, client: Client
) -> None:
    count = INGEST_SLICE * 2 + 7
    answer = await send(client, *instances(count))
    assert (answer["new"], answer["duplicate"]) == (count, 0)
    assert await router.store.count_alerts() == count
    again = await send(client, *instances(count))
    assert (again["new"], again["duplicate"]) == (0, count)
    assert [page[:2] for page in await pages(router)] == [("trigger", "oncall")]


async def test_a_repeated_instance_in_one_body_is_stored_once(
    router: RouterService, client: Client
) -> None:
    one, other = instances(2)
    answer = await send(client, one, other, one)
    assert (answer["new"], answer["duplicate"]) == (2, 1)
    assert await router.store.count_alerts() == 2


async def test_a_database_of_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "router.db"
    with sqlite3.connect(path) as db:
        # The incidents table as version 1 made it, with one open incident.
        db.executescript(
            """
            CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
            INSERT INTO schema_version VALUES (1, 0);
            CREATE TABLE incidents (
                id INTEGER PRIMARY KEY, key VARCHAR(255) NOT NULL, state VARCHAR(16) NOT NULL,
                severity VARCHAR(32) NOT NULL, rule VARCHAR(255), policy VARCHAR(255) NOT NULL,
                title TEXT NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL,
                next_action VARCHAR(16), next_action_at BIGINT, opened_at BIGINT NOT NULL,
                acknowledged_at BIGINT, acknowledged_by VARCHAR(255), resolved_at BIGINT,
                resolved_by VARCHAR(255), classification JSON NOT NULL, runbook JSON);
            INSERT INTO incidents VALUES (1, 'k', 'triggered', 'P0', NULL, 'default', 't', 0, 0,
                NULL, NULL, 0, NULL, NULL, NULL, NULL, '{}', NULL);
            """
        )
    store = open_store(f"sqlite:///{path}")
    await store.start()
    try:
        (incident,) = await store.list_incidents(None, 10)
        assert incident.key == "k"
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_version")]
        counts = db.execute("SELECT alerts_joined, alerts_resolved FROM incidents").fetchall()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert counts == [(0, 0)]


async def test_the_open_incident_gauge_follows_each_change_without_a_recount(
    router: RouterService, client: Client
) -> None:
    def gauge(state: str) -> float | None:
        return router.metrics.registry.get_sample_value(
            "router_open_incidents", {"severity": "P0", "state": state}
        )

    await send(client, *instances(2))
    assert gauge("triggered") == 1
    await send(client, *instances(2, status="resolved"))
    assert (gauge("triggered"), gauge("resolved")) == (0, None)
