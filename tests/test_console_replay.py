"""The Rules page's replay and shadow rules: the history of tests/history.py, recorded by the real
service on a moved clock, replayed from the web page through a rules directory beside the rules in
force, on SQLite and PostgreSQL; and the latest alerts the shadow rules route differently."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.store.base import IncidentFilter

from .history import clean_environment, recorded_fixture, rules_dir
from .scenario import FakeClock, alert, running_router, send

Client = TestClient[Any, Any]
HOST = {"Host": "router.test"}


recorded = recorded_fixture


@pytest.fixture
async def client(recorded: RouterService) -> AsyncIterator[Client]:
    async with TestClient(TestServer(recorded.web_app())) as test_client:
        yield test_client


async def post_replay(client: Client, rules: str, since: str = "7d") -> tuple[int, str]:
    response = await client.post(
        "/rules/replay", data={"rules": rules, "since": since}, headers=HOST
    )
    return response.status, await response.text()


def options(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)"', html)


def text(html: str) -> str:
    """The page's words without tags or repeated white space."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def live_counts(service: RouterService) -> tuple[int, int, int]:
    incidents = await service.store.search_incidents(IncidentFilter(), 1000)
    return len(incidents), len(await service.store.list_pages()), await service.store.count_alerts()


async def test_the_rules_page_offers_the_directories_beside_the_rules_in_force(
    recorded: RouterService, client: Client, tmp_path: Path
) -> None:
    response = await client.get("/rules", headers=HOST)
    assert response.status == 200
    assert options(await response.text()) == []
    assert 'id="replay-none"' in await response.text()
    new = rules_dir(tmp_path / "rules-next", new=True)
    (tmp_path / "notes").mkdir()  # a directory without rules files is not offered
    (tmp_path / "deploy").mkdir()  # nor one of YAML files that are not rules
    (tmp_path / "deploy" / "alertmanager.yml").write_text("route:\n  receiver: router\n")
    (tmp_path / "deploy" / "alerts.yaml").write_text("groups:\n  - name: a\n    rules: []\n")
    response = await client.get("/rules", headers=HOST)
    # The rules in force (tmp_path/in-force) are not offered: they replay to no difference.
    assert options(await response.text()) == [str(new.resolve())]


async def test_a_replay_from_the_page_shows_every_difference_and_writes_nothing(
    recorded: RouterService, client: Client, tmp_path: Path
) -> None:
    new = rules_dir(tmp_path / "rules-next", new=True)
    before = await live_counts(recorded)
    status, html = await post_replay(client, str(new.resolve()))
    assert status == 200, html
    words = text(html)
    assert "Replayed 4 alerts" in words
    # Incidents and pages: the rules in force, then the new rules.
    totals = re.findall(r"<td>(\d+)</td><td>(\d+)</td>", html)
    assert totals[0][0] == "4" and totals[1][0] == "3"
    # One page more (the escalation to lead), one fewer (DiskFull's two incidents become one).
    assert totals[1][1] == totals[0][1]
    # The shorter ack_within escalates DataCorruption to lead three minutes in.
    assert "+ lead, step 2, at +3 min (escalate)" in words
    assert (
        "Escalates further: step 2 (lead) at +3 min instead of step 1 (oncall); "
        "acknowledged at +4 min." in words
    )
    # SlowThing becomes P2 with a section; DiskFull is grouped by alertname only.
    assert "severity P1 P2" in words
    assert "runbook none ledger.md#slow-thing" in words
    assert "opens incident joins disk|alertname=DiskFull" in words
    assert await live_counts(recorded) == before


async def test_the_rules_in_force_are_refused_and_a_path_of_the_browser_is_never_read(
    recorded: RouterService, client: Client, tmp_path: Path
) -> None:
    rules_dir(tmp_path / "rules-next", new=True)
    for path in (str(tmp_path / "in-force"), "/etc", str(tmp_path / "rules-next" / "..")):
        status, html = await post_replay(client, path)
        assert status == 400, path
        assert "Choose one of the rules directories the Rules page offers" in html


@pytest.mark.parametrize("since", ["0s", "soon", "400d", "7\x01d"])
async def test_a_bad_period_is_a_400_that_names_the_field(
    recorded: RouterService, client: Client, tmp_path: Path, since: str
) -> None:
    new = rules_dir(tmp_path / "rules-next", new=True)
    status, html = await post_replay(client, str(new.resolve()), since)
    assert status == 400
    assert "since:" in html


async def test_rules_that_do_not_load_are_listed_with_file_and_line(
    recorded: RouterService, client: Client, tmp_path: Path
) -> None:
    broken = tmp_path / "rules-broken"
    broken.mkdir()
    (broken / "rules.yaml").write_text("severities: [P0\nrules: {\n", encoding="utf-8")
    status, html = await post_replay(client, str(broken.resolve()))
    assert status == 400
    assert 'id="problem"' in html
    assert re.search(r"rules\.yaml:\d+", html), html


async def test_the_shadow_rules_are_offered_first_and_their_disagreements_are_shown(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch, tmp_path)
    in_force = rules_dir(tmp_path / "in-force", new=False)
    shadow = rules_dir(tmp_path / "elsewhere" / "shadow", new=True)
    rules_dir(tmp_path / "rules-next", new=True)
    clock = FakeClock()
    async with (
        running_router(
            tmp_path, clock, database, rules_dir=in_force, shadow_rules_dir=shadow
        ) as service,
        TestClient(TestServer(service.web_app())) as client,
    ):
        response = await client.get("/rules", headers=HOST)
        html = await response.text()
        assert options(html)[0] == str(shadow.resolve())
        assert 'id="disagreements-none"' in html
        await send(client, alert("SlowThing", starts="2026-11-24T09:30:00Z"))
        await send(client, alert("DataCorruption", starts="2026-11-24T09:31:00Z"))
        html = await (await client.get("/rules", headers=HOST)).text()
    rows = re.findall(r"<tr><td>.*?</tr>", html.split('id="disagreements"')[1], re.S)
    # Only SlowThing is routed differently (P1 without a section, P2 with one).
    assert len(rows) == 1
    assert "SlowThing" in rows[0]
    assert "P1 · default" in rows[0] and "P2 · default" in rows[0]
    assert "ledger.md#slow-thing" in rows[0]
