"""A router service on a temporary SQLite file, a clock the test moves, and ways to read what it did."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.api.views import incident_json
from router.app import RouterService
from router.ingest.payloads import label_fingerprint
from router.metrics import Metrics
from router.settings import Settings

from .clock import FakeClock
from .conftest import WEBHOOK_TOKEN, auth_headers
from .databases import database_url

SCENARIO_RULES = Path(__file__).parent / "fixtures" / "rules" / "scenario"


@asynccontextmanager
async def running_router(
    tmp_path: Path, clock: FakeClock, database: str, **settings: Any
) -> AsyncIterator[RouterService]:
    """A started service on the scenario rules (or `rules_dir`) and a fresh database of the
    given kind."""
    async with database_url(database, tmp_path) as url:
        service = RouterService(
            Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=url,
                webhook_token=WEBHOOK_TOKEN,
                public_url="http://router.test",
                **{"rules_dir": SCENARIO_RULES, **settings},
            ),
            metrics=Metrics(),
            clock=clock,
        )
        await service.start()
        try:
            yield service
        finally:
            await service.close()


def router_fixture(**settings: Any) -> Any:
    """The `router` fixture of a scenario module: a started service on these settings (the
    scenario rules unless `rules_dir` is given), once per test and database kind.
    `router = router_fixture(rules_dir=...)` in the module declares it."""

    @pytest.fixture
    async def router(
        tmp_path: Path, clock: FakeClock, database: str
    ) -> AsyncIterator[RouterService]:
        async with running_router(tmp_path, clock, database, **settings) as service:
            yield service

    return router


@pytest.fixture
async def router_client(router: RouterService) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client of the module's `router`; `client = router_client` in the module."""
    async with TestClient(TestServer(router.web_app())) as test_client:
        yield test_client


async def tick(router: RouterService, clock: FakeClock, **delta: float) -> None:
    """Move the clock, then run one pass of the engine, as its loops would at that time."""
    clock.advance(**delta)
    await router.engine.run_once()


def metric(router: RouterService, name: str, **labels: str) -> float:
    """A sample of the router's metrics; 0 for a series never set."""
    return router.metrics.registry.get_sample_value(name, labels) or 0.0


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


async def pages(
    service: RouterService, incident_id: int | None = None
) -> list[tuple[str, str, int, str, str]]:
    """(event, tier, step, state, created at HH:MM) of every page, oldest first."""
    return [
        (page.event, page.tier, page.step + 1, page.state, page.created_at.strftime("%H:%M"))
        for page in await service.store.list_pages(incident_id)
    ]


async def page_contexts(service: RouterService, event: str) -> list[dict[str, Any]]:
    return [page.context for page in await service.store.list_pages() if page.event == event]


async def incidents(service: RouterService) -> list[dict[str, Any]]:
    """Every incident as the API shows it, oldest first."""
    records = await service.store.list_incidents(None, 1000)
    return [incident_json(record, service.routing) for record in reversed(records)]


async def timeline(service: RouterService, incident_id: int) -> list[tuple[str, str]]:
    detail = await service.store.incident_detail(incident_id)
    assert detail is not None
    return [(event.kind, event.detail) for event in detail.events]


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
