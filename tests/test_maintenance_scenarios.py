"""Maintenance windows end to end inside one process: webhooks in, a moved clock, pages out.

The rules (tests/fixtures/rules/maintenance) declare a weekly deploy of `ledger` (Tuesdays
14:00-16:00 in Berlin), a billing migration (weekdays 09:00-12:00 in Berlin) and a one-off key
rotation of `vault` that hides P0 alerts too. The clock starts on Tuesday 2026-11-24, 10:00 in
Berlin (09:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService

from .scenario import (
    FakeClock,
    alert,
    incidents,
    metric,
    pages,
    router_client,
    router_fixture,
    running_router,
    send,
    tick,
    timeline,
)

Client = TestClient[Any, Any]
MAINTENANCE_RULES = Path(__file__).parent / "fixtures" / "rules" / "maintenance"


router = router_fixture(rules_dir=MAINTENANCE_RULES)


client = router_client


async def test_a_window_suppresses_then_pages_on_expiry_as_a_new_trigger(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("SlowThing", service="billing"))
    await router.engine.run_once()
    (incident,) = await incidents(router)
    assert (incident["state"], incident["severity"]) == ("suppressed", "P1")
    assert incident["next_action"] == "window_ends"
    assert incident["next_action_at"] == "2026-11-24T11:00:00+00:00"  # 12:00 in Berlin
    assert await pages(router) == []
    notes = dict(await timeline(router, incident["id"]))
    assert "maintenance window billing-morning (billing migration)" in notes["suppressed"]
    assert metric(router, "router_alerts_suppressed_total", window="billing-morning") == 1
    assert metric(router, "router_open_incidents", severity="P1", state="suppressed") == 1

    # Nothing before the window ends, however often the engine looks.
    await tick(router, clock, minutes=59)
    await tick(router, clock, minutes=60)
    assert await pages(router) == []

    await tick(router, clock, minutes=1)  # 12:00 Berlin: still firing
    assert await pages(router) == [("trigger", "oncall", 1, "delivered", "11:00")]
    (incident,) = await incidents(router)
    assert incident["state"] == "triggered"
    kinds = [kind for kind, _ in await timeline(router, incident["id"])]
    assert kinds[-2:] == ["page", "page_delivered"]
    assert "maintenance window ended" in dict(await timeline(router, incident["id"]))["page"]

    # Escalation runs from the window's end: P1 waits 15 minutes for an acknowledgement.
    await tick(router, clock, minutes=14)
    assert len(await pages(router)) == 1
    await tick(router, clock, minutes=1)
    assert [p[:3] for p in await pages(router)] == [
        ("trigger", "oncall", 1),
        ("escalate", "lead", 2),
    ]


async def test_a_window_never_hides_a_p0_unless_it_says_so(
    router: RouterService, client: Client
) -> None:
    await send(client, alert("DataCorruption", service="billing"))
    await send(client, alert("DataCorruption", service="vault"))
    await router.engine.run_once()
    billing, vault = await incidents(router)
    assert (billing["severity"], billing["state"]) == ("P0", "triggered")
    assert (vault["severity"], vault["state"]) == ("P0", "suppressed")
    assert await pages(router, billing["id"]) == [("trigger", "oncall", 1, "delivered", "09:00")]
    assert await pages(router, vault["id"]) == []
    assert (
        "vault-rotation (key rotation)" in dict(await timeline(router, vault["id"]))["suppressed"]
    )


async def test_an_alert_resolved_inside_its_window_pages_nobody(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, alert("SlowThing", service="billing"))
    await tick(router, clock, minutes=30)
    await send(client, alert("SlowThing", service="billing", status="resolved"))
    await tick(router, clock, hours=3)
    (incident,) = await incidents(router)
    assert incident["state"] == "resolved"
    assert await pages(router) == []
    resolved = dict(await timeline(router, incident["id"]))["resolved"]
    assert "inside its maintenance window: nobody was paged" in resolved


async def test_an_alert_outside_every_window_joining_a_suppressed_incident_pages_it(
    router: RouterService, client: Client
) -> None:
    # The incident groups by alertname and service; the canary window holds only for the
    # canary instance of api, so another instance's alert joins the incident from outside it.
    await send(client, alert("SlowThing", service="api", instance="canary"))
    await router.engine.run_once()
    (incident,) = await incidents(router)
    assert incident["state"] == "suppressed"
    await send(client, alert("SlowThing", service="api", instance="main"))
    await router.engine.run_once()
    (incident,) = await incidents(router)
    assert incident["state"] == "triggered"
    assert await pages(router) == [("trigger", "oncall", 1, "delivered", "09:00")]
    page_note = dict(await timeline(router, incident["id"]))["page"]
    assert "instance main" not in page_note and "joined outside any maintenance window" in page_note
    assert metric(router, "router_alerts_suppressed_total", window="canary") == 1


async def test_a_recurring_window_is_read_in_its_time_zone_across_a_dst_change(
    tmp_path: Path, database: str
) -> None:
    # Tuesday 14:00-16:00 in Berlin is 12:00-14:00 UTC in summer time (20 October 2026) and
    # 13:00-15:00 UTC after the clocks went back on 25 October.
    for day, inside, outside, ends in (
        (20, (12, 10), (14, 5), "2026-10-20T14:00:00+00:00"),
        (27, (13, 10), (12, 30), "2026-10-27T15:00:00+00:00"),
    ):
        clock = FakeClock(datetime(2026, 10, day, *outside, tzinfo=UTC))
        async with (
            running_router(
                tmp_path / str(day), clock, database, rules_dir=MAINTENANCE_RULES
            ) as router,
            TestClient(TestServer(router.web_app())) as client,
        ):
            await send(client, alert("SlowThing", starts=f"2026-10-{day}T10:00:00Z"))
            clock.now = datetime(2026, 10, day, *inside, tzinfo=UTC)
            await send(client, alert("DiskFull", severity="high"))
            await router.engine.run_once()
            # By number: the clock went back between the two on the 20th.
            before, during = sorted(await incidents(router), key=lambda i: int(i["id"]))
            # The first fired outside the window and paged; the second opened inside it.
            assert before["state"] == "triggered"
            assert (during["state"], during["next_action_at"]) == ("suppressed", ends)
            clock.now = datetime.fromisoformat(ends)
            await router.engine.run_once()
            assert [p[0] for p in await pages(router, during["id"])] == ["trigger"]


async def test_the_console_lists_suppressed_incidents_and_says_until_when(
    router: RouterService, client: Client
) -> None:
    await send(client, alert("SlowThing", service="billing"))
    await send(client, alert("SlowThing", service="payments"))
    host = {"Host": "router.test"}
    listed = await (await client.get("/incidents?state=suppressed", headers=host)).text()
    assert (
        listed.count('class="state-suppressed"') == 1
        and "billing" not in listed.split("<tbody>")[0]
    )
    everything_open = await (await client.get("/incidents?state=open", headers=host)).text()
    assert everything_open.count("<tr>") == 3  # the header and both incidents
    (suppressed,) = [i for i in await incidents(router) if i["state"] == "suppressed"]
    detail = await (await client.get(f"/incidents/{suppressed['id']}", headers=host)).text()
    assert 'id="suppressed">by a maintenance window until' in detail
    api = await client.get("/api/v1/incidents?state=suppressed")
    assert api.status == 200, await api.text()
    assert [i["id"] for i in (await api.json())["incidents"]] == [suppressed["id"]]


async def test_a_window_made_by_another_replica_hides_alerts_within_a_second(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    from router.maintenance.windows import run_time_window

    await send(client, alert("Warmup", service="web"))  # this process reads the windows now
    window = run_time_window(
        name="elsewhere",
        matchers=('service="api"',),
        starts_at=clock.now,
        ends_at=clock.now.replace(hour=clock.now.hour + 2),
        reason="made through another replica",
    )
    # Written straight to the shared store, as another replica's API would.
    await router.store.write("add window", lambda tx: tx.add_maintenance_window(window, clock.now))
    await send(client, alert("SlowThing", service="api"))
    clock.advance(seconds=1)
    await send(client, alert("DiskFull", service="api"))
    states = {i["title"].split(":")[0]: i["state"] for i in await incidents(router)}
    # Within the refresh the webhooks use the windows read before; then they see it.
    assert states == {"Warmup": "triggered", "SlowThing": "triggered", "DiskFull": "suppressed"}
