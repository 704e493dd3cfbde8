"""Shared fixtures: a router service on a temporary SQLite file, and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.metrics import Metrics
from router.settings import Settings

from .clock import FakeClock

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
WEBHOOK_TOKEN = "test-webhook-token"


@pytest.fixture
def clock() -> FakeClock:
    """The time the service sees, moved by the test (tests/clock.py)."""
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """The kind of database a test runs on; tests that take it run on both."""
    kind: str = request.param
    return kind


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        rules_dir=ROOT / "rules",
        webhook_token=WEBHOOK_TOKEN,  # type: ignore[arg-type]
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[RouterService]:
    router_service = RouterService(settings, metrics=Metrics())
    await router_service.start()
    yield router_service
    await router_service.close()


@pytest.fixture
async def client(service: RouterService) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(service.web_app())) as test_client:
        yield test_client


def auth_headers(token: str = WEBHOOK_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
