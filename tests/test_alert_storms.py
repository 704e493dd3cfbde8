"""Alert storms: beyond the rules' threshold a tier gets one storm page instead of one per incident.

Scenarios with a moved clock on SQLite and PostgreSQL, through the webhook endpoint and the
engine, with PagerDuty faked on loopback: what is paged, what is folded, what the timelines say,
and that every alert is stored and every incident escalates as its policy says.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService

from .fakes import FakePagerDuty
from .scenario import (
    SCENARIO_RULES,
    FakeClock,
    alert,
    metric,
    router_client,
    running_router,
    send,
    timeline,
)

Client = TestClient[Any, Any]
KEY = "0123456789abcdef0123456789abcdef"  # an Events API integration key's shape


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty()
    await fake.start()
    yield fake
    await fake.close()


def storm_rules(tmp_path: Path, storm: str = "") -> Path:
    """The scenario rules with the oncall tier on PagerDuty, and `storm` added as written."""
    rules = tmp_path / "rules"
    shutil.copytree(SCENARIO_RULES, rules)
    main = rules / "rules.yaml"
    text = main.read_text(encoding="utf-8")
    main.write_text(
        text.replace("oncall: {log: true}", f'oncall: {{pagerduty: {{routing_key: "{KEY}"}}}}')
    )
    if storm:
        (rules / "storm.yaml").write_text(storm, encoding="utf-8")
    return rules


@pytest.fixture
async def router(
    tmp_path: Path, clock: FakeClock, database: str, pagerduty: FakePagerDuty
) -> AsyncIterator[RouterService]:
    async with running_router(
        tmp_path,
        clock,
        database,
        rules_dir=storm_rules(tmp_path, "storm: {threshold: 20, window: 60s, update_every: 5m}\n"),
        pagerduty_events_url=pagerduty.url,
    ) as service:
        yield service


client = router_client


def burst(count: int, *, first: int = 0) -> list[dict[str, Any]]:
    """`count` alerts of as many incidents: every third P1 (severity high), the rest P2; two
    thirds on service ledger, one third on api."""
    return [
        alert(
            f"Burst{n}",
            severity="high" if n % 3 == 0 else "warning",
            service="api" if n % 3 == 1 else "ledger",
        )
        for n in range(first, first + count)
    ]


def storm_events(pagerduty: FakePagerDuty) -> list[dict[str, Any]]:
    return [e for e in pagerduty.events if str(e.get("dedup_key", "")).startswith("rr-storm-")]


def incident_triggers(pagerduty: FakePagerDuty) -> list[dict[str, Any]]:
    return [e for e in pagerduty.events if not str(e["dedup_key"]).startswith("rr-storm-")]


async def test_a_storm_of_500_incidents_pages_the_tier_once_and_a_p0_on_its_own(
    router: RouterService, client: Client, clock: FakeClock, pagerduty: FakePagerDuty
) -> None:
    alerts = burst(500)
    # A P0 in the middle of the storm.
    alerts.insert(250, alert("DataCorruption", severity="critical"))
    for first in range(0, len(alerts), 100):
        await send(client, *alerts[first : first + 100])
    await router.engine.run_once()

    # Every alert stored, every incident opened.
    assert await router.store.count_alerts() == 501
    assert len(await router.store.list_incidents(None, 1000)) == 501
    # The first 20 incidents paged one by one, then the P0; nothing else but one storm page.
    triggers = incident_triggers(pagerduty)
    assert len(triggers) == 21
    assert any(t["payload"]["summary"].startswith("[P0] DataCorruption") for t in triggers)
    (storm,) = storm_events(pagerduty)
    assert storm["dedup_key"] == "rr-storm-1:oncall"
    assert storm["payload"]["summary"] == (
        "[P0] Alert storm on oncall: 501 incidents opened in 60 s: 1 P0, 167 P1, 333 P2; "
        "top services ledger (334), api (167); list: http://router.test/incidents?state=open"
    )
    assert storm["payload"]["custom_details"]["by_severity"] == {"P0": 1, "P1": 167, "P2": 333}

    # A folded incident: its page stored as folded, its timeline says where it went.
    folded = await router.store.incident_detail(400)
    assert folded is not None
    assert [(p.event, p.state) for p in folded.pages if p.event == "trigger"] == [
        ("trigger", "folded")
    ]
    notes = [detail for kind, detail in await timeline(router, 400) if kind == "storm"]
    assert len(notes) == 1
    assert notes[0].startswith("page to oncall folded into the storm page of tier oncall (storm 1")
    assert metric(router, "router_storms_total", tier="oncall") == 1
    assert metric(router, "router_pages_folded_total", tier="oncall") == 480
    assert metric(router, "router_storming_tiers") == 1

    # More incidents inside the window fold too; no new storm page before update_every.
    for first_name in (1000, 2000):
        clock.advance(seconds=30)
        await send(client, *burst(30, first=first_name))
        await router.engine.run_once()
    assert len(storm_events(pagerduty)) == 1
    assert len(incident_triggers(pagerduty)) == 21

    # The window passes quietly: the storm ends, and the owed update goes out at update_every.
    clock.advance(minutes=2)
    await router.engine.run_once()
    assert metric(router, "router_storming_tiers") == 0
    assert len(storm_events(pagerduty)) == 1
    clock.advance(minutes=2)  # 5 minutes after the first storm page
    await router.engine.run_once()
    first, update = storm_events(pagerduty)
    assert update["dedup_key"] == first["dedup_key"]
    # From one window before the storm began until it ended (3 minutes after).
    assert update["payload"]["summary"].startswith(
        "[P0] Alert storm on oncall (over): 561 incidents opened in 4m: 1 P0, 187 P1, 373 P2;"
    )
    assert metric(router, "router_storms_total", tier="oncall") == 1

    # After the storm, a new incident is paged on its own again.
    await send(client, alert("AfterTheStorm", severity="high"))
    await router.engine.run_once()
    assert incident_triggers(pagerduty)[-1]["payload"]["summary"].startswith("[P1] AfterTheStorm")


async def test_escalation_goes_on_for_folded_incidents(
    router: RouterService, client: Client, clock: FakeClock, pagerduty: FakePagerDuty
) -> None:
    # 60 P1 incidents: oncall for 15 minutes, then lead (a log tier).
    await send(client, *[alert(f"Slow{n}", severity="high") for n in range(60)])
    await router.engine.run_once()
    assert len(incident_triggers(pagerduty)) == 20
    clock.advance(minutes=15)
    await router.engine.run_once()
    records = await router.store.list_incidents(None, 1000)
    # Every incident escalated as its policy says, folded or not.
    assert {record.progress.step for record in records} == {1}
    detail = await router.store.incident_detail(50)
    assert detail is not None
    escalations = [p for p in detail.pages if p.event == "escalate"]
    assert [(p.tier, p.state) for p in escalations] == [("lead", "folded")]
    assert any(
        kind == "storm" and detail.startswith("escalation page to lead folded")
        for kind, detail in await timeline(router, 50)
    )
    # lead is told once, by its own storm page; its first 20 escalations are paged one by one.
    pages = await router.store.list_pages()
    lead = [(p.event, p.state) for p in pages if p.tier == "lead"]
    assert lead.count(("escalate", "delivered")) == 20
    assert lead.count(("escalate", "folded")) == 40
    assert lead.count(("storm", "delivered")) == 1
    assert metric(router, "router_storms_total", tier="lead") == 1


async def test_below_the_threshold_every_incident_is_paged(
    router: RouterService, client: Client, pagerduty: FakePagerDuty
) -> None:
    await send(client, *burst(20))
    await router.engine.run_once()
    assert len(incident_triggers(pagerduty)) == 20
    assert storm_events(pagerduty) == []
    assert metric(router, "router_storms_total", tier="oncall") == 0


async def test_threshold_zero_turns_storm_pages_off(
    tmp_path: Path, clock: FakeClock, pagerduty: FakePagerDuty
) -> None:
    rules = storm_rules(tmp_path, "storm: {threshold: 0}\n")
    async with (
        running_router(
            tmp_path, clock, "sqlite", rules_dir=rules, pagerduty_events_url=pagerduty.url
        ) as router,
        TestClient(TestServer(router.web_app())) as client,
    ):
        await send(client, *burst(25))
        await router.engine.run_once()
    assert len(incident_triggers(pagerduty)) == 25
    assert storm_events(pagerduty) == []
