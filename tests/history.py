"""A history recorded by the real service on a moved clock, for `replay` and `check --coverage`.

The history (Tuesday 2026-11-24, 09:00 UTC, inside business hours):
- 09:00 DataCorruption (P0) fires; acknowledged at 09:04; resolved at 09:20. Under the rules in
  force (step 1 `ack_within: 5m`) nobody but oncall is paged.
- 09:30 SlowThing (P1) fires; acknowledged at 09:40; resolved at 10:10.
- 09:45 DiskFull fires on service a, 09:46 on service b (P3, rule `disk`, grouped by alertname and
  service: two incidents); both resolve at 10:30; nobody acknowledges.

The new rules (`rules_dir(..., new=True)`) shorten P0's first `ack_within` to 3m, make SlowThing
P2 with a runbook section, and group DiskFull by alertname only. No runbook names a section for
DataCorruption or DiskFull.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService

from .scenario import SCENARIO_RULES, FakeClock, alert, running_router, send

Client = TestClient[Any, Any]
PERIOD = ["--from", "2026-11-24T08:00:00Z", "--to", "2026-11-25T08:00:00Z"]

NEW_RULES_CHANGES = {
    "- {notify: [oncall], ack_within: 5m}": "- {notify: [oncall], ack_within: 3m}",
    """  - name: slow
    matchers: ['alertname="SlowThing"']
    severity: P1""": """  - name: slow
    matchers: ['alertname="SlowThing"']
    severity: P2
    runbook: ledger.md#slow-thing""",
}
DISK_RULE = """  - name: disk
    matchers: ['alertname="DiskFull"']
    severity: P3
"""
RUNBOOK = """# Ledger

## Slow Thing

Symptoms: the ledger is slow.

Immediate actions: restart the slow thing.
"""


def rules_dir(path: Path, *, new: bool) -> Path:
    """The scenario rules plus a DiskFull rule; with `new`, the changed rules and a runbook."""
    text = (SCENARIO_RULES / "rules.yaml").read_text(encoding="utf-8") + DISK_RULE
    if new:
        for old, changed in NEW_RULES_CHANGES.items():
            assert old in text
            text = text.replace(old, changed)
        text += "    group_by: [alertname]\n"
        (path / "runbooks").mkdir(parents=True)
        (path / "runbooks" / "ledger.md").write_text(RUNBOOK, encoding="utf-8")
    path.mkdir(parents=True, exist_ok=True)
    (path / "rules.yaml").write_text(text, encoding="utf-8")
    return path


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ROUTER_* variable, and a working directory without the developer's `.env`."""
    for name in list(os.environ):
        if name.startswith("ROUTER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clean_env_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`clean_environment` as a fixture; `clean_env = clean_env_fixture` in a module."""
    clean_environment(monkeypatch, tmp_path)


@pytest.fixture
async def recorded_fixture(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RouterService]:
    """The service after the history, in a clean environment; `recorded = recorded_fixture`
    in a module."""
    clean_environment(monkeypatch, tmp_path)
    async with recorded_router(tmp_path, database, monkeypatch) as service:
        yield service


@asynccontextmanager
async def recorded_router(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RouterService]:
    """The service after the history above; ROUTER_DATABASE_URL and ROUTER_RULES_DIR point at
    its database and its rules."""
    in_force = rules_dir(tmp_path / "in-force", new=False)
    clock = FakeClock()
    async with running_router(tmp_path, clock, database, rules_dir=in_force) as service:
        async with TestClient(TestServer(service.web_app())) as client:
            await record_history(service, client, clock)
        monkeypatch.setenv("ROUTER_DATABASE_URL", service.settings.database_url)
        monkeypatch.setenv("ROUTER_RULES_DIR", str(in_force))
        yield service


async def record_history(service: RouterService, client: Client, clock: FakeClock) -> None:
    async def at(minute: int) -> None:
        while (clock.now.hour - 9) * 60 + clock.now.minute < minute:
            clock.advance(minutes=1)
            await service.engine.run_once()

    async def ack(incident: int) -> None:
        response = await client.post(f"/api/v1/incidents/{incident}/ack", json={"by": "alice"})
        assert response.status == 200

    corruption = alert("DataCorruption", starts="2026-11-24T09:00:00Z")
    slow = alert("SlowThing", starts="2026-11-24T09:30:00Z")
    disk_a = alert("DiskFull", starts="2026-11-24T09:45:00Z", service="a")
    disk_b = alert("DiskFull", starts="2026-11-24T09:46:00Z", service="b")
    await send(client, corruption)
    await at(4)
    await ack(1)
    await at(20)
    await send(client, resolved(corruption))
    await at(30)
    await send(client, slow)
    await at(40)
    await ack(2)
    await at(45)
    await send(client, disk_a)
    await at(46)
    await send(client, disk_b)
    await at(70)
    await send(client, resolved(slow))
    await at(90)
    await send(client, resolved(disk_a), resolved(disk_b))
    await at(180)


def resolved(fired: dict[str, Any]) -> dict[str, Any]:
    return {**fired, "status": "resolved", "endsAt": "2026-11-24T10:30:00Z"}
