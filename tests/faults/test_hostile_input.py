"""Hostile and impossible input, against the real application on loopback, on SQLite and on
PostgreSQL: every test runs on both databases and expects the same answer from each.

A body the router can never store must be refused with a 4xx naming the field (Alertmanager retries
a 5xx for ever, holding back every alert of the batch), and requests that could be replayed,
forged from another web site or crafted to crash a handler must be refused, not served.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService

from ..conftest import auth_headers
from ..scenario import FakeClock, alert, alertmanager_body, incidents, running_router

Client = TestClient[Any, Any]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def router(tmp_path: Path, clock: FakeClock, database: str) -> AsyncIterator[RouterService]:
    async with running_router(tmp_path, clock, database) as service:
        yield service


@pytest.fixture
async def client(router: RouterService) -> AsyncIterator[Client]:
    async with TestClient(TestServer(router.web_app())) as test_client:
        yield test_client


async def post_raw(client: Client, source: str, body: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"/webhooks/{source}", data=body, headers=auth_headers())
    return response.status, await response.json()


def batch_with(bad: dict[str, Any]) -> dict[str, Any]:
    """A body of three good alerts and `bad` as the fourth, alerts[3]."""
    good = [alert(name, instance=name) for name in ("DataCorruption", "SlowThing", "DiskFull")]
    return alertmanager_body(*good, bad)


# --- bodies that can never be stored ------------------------------------------------------------


async def assert_refused(
    router: RouterService,
    client: Client,
    body: bytes | dict[str, Any],
    error: str,
    source: str = "alertmanager",
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = await post_raw(client, source, raw)
    assert (status, answer) == (400, {"error": error})
    assert await router.store.count_alerts() == 0
    assert await incidents(router) == []


@pytest.mark.parametrize(
    ("field", "written"),
    [
        ("startsAt", "9999-12-31T23:59:59-01:00"),
        ("startsAt", "0001-01-01T00:30:00+01:00"),
        ("endsAt", "9999-12-31T23:30:00.123456789-00:31"),
    ],
)
async def test_a_time_beyond_the_calendar_in_utc_is_refused(
    router: RouterService, client: Client, field: str, written: str
) -> None:
    bad = alert("Overflow", status="resolved")
    bad[field] = written
    kept = written.replace(".123456789", ".123456")
    await assert_refused(
        router,
        client,
        batch_with(bad),
        f"alerts.3.{field}: Value error, {kept} is outside years 1 to 9999 in UTC",
    )


async def test_the_last_and_first_times_utc_holds_are_stored(
    router: RouterService, client: Client
) -> None:
    latest = alert("Latest", starts="9999-12-31T23:59:59.999999Z")
    earliest = alert("Earliest", starts="0001-01-01T00:00:01Z")
    status, answer = await post_raw(
        client, "alertmanager", json.dumps(alertmanager_body(latest, earliest)).encode()
    )
    assert (status, answer["new"]) == (200, 2)
    listing = await client.get("/api/v1/incidents")
    assert listing.status == 200
    assert len((await listing.json())["incidents"]) == 2


async def test_a_lone_surrogate_is_refused(router: RouterService, client: Client) -> None:
    bad = alert("Surrogate")
    body = json.dumps(batch_with(bad)).replace("Surrogate on ledger", "broken \\ud800 text")
    await assert_refused(
        router,
        client,
        body.encode(),
        "alerts.3.annotations.summary: contains a lone UTF-16 surrogate (\\ud800 to \\udfff)",
    )


async def test_a_nul_character_in_a_label_name_is_named_with_escapes(
    router: RouterService, client: Client
) -> None:
    bad = alert("NulName")
    bad["labels"]["inst\x00ance"] = "db-1"
    await assert_refused(
        router,
        client,
        batch_with(bad),
        "alerts.3.labels.inst\\u0000ance.[key]: contains a NUL character",
    )


async def test_a_fingerprint_longer_than_the_store_keeps_is_refused(
    router: RouterService, client: Client
) -> None:
    bad = alert("LongFingerprint", fingerprint="f" * 65)
    await assert_refused(
        router,
        client,
        batch_with(bad),
        "alerts.3.fingerprint: String should have at most 64 characters",
    )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_a_grafana_value_that_is_not_finite_is_refused(
    router: RouterService, client: Client, literal: str
) -> None:
    bad = {**alert("NotANumber"), "values": {"B": 0}}
    body = json.dumps({**batch_with(bad), "version": "1"}).replace('"B": 0', f'"B": {literal}')
    await assert_refused(
        router,
        client,
        body.encode(),
        "alerts.3.values.B: Input should be a finite number",
        "grafana",
    )


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ("labels", "alerts.3.labels.instance"),
        ("annotations", "alerts.3.annotations.summary"),
    ],
)
async def test_a_nul_character_is_refused(
    router: RouterService, client: Client, part: str, field: str
) -> None:
    bad = alert("Nul", instance="db-1")
    bad["annotations"]["summary"] = "db-1"
    bad[part] = {**bad[part], field.rsplit(".", 1)[1]: "db\x00-1"}
    await assert_refused(router, client, batch_with(bad), f"{field}: contains a NUL character")


async def test_a_long_alertname_is_stored_on_both_databases(
    router: RouterService, client: Client
) -> None:
    long_name = "A" * 1000
    status, answer = await post_raw(
        client, "alertmanager", json.dumps(alertmanager_body(alert(long_name))).encode()
    )
    assert (status, answer["new"]) == (200, 1)
    (incident,) = await incidents(router)
    assert incident["title"].startswith("A" * 100)
