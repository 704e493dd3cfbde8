"""Escalation scenarios end to end inside one process: webhooks in, a moved clock, pages out.

Every test drives the real HTTP handlers, the real incident service and the real SQLite store; the
clock is the only thing the test controls. Pages go to the log channel and are read back from the
outbox and the timeline.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.app import RouterService
from router.metrics import Metrics

from .scenario import (
    SCENARIO_RULES,
    FakeClock,
    alert,
    incidents,
    metric,
    pages,
    router_client,
    router_fixture,
    send,
    tick,
    timeline,
)

Client = TestClient[Any, Any]


router = router_fixture()


client = router_client


async def test_first_tier_is_paged_at_once(router: RouterService, client: Client) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    assert (await pages(router)) == [("trigger", "oncall", 1, "delivered", "09:00")]
    (incident,) = await incidents(router)
    assert (incident["state"], incident["severity"], incident["rule"]) == (
        "triggered",
        "P0",
        "corruption",
    )
    kinds = [kind for kind, _ in await timeline(router, incident["id"])]
    assert kinds == ["opened", "classified", "runbook", "page", "page_delivered"]
    assert metric(router, "router_incidents_opened_total", severity="P0", rule="corruption") == 1


async def test_unacknowledged_step_escalates_to_the_next_tier(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    await tick(router, clock, minutes=4, seconds=59)
    assert len(await pages(router)) == 1
    await tick(router, clock, seconds=1)
    assert [p[:3] for p in (await pages(router))] == [
        ("trigger", "oncall", 1),
        ("escalate", "lead", 2),
    ]
    assert (await pages(router))[1][4] == "09:05"
    assert metric(router, "router_ack_sla_breaches_total", severity="P0", tier="oncall") == 1
    assert metric(router, "router_escalations_total", severity="P0", tier="lead") == 1
    details = [detail for kind, detail in await timeline(router, 1) if kind == "page"]
    assert (
        details[-1]
        == "ack SLA 5m lapsed with no acknowledgement: paging step 2: lead; acknowledge within 10m"
    )


async def test_acknowledgement_stops_escalation(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("SlowThing"))
    await router.engine.run_once()
    clock.advance(minutes=3)
    response = await client.post("/api/v1/incidents/1/ack", json={"by": "alice"})
    assert response.status == 200
    answer = await response.json()
    assert answer["changed"] is True
    assert answer["incident"]["state"] == "acknowledged"
    assert answer["incident"]["acknowledged_by"] == "alice"
    for _ in range(6):
        await tick(router, clock, hours=1)
    assert [p[:2] for p in (await pages(router))] == [
        ("trigger", "oncall"),
        ("acknowledge", "oncall"),
    ]
    assert metric(router, "router_ack_seconds_count", severity="P1") == 1
    assert metric(router, "router_ack_seconds_sum", severity="P1") == 180
    assert ("acknowledged", "acknowledged by alice via api: escalation stopped") in await timeline(
        router, 1
    )


async def test_last_step_repeats_then_escalation_is_exhausted(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    for minutes in (5, 10, 10, 10, 10, 60):
        await tick(router, clock, minutes=minutes)
    assert [(p[1], p[2], p[4]) for p in (await pages(router))] == [
        ("oncall", 1, "09:00"),
        ("lead", 2, "09:05"),
        ("manager", 3, "09:15"),
        ("manager", 3, "09:25"),  # repeat 1
    ]
    notes = dict(await timeline(router, 1))
    assert notes["exhausted"] == (
        "ack SLA 10m of step 3 (repeat 1) lapsed; escalation exhausted after 4 pages: nobody acknowledged"
    )
    (incident,) = await incidents(router)
    assert incident["state"] == "triggered" and incident["next_action_at"] is None


async def test_acknowledgement_expires_while_still_firing(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    await tick(router, clock, minutes=7)  # escalated to lead
    await client.post("/api/v1/incidents/1/ack", json={"by": "bob"})
    await tick(router, clock, minutes=59)
    assert (await incidents(router))[0]["state"] == "acknowledged"
    await tick(router, clock, minutes=1)
    (incident,) = await incidents(router)
    assert incident["state"] == "triggered"
    assert (await pages(router))[-1][:3] == ("escalate", "lead", 2)
    assert (await pages(router))[-1][4] == "10:07"
    assert any(
        detail.startswith(
            "acknowledgement expired after 1h while still firing: paging step 2: lead"
        )
        for kind, detail in await timeline(router, 1)
    )


async def test_business_hours_severity_waits_for_the_window(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    clock.now = clock.now.replace(day=28, hour=20)  # Saturday 21:00 in Berlin
    await send(client, alert("DiskAlmostFull", severity="warning"))
    await router.engine.run_once()
    assert (await pages(router)) == []
    waiting = [detail for kind, detail in await timeline(router, 1) if kind == "waiting"]
    assert waiting == [
        "incident opened; P2 pages wait for business hours: step 1 (oncall) at 2026-11-30T08:00:00+00:00"
    ]
    await tick(router, clock, hours=35, minutes=59)  # Monday 08:59 Berlin
    assert (await pages(router)) == []
    await tick(router, clock, minutes=1)
    assert (await pages(router)) == [("trigger", "oncall", 1, "delivered", "08:00")]


async def test_a_more_severe_alert_raises_the_incident_and_pages_again(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("Replication", severity="high", instance="db-1"))
    await router.engine.run_once()
    clock.advance(minutes=2)
    await send(client, alert("Replication", severity="critical", instance="db-2"))
    await router.engine.run_once()
    (incident,) = await incidents(router)
    assert incident["severity"] == "P0"
    assert [(p[0], p[1], p[4]) for p in (await pages(router))] == [
        ("trigger", "oncall", "09:00"),
        ("escalate", "oncall", "09:02"),
    ]
    # The P0 policy's times now apply: 5 minutes to the next step, not P1's 15.
    await tick(router, clock, minutes=5)
    assert (await pages(router))[-1][:2] == ("escalate", "lead")


async def test_resolution_during_escalation_stops_it_and_tells_who_was_paged(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    await tick(router, clock, minutes=6)  # lead paged
    clock.advance(minutes=1)
    await send(client, alert("DataCorruption", status="resolved"))
    await router.engine.run_once()
    for _ in range(4):
        await tick(router, clock, minutes=30)
    assert [p[:2] for p in (await pages(router))] == [
        ("trigger", "oncall"),
        ("escalate", "lead"),
        ("resolve", "oncall"),
        ("resolve", "lead"),
    ]
    (incident,) = await incidents(router)
    assert incident["state"] == "resolved"
    assert incident["resolved_by"] == "alertmanager (all alerts resolved)"


async def test_resolve_wins_over_a_racing_acknowledgement(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    resolve, ack = await asyncio.gather(
        client.post("/api/v1/incidents/1/resolve", json={"by": "carol"}),
        client.post("/api/v1/incidents/1/ack", json={"by": "dave"}),
    )
    assert (resolve.status, ack.status) == (200, 200)
    assert (await incidents(router))[0]["state"] == "resolved"
    late = await (await client.post("/api/v1/incidents/1/ack", json={"by": "erin"})).json()
    assert late["changed"] is False
    assert late["incident"]["state"] == "resolved"
    assert (
        "ignored",
        "acknowledgement by erin via api ignored: already resolved",
    ) in await timeline(router, 1)


async def test_the_same_webhook_twice_or_from_two_peers_pages_once(
    router: RouterService, client: Client
) -> None:
    firing = alert("DataCorruption")
    results = await asyncio.gather(*(send(client, firing) for _ in range(3)))
    assert sorted(result["new"] for result in results) == [0, 0, 1]
    await router.engine.run_once()
    await router.engine.run_once()
    assert len(await incidents(router)) == 1
    assert len(await pages(router)) == 1


async def test_a_refire_after_resolution_opens_a_new_incident(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("SlowThing"))
    await send(client, alert("SlowThing", status="resolved"))
    clock.advance(minutes=30)
    await send(client, alert("SlowThing", starts="2026-11-24T09:29:00Z"))
    await router.engine.run_once()
    states = [(incident["id"], incident["state"]) for incident in (await incidents(router))]
    assert states == [(1, "resolved"), (2, "triggered")]


async def test_escalations_survive_a_restart(
    router: RouterService, client: Client, clock: FakeClock, tmp_path: Path
) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    await router.close()
    # Down for 20 minutes: the 5-minute deadline fell due while nothing ran.
    clock.advance(minutes=20)
    again = RouterService(router.settings, metrics=Metrics(), clock=clock)
    await again.start()
    try:
        await again.engine.run_once()
        assert [p[:2] for p in (await pages(again))] == [
            ("trigger", "oncall"),
            ("escalate", "lead"),
        ]
        assert (
            again.metrics.registry.get_sample_value("router_escalation_lag_seconds_sum") == 15 * 60
        )
    finally:
        await again.close()
        await router.start()  # the fixture closes it again


async def test_a_page_claimed_by_a_dispatcher_that_died_is_sent_after_its_lease(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("DataCorruption"))
    await router.engine.escalate_due()  # the page is in the outbox, not yet sent
    # A dispatcher claims it and dies before sending or recording anything.
    claimed = await router.store.claim_due_pages(
        clock.now, 10, lease_until=clock.now + timedelta(minutes=2)
    )
    assert [page.tier for page in claimed] == ["oncall"]
    await router.engine.deliver_due()
    assert (await pages(router))[0][3] == "sending"  # still leased: nobody sends it twice
    clock.advance(minutes=2, seconds=1)
    await router.engine.deliver_due()
    (page,) = await router.store.list_pages()
    assert (page.state, page.attempts) == ("delivered", 1)


async def test_a_reload_that_drops_an_incidents_policy_and_severity_does_not_stop_escalation(
    router: RouterService, client: Client, clock: FakeClock, tmp_path: Path
) -> None:
    await send(client, alert("SlowThing"))  # P1 under policy default
    await router.engine.run_once()
    # New rules without P1: the open incident's severity is gone from them.
    rules = tmp_path / "reloaded"
    rules.mkdir()
    text = (SCENARIO_RULES / "rules.yaml").read_text()
    text = text.replace("  P1: {aliases: [high]}\n", "").replace("severity: P1", "severity: P0")
    text = text.replace(
        "    P1:\n      steps:\n        - {notify: [oncall], ack_within: 15m}\n"
        "        - {notify: [lead], ack_within: 30m}\n",
        "",
    )
    (rules / "rules.yaml").write_text(text)
    router.settings = router.settings.model_copy(update={"rules_dir": rules})
    assert router.reload_rules()
    assert "P1" not in {level.name for level in router.routing.rules.severities}
    await tick(router, clock, minutes=15)
    # Escalation goes on under the default severity's (P2) escalation: its step 2 is lead.
    assert [p[:2] for p in await pages(router)] == [("trigger", "oncall"), ("escalate", "lead")]
    response = await client.post("/api/v1/incidents/1/ack", json={"by": "alice"})
    assert response.status == 200
    assert (await incidents(router))[0]["state"] == "acknowledged"


async def test_running_engine_sends_acknowledgement_notices_at_once(
    router: RouterService, client: Client
) -> None:
    router.engine.start()

    async def states() -> list[tuple[str, str]]:
        return [(p[0], p[3]) for p in await pages(router)]

    await send(client, alert("DataCorruption"))
    for _ in range(40):  # the engine loop is woken by the webhook; 2 s at the most
        if await states() == [("trigger", "delivered")]:
            break
        await asyncio.sleep(0.05)
    await client.post("/api/v1/incidents/1/ack", json={"by": "alice"})
    for _ in range(20):  # woken again: well before its idle sleep (5 s) would end
        if await states() == [("trigger", "delivered"), ("acknowledge", "delivered")]:
            break
        await asyncio.sleep(0.05)
    assert await states() == [("trigger", "delivered"), ("acknowledge", "delivered")]


async def test_an_alert_still_firing_after_a_resolution_by_hand_opens_a_new_incident(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    firing = alert("DataCorruption")
    await send(client, firing)
    await client.post("/api/v1/incidents/1/resolve", json={"by": "carol"})
    clock.advance(minutes=10)
    # Alertmanager repeats the notification: the alert was never resolved at its source.
    await send(client, firing)
    await router.engine.run_once()
    states = [(incident["id"], incident["state"]) for incident in await incidents(router)]
    assert states == [(1, "resolved"), (2, "triggered")]
    assert [p[:2] for p in await pages(router, 2)] == [("trigger", "oncall")]
    # Repeats of a notification while its incident is open change nothing.
    await send(client, firing)
    assert len(await incidents(router)) == 2


async def test_a_late_firing_notice_after_the_alert_resolved_opens_nothing(
    router: RouterService, client: Client
) -> None:
    firing = alert("DataCorruption")
    await send(client, firing)
    await send(client, alert("DataCorruption", status="resolved"))
    await send(client, firing)  # a retry of the first delivery, arriving last
    assert [incident["state"] for incident in await incidents(router)] == ["resolved"]


async def test_reload_checks_page_templates_and_reads_a_new_override(
    router: RouterService, client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "with-templates"
    shutil.copytree(SCENARIO_RULES, rules)
    override = rules / "templates" / "log" / "trigger.j2"
    override.parent.mkdir(parents=True)
    router.settings = router.settings.model_copy(update={"rules_dir": rules})
    override.write_text("{% set title %}{{ incident.title }{% endset %}broken")
    assert not router.reload_rules()
    override.write_text(
        "{% set title %}[{{ incident.severity }}] OVERRIDDEN: {{ incident.title }}{% endset %}"
        "Acknowledge: {{ ack_url }}"
    )
    assert router.reload_rules()
    caplog.set_level(logging.WARNING, logger="router.page")
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    (line,) = [r for r in caplog.records if r.getMessage().startswith("PAGE")]
    assert line.fields["title"] == "[P0] OVERRIDDEN: DataCorruption: DataCorruption on ledger"  # type: ignore[attr-defined]


async def test_retention_deletes_old_resolved_incidents_and_keeps_open_ones(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("DataCorruption"))
    await send(client, alert("SlowThing"))
    await router.engine.run_once()
    await send(client, alert("DataCorruption", status="resolved"))
    await router.engine.run_once()
    assert await router.store.count_alerts() == 2
    clock.advance(days=89)
    await router.engine.run_once()
    assert len(await incidents(router)) == 2  # not old enough yet
    clock.advance(days=2)
    await router.engine.run_once()
    (kept,) = await incidents(router)
    assert (kept["id"], kept["state"]) == (2, "triggered")  # open incidents are never deleted
    assert await router.store.incident_detail(1) is None
    assert await router.store.count_alerts() == 1  # the firing alert stays
    assert {page.incident_id for page in await router.store.list_pages()} == {2}
    detail = await router.store.incident_detail(2)
    assert detail is not None and detail.events[0].kind == "opened"
