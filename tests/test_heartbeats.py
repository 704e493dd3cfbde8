"""Heartbeats (a dead man's switch) inside one process: a moved clock, real HTTP handlers, the
real incident service and store (SQLite and PostgreSQL), pages to the log channel.

The scenario rules gain a `watchdog` heartbeat (the Watchdog alert, 10 minutes, P1) and a
ping-only `nightly-backup` heartbeat (1 hour, P2).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.errors import ConfigError
from router.metrics import Metrics
from router.settings import Settings

from .conftest import WEBHOOK_TOKEN, auth_headers
from .databases import database_url
from .fakes import Receiver
from .scenario import SCENARIO_RULES, FakeClock, alert, incidents, pages, send, tick, timeline

Client = TestClient[Any, Any]

HEARTBEATS = """
heartbeats:
  - name: watchdog
    matchers: ['alertname="Watchdog"']
    interval: 10m
    severity: P1
  - name: nightly-backup
    interval: 1h
    severity: P2
"""
API_TOKEN = "heartbeat-test-api-token"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(SCENARIO_RULES, rules)
    (rules / "30-heartbeats.yaml").write_text(HEARTBEATS)
    return rules


@asynccontextmanager
async def started(
    url: str, rules: Path, clock: FakeClock, **settings: Any
) -> AsyncIterator[tuple[RouterService, Client]]:
    service = RouterService(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            webhook_token=WEBHOOK_TOKEN,
            api_token=API_TOKEN,
            public_url="http://router.test",
            rules_dir=rules,
            **settings,
        ),
        metrics=Metrics(),
        clock=clock,
    )
    await service.start()
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            yield service, client
    finally:
        await service.close()


@pytest.fixture
async def url(tmp_path: Path, database: str) -> AsyncIterator[str]:
    async with database_url(database, tmp_path) as found:
        yield found


@pytest.fixture
async def router(
    url: str, rules_dir: Path, clock: FakeClock
) -> AsyncIterator[tuple[RouterService, Client]]:
    async with started(url, rules_dir, clock) as pair:
        yield pair


def metric(router: RouterService, name: str, **labels: str) -> float | None:
    return router.metrics.registry.get_sample_value(name, labels)


def watchdog(starts: str = "2026-11-24T08:00:00Z") -> dict[str, Any]:
    return alert("Watchdog", starts=starts, severity="none")


async def ping(client: Client, name: str, token: str = WEBHOOK_TOKEN) -> Any:
    return await client.post(f"/heartbeats/{name}", headers={"Authorization": f"Bearer {token}"})


async def test_a_watchdog_alert_is_a_beat_stored_but_never_an_incident(
    router: tuple[RouterService, Client], clock: FakeClock
) -> None:
    service, client = router
    answer = await send(client, watchdog())
    assert answer["new"] == 1
    # Alertmanager re-sends the same instance every repeat_interval: each is a beat too.
    clock.advance(minutes=4)
    assert (await send(client, watchdog()))["duplicate"] == 1
    await service.engine.run_once()
    assert await incidents(service) == []
    assert await pages(service) == []
    assert await service.store.count_alerts() == 1
    records = await service.store.heartbeats()
    assert records["watchdog"].last_beat_at == clock.now
    assert "Watchdog" in (records["watchdog"].last_beat_via or "")
    beat = metric(service, "router_heartbeat_last_beat_timestamp_seconds", heartbeat="watchdog")
    assert beat == clock.now.timestamp()


async def test_a_missing_watchdog_pages_at_its_interval_and_its_return_resolves(
    router: tuple[RouterService, Client], clock: FakeClock
) -> None:
    service, client = router
    await send(client, watchdog())
    await tick(service, clock, minutes=9, seconds=59)
    assert await incidents(service) == []

    await tick(service, clock, seconds=1)  # 10 minutes without a beat
    (incident,) = await incidents(service)
    assert incident["title"] == "Heartbeat watchdog: nothing received for 10m"
    assert (incident["state"], incident["severity"], incident["policy"]) == (
        "triggered",
        "P1",
        "default",
    )
    assert await pages(service) == [("trigger", "oncall", 1, "delivered", "09:10")]
    assert metric(service, "router_heartbeats_missed_total", heartbeat="watchdog") == 1

    # It escalates as any P1: nobody acknowledged within 15 minutes.
    await tick(service, clock, minutes=15)
    assert [page[:2] for page in await pages(service)] == [
        ("trigger", "oncall"),
        ("escalate", "lead"),
    ]
    # Still silent: no second incident for the same miss.
    await tick(service, clock, minutes=30)
    assert len(await incidents(service)) == 1

    # The Watchdog comes back: resolved, and every tier paged is told.
    await send(client, watchdog(starts="2026-11-24T09:50:00Z"))
    await service.engine.run_once()
    (incident,) = await incidents(service)
    assert incident["state"] == "resolved"
    resolves = [page[:2] for page in await pages(service) if page[0] == "resolve"]
    assert sorted(resolves) == [("resolve", "lead"), ("resolve", "oncall")]
    kinds = [kind for kind, _ in await timeline(service, incident["id"])]
    assert kinds[:2] == ["opened", "classified"] and "resolved" in kinds
    assert metric(service, "router_heartbeats_missed_total", heartbeat="watchdog") == 1


async def test_a_heartbeat_that_never_beat_is_missed_one_interval_after_start(
    router: tuple[RouterService, Client], clock: FakeClock
) -> None:
    service, _client = router
    await tick(service, clock, minutes=10)
    titles = [incident["title"] for incident in await incidents(service)]
    assert titles == ["Heartbeat watchdog: nothing received for 10m"]
    await tick(service, clock, minutes=49)
    assert len(await incidents(service)) == 1
    await tick(service, clock, minutes=1)
    titles = [incident["title"] for incident in await incidents(service)]
    assert titles[1] == "Heartbeat nightly-backup: nothing received for 1h"
    detail = await timeline(service, (await incidents(service))[1]["id"])
    assert "no beat since the router began watching" in dict(detail)["classified"]


async def test_a_ping_is_a_beat_and_resolves_the_missed_incident(
    router: tuple[RouterService, Client], clock: FakeClock
) -> None:
    service, client = router
    await tick(service, clock, minutes=50)
    answer = await ping(client, "nightly-backup")
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["resolved_incident"] is None
    await tick(service, clock, minutes=59)
    assert [i["title"] for i in await incidents(service) if "backup" in i["title"]] == []
    await tick(service, clock, minutes=1)
    (missed,) = [i for i in await incidents(service) if "backup" in i["title"]]
    answer = await ping(client, "nightly-backup")
    assert (await answer.json()) == {
        "status": "accepted",
        "heartbeat": "nightly-backup",
        "resolved_incident": missed["id"],
    }
    (missed,) = [i for i in await incidents(service) if "backup" in i["title"]]
    assert missed["state"] == "resolved"

    # The watchdog (with matchers) takes pings too.
    assert (await ping(client, "watchdog")).status == 200


async def test_the_heartbeat_list_shows_each_state(
    router: tuple[RouterService, Client], clock: FakeClock
) -> None:
    service, client = router
    await send(client, watchdog())
    await tick(service, clock, minutes=11)
    answer = await client.get(
        "/api/v1/heartbeats", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert answer.status == 200
    listed = {entry["name"]: entry for entry in (await answer.json())["heartbeats"]}
    assert listed["watchdog"]["state"] == "missed"
    assert listed["watchdog"]["last_beat_at"] == "2026-11-24T09:00:00+00:00"
    assert listed["watchdog"]["due_at"] == "2026-11-24T09:10:00+00:00"
    assert listed["nightly-backup"] | {"last_beat_at": None} == {
        "name": "nightly-backup",
        "matchers": None,
        "interval": "1h",
        "severity": "P2",
        "policy": "default",
        "state": "ok",
        "last_beat_at": None,
        "last_beat_via": None,
        "missed_since": None,
        "due_at": "2026-11-24T10:00:00+00:00",
    }
    refused = await client.get("/api/v1/heartbeats", headers=auth_headers())
    assert refused.status == 401


@pytest.mark.parametrize("database", ["sqlite"])
async def test_ping_tokens_and_unknown_names(url: str, rules_dir: Path, clock: FakeClock) -> None:
    async with started(url, rules_dir, clock) as (_service, client):
        # Unset ROUTER_HEARTBEAT_TOKEN: the webhook token, as bearer or basic-auth password.
        assert (await ping(client, "watchdog")).status == 200
        password = base64.b64encode(f"cron:{WEBHOOK_TOKEN}".encode()).decode()
        basic = await client.post(
            "/heartbeats/watchdog", headers={"Authorization": f"Basic {password}"}
        )
        assert basic.status == 200
        assert (await ping(client, "watchdog", token="wrong")).status == 401
        assert (await client.post("/heartbeats/watchdog")).status == 401
        unknown = await ping(client, "watchdgo")
        assert unknown.status == 404
        assert (await unknown.json())["error"] == (
            'no heartbeat named "watchdgo" in the rules (they define: watchdog, nightly-backup)'
        )
    async with started(url, rules_dir, clock, heartbeat_token="ping-secret") as (_s, client):
        assert (await ping(client, "watchdog", token="ping-secret")).status == 200
        # The heartbeat token does not open the webhooks, nor the webhook token the pings.
        assert (await ping(client, "watchdog")).status == 401
        refused = await client.post(
            "/webhooks/alertmanager", json={}, headers=auth_headers("ping-secret")
        )
        assert refused.status == 401


async def test_a_restart_gives_each_heartbeat_a_whole_interval(
    url: str, rules_dir: Path, clock: FakeClock
) -> None:
    async with started(url, rules_dir, clock) as (service, client):
        await send(client, watchdog())
        await tick(service, clock, minutes=6)
    # Down for 5 minutes: the beats Alertmanager sent meanwhile were lost, which is no miss.
    clock.advance(minutes=5)
    async with started(url, rules_dir, clock) as (service, client):
        records = await service.store.heartbeats()
        assert records["watchdog"].last_beat_at == clock.now - timedelta(minutes=11)
        await tick(service, clock, minutes=9)
        assert await incidents(service) == []
        await tick(service, clock, minutes=1)  # 10 minutes after the start: missed
        (incident,) = await incidents(service)
        assert incident["title"] == "Heartbeat watchdog: nothing received for 10m"


async def test_an_incident_resolved_by_hand_is_not_reopened_until_the_next_miss(
    router: tuple[RouterService, Client], clock: FakeClock
) -> None:
    service, client = router
    await send(client, watchdog())
    await tick(service, clock, minutes=10)
    (incident,) = await incidents(service)
    await service.incidents.resolve(incident["id"], "ana", "api", clock.now)
    await tick(service, clock, minutes=30)
    assert [i["state"] for i in await incidents(service)] == ["resolved"]
    # A beat ends the miss; the next silence is a new miss.
    await send(client, watchdog())
    await tick(service, clock, minutes=10)
    assert [i["state"] for i in await incidents(service)] == ["resolved", "triggered"]


async def test_a_resolved_watchdog_is_no_beat(
    router: tuple[RouterService, Client], clock: FakeClock
) -> None:
    service, client = router
    await send(client, alert("Watchdog", status="resolved", starts="2026-11-24T08:00:00Z"))
    assert (await service.store.heartbeats()) == {}
    await tick(service, clock, minutes=10)
    assert [i["title"] for i in await incidents(service)] == [
        "Heartbeat watchdog: nothing received for 10m"
    ]


async def test_a_reload_that_adds_a_heartbeat_starts_its_clock_then(
    router: tuple[RouterService, Client], rules_dir: Path, clock: FakeClock
) -> None:
    service, _client = router
    await send(_client, watchdog())
    await tick(service, clock, minutes=5)
    (rules_dir / "30-heartbeats.yaml").write_text(
        HEARTBEATS + "  - {name: hourly, interval: 10m, severity: P1}\n"
    )
    assert service.reload_rules()
    await tick(service, clock, minutes=9)
    titles = [i["title"] for i in await incidents(service)]
    assert titles == ["Heartbeat watchdog: nothing received for 14m"]
    await tick(service, clock, minutes=1)
    titles = [i["title"] for i in await incidents(service)]
    assert titles[1] == "Heartbeat hourly: nothing received for 10m"


# --- the router's own heartbeat -----------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    fake = Receiver()
    await fake.start()
    yield fake
    await fake.close()


@pytest.mark.parametrize("database", ["sqlite"])
async def test_the_outbound_heartbeat_posts_to_an_http_url_and_counts_each_result(
    url: str, rules_dir: Path, clock: FakeClock, receiver: Receiver
) -> None:
    target = f"{receiver.url}/ping/0f3c-check"
    async with started(url, rules_dir, clock, outbound_heartbeat_url=target) as (service, _c):
        outbound = service.outbound
        assert outbound is not None
        assert await outbound.ping_once() == "sent"
        (request,) = receiver.requests
        assert (request.method, request.path) == ("POST", "/ping/0f3c-check")
        receiver.answer(500)
        assert await outbound.ping_once() == "failed"
        # Not ready (stopping, or the database refuses writes): no ping, so the switch trips.
        service.state.shutting_down = True
        assert await outbound.ping_once() == "not_ready"
        assert len(receiver.requests) == 2
        service.state.shutting_down = False
        await receiver.close()  # unreachable: logged and counted, never raised
        assert await outbound.ping_once() == "failed"
        counted = {
            result: metric(service, "router_outbound_heartbeats_total", result=result)
            for result in ("sent", "failed", "not_ready")
        }
        assert counted == {"sent": 1, "failed": 2, "not_ready": 1}


@pytest.mark.parametrize("database", ["sqlite"])
async def test_the_outbound_heartbeat_notifies_an_apprise_url_every_interval(
    url: str, rules_dir: Path, clock: FakeClock, receiver: Receiver
) -> None:
    target = receiver.url.replace("http://", "json://") + "/router-alive"
    settings = {"outbound_heartbeat_url": target, "outbound_heartbeat_interval_seconds": 1.0}
    async with started(url, rules_dir, clock, **settings) as (service, _client):
        assert service.outbound is not None
        service.outbound.start()
        deadline = asyncio.get_running_loop().time() + 10
        while len(receiver.requests) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await service.outbound.stop()
    assert len(receiver.requests) >= 2
    assert receiver.requests[0].path == "/router-alive"
    assert receiver.requests[0].json()["title"] == "runbook-router heartbeat"


def test_an_outbound_heartbeat_url_nothing_can_ping_stops_the_start(
    rules_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        rules_dir=rules_dir,
        outbound_heartbeat_url="nosuchscheme://secret-token@example",
    )
    with pytest.raises(ConfigError) as raised:
        RouterService(settings, metrics=Metrics())
    assert "ROUTER_OUTBOUND_HEARTBEAT_URL" in str(raised.value)
    assert "secret-token" not in str(raised.value)
