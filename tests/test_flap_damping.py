"""Flap damping end to end: `pending:` and `flapping:` with webhooks in, a moved clock, pages out.

Every test drives the real HTTP handlers, the incident service and the store (SQLite and
PostgreSQL); the clock is the only thing the test controls. Pages go to the log channel and are
read back from the outbox and the timeline.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.app import RouterService
from router.cli import main
from router.errors import ConfigError
from router.incidents.damping import Damping, Flapping
from router.rules import check_rules, load_rules

from .scenario import (
    FakeClock,
    alert,
    alertmanager_body,
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
DAMPING_RULES = Path(__file__).parent / "fixtures" / "rules" / "damping"


router = router_fixture(rules_dir=DAMPING_RULES)


client = router_client


def fired(name: str, clock: FakeClock, status: str = "firing", **labels: str) -> dict[str, Any]:
    """The alert `name` as Alertmanager sends it, started at the clock's time."""
    return alert(name, status=status, starts=clock.now.isoformat(), **labels)


async def triggers(router: RouterService) -> list[tuple[str, str, int, str, str]]:
    """The pages that call someone (trigger and escalate), not the notices."""
    return [page for page in await pages(router) if page[0] in ("trigger", "escalate")]


async def test_a_blip_inside_pending_pages_nobody(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    blip = fired("DiskFilling", clock)
    await send(client, blip)
    await router.engine.run_once()
    (incident,) = await incidents(router)
    assert incident["state"] == "pending"
    assert metric(router, "router_open_incidents", severity="P0", state="pending") == 1
    await tick(router, clock, seconds=90)
    await send(client, {**blip, "status": "resolved"})
    await tick(router, clock, minutes=30)
    assert await pages(router) == []
    (incident,) = await incidents(router)
    assert incident["state"] == "resolved"
    notes = dict(await timeline(router, incident["id"]))
    assert notes["pending"].startswith("incident opened; pending 2m: pages at ")
    assert notes["resolved"] == (
        "resolved by alertmanager (all alerts resolved); resolved after 1m30s, inside pending "
        "2m: nobody paged"
    )
    assert metric(router, "router_pending_ended_total", severity="P0", outcome="resolved") == 1
    assert metric(router, "router_pending_ended_total", severity="P0", outcome="paged") == 0
    assert metric(router, "router_open_incidents", severity="P0", state="pending") == 0


async def test_an_alert_still_firing_after_pending_pages_once_and_escalates_from_then(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, fired("DiskFilling", clock))
    await tick(router, clock, seconds=119)
    assert await pages(router) == []
    await tick(router, clock, seconds=1)
    assert await pages(router) == [("trigger", "oncall", 1, "delivered", "09:02")]
    (incident,) = await incidents(router)
    assert incident["state"] == "triggered"
    kinds = [kind for kind, _ in await timeline(router, incident["id"])]
    assert kinds[:5] == ["opened", "classified", "runbook", "pending", "page"]
    # The step's ack_within (5m) counts from the page, not from the alert.
    await tick(router, clock, minutes=4, seconds=59)
    assert len(await triggers(router)) == 1
    await tick(router, clock, seconds=1)
    assert [page[:3] for page in await triggers(router)] == [
        ("trigger", "oncall", 1),
        ("escalate", "lead", 2),
    ]
    assert metric(router, "router_pending_ended_total", severity="P0", outcome="paged") == 1


async def test_the_severity_pending_applies_when_the_rule_sets_none(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(
        client, fired("SlowThing", clock), fired("SlowNow", clock), fired("DataCorruption", clock)
    )
    await router.engine.run_once()
    states = {item["rule"]: item["state"] for item in await incidents(router)}
    assert states == {"slow": "pending", "slow-now": "triggered", "corruption": "triggered"}
    await tick(router, clock, minutes=2)
    states = {item["rule"]: item["state"] for item in await incidents(router)}
    assert states["slow"] == "triggered"
    assert len(await triggers(router)) == 3


async def flap(
    client: Client, router: RouterService, clock: FakeClock, name: str, times: int
) -> None:
    """Fire and resolve `name` `times` times, 100 s firing and 100 s quiet each time."""
    for _ in range(times):
        instance = fired(name, clock)
        await send(client, instance)
        await tick(router, clock, seconds=100)
        await send(client, {**instance, "status": "resolved"})
        await tick(router, clock, seconds=100)


async def test_a_flapping_alert_pages_once_and_settles_after_the_quiet_time(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await flap(client, router, clock, "LinkFlap", 6)  # 20 minutes
    assert [page[:2] for page in await pages(router)] == [
        ("trigger", "oncall"),
        ("resolve", "oncall"),
    ]
    (incident,) = await incidents(router)
    assert incident["state"] == "flapping"
    notes = await timeline(router, incident["id"])
    flapping = [detail for kind, detail in notes if kind == "flapping"]
    assert flapping == [
        "fired again 1m40s after it resolved (1 of 1 re-fires within 30m): flapping; its alerts "
        "join it and page nobody until it has been quiet for 15m"
    ]
    # Reopened once; the later re-fires joined the open, flapping incident.
    assert [kind for kind, _ in notes].count("reopened") == 1
    assert metric(router, "router_flapping_total", severity="P0", event="started") == 1
    assert metric(router, "router_open_incidents", severity="P0", state="flapping") == 1
    # The last resolution was 100 s ago: 15 minutes quiet after it, the incident resolves.
    await tick(router, clock, minutes=13)
    assert (await incidents(router))[0]["state"] == "flapping"
    await tick(router, clock, minutes=1, seconds=40)
    (incident,) = await incidents(router)
    assert incident["state"] == "resolved"
    assert (await timeline(router, incident["id"]))[-1] == (
        "resolved",
        "quiet for 15m after flapping, with no alert firing: resolved",
    )
    assert [page[:2] for page in await pages(router)] == [
        ("trigger", "oncall"),
        ("resolve", "oncall"),
    ]
    assert metric(router, "router_flapping_total", severity="P0", event="resolved") == 1
    assert metric(router, "router_open_incidents", severity="P0", state="flapping") == 0


async def test_a_flapping_alert_still_firing_after_the_quiet_time_pages_again(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await flap(client, router, clock, "LinkFlap", 1)
    await send(client, fired("LinkFlap", clock))
    await tick(router, clock, minutes=14, seconds=59)
    assert len(await triggers(router)) == 1
    await tick(router, clock, seconds=1)
    (incident,) = await incidents(router)
    assert incident["state"] == "triggered"
    assert [page[:2] for page in await triggers(router)] == [("trigger", "oncall")] * 2
    assert metric(router, "router_flapping_total", severity="P0", event="still_firing") == 1
    # Back to normal: it escalates as its policy says, from the new page.
    await tick(router, clock, minutes=5)
    assert [page[:2] for page in await triggers(router)][-1] == ("escalate", "lead")


async def test_re_fires_below_the_count_page_and_a_re_fire_after_the_window_opens_a_new_incident(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await flap(client, router, clock, "PortFlap", 4)
    (incident,) = await incidents(router)
    assert incident["state"] == "flapping"
    # Fired 4 times; the 4th (the 3rd re-fire) made it flapping: 3 pages, one incident.
    assert len(await triggers(router)) == 3
    reopened = [detail for kind, detail in await timeline(router, incident["id"]) if kind == "page"]
    assert "fired again 1m40s after it resolved (2 of 3 re-fires within 30m)" in reopened[-1]
    await tick(router, clock, minutes=15)
    assert (await incidents(router))[0]["state"] == "resolved"
    # Past the window, a re-fire is a new incident, as without flap detection.
    await tick(router, clock, minutes=31)
    await send(client, fired("PortFlap", clock))
    await router.engine.run_once()
    assert [item["state"] for item in await incidents(router)] == ["resolved", "triggered"]


async def test_acknowledging_a_pending_incident_pages_nobody(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, fired("DiskFilling", clock))
    (incident,) = await incidents(router)
    outcome = await router.incidents.acknowledge(incident["id"], "ana", "api", clock.now)
    assert outcome.changed
    await tick(router, clock, minutes=10)
    assert await pages(router) == []
    assert metric(router, "router_pending_ended_total", severity="P0", outcome="acknowledged") == 1


async def test_the_api_lists_pending_and_flapping_incidents_as_open(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    await send(client, fired("DiskFilling", clock))
    await flap(client, router, clock, "LinkFlap", 2)
    headers = {"Authorization": f"Bearer {router.settings.api_token or ''}"}
    found = {}
    for state in ("open", "pending", "flapping"):
        response = await client.get(f"/api/v1/incidents?state={state}", headers=headers)
        assert response.status == 200, await response.text()
        found[state] = sorted(item["state"] for item in (await response.json())["incidents"])
    assert found == {"open": ["flapping", "triggered"], "pending": [], "flapping": ["flapping"]}


# --- the rules -----------------------------------------------------------------------------------


def test_a_rule_overrides_its_severity_setting_by_setting() -> None:
    rules = load_rules(DAMPING_RULES, {}, strict_secrets=True)
    two = timedelta(minutes=2)
    assert rules.damping("slow", "P1") == Damping(pending=two)
    assert rules.damping("slow-now", "P1").pending_period is None
    assert rules.damping("disk-filling", "P0") == Damping(pending=two)
    assert rules.damping(None, "P1") == Damping(pending=two)
    assert rules.damping("link-flap", "P0").flapping == Flapping(
        1, timedelta(minutes=30), timedelta(minutes=15)
    )
    assert rules.damping("gone", "P9") == Damping()


BAD_RULES = """\
severities:
  P0: {pending: soon}
  P1: {flapping: {resolves: 0, within: 30m, quiet: 15m}}
tiers: {oncall: {log: true}}
policies:
  default:
    P0: {steps: [{notify: [oncall]}]}
    P1: {steps: [{notify: [oncall]}]}
rules:
  - name: a
    matchers: ['alertname="A"']
    severity: P0
    pending: -1m
  - name: b
    matchers: ['alertname="B"']
    severity: P0
    flapping: {resolves: 2, within: 30m, quite: 15m}
  - name: c
    matchers: ['alertname="C"']
    severity: P0
    flapping: 3
"""


def test_bad_damping_settings_are_errors_with_their_place(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "a.yaml").write_text(BAD_RULES)
    report = check_rules(directory, {})
    lines = [line.removeprefix(f"{directory}/") for line in report.lines]
    assert lines == [
        'a.yaml:2: severity P0: pending: bad duration "soon" (use units y w d h m s ms, e.g. 30s, '
        "5m, 1h30m)",
        "a.yaml:3: severity P1: flapping: resolves: must be a whole number 1 or more, got the "
        "number 0",
        'a.yaml:13: rule a: pending: bad duration "-1m" (use units y w d h m s ms, e.g. 30s, 5m, '
        "1h30m)",
        'a.yaml:17: rule b: flapping: unknown key "quite" (did you mean "quiet"?)',
        "a.yaml:17: rule b: flapping: quiet: is missing",
        "a.yaml:21: rule c: flapping: must be a mapping with resolves:, within: and quiet:, got "
        "the number 3",
    ]
    with pytest.raises(ConfigError):
        load_rules(directory, {}, strict_secrets=True)


# --- route: what the damping changes ----------------------------------------------------------


def damping_payload(clock: FakeClock) -> str:
    return json.dumps(alertmanager_body(fired("DiskFilling", clock), fired("LinkFlap", clock)))


def test_route_shows_the_pending_period_and_flap_detection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(damping_payload(FakeClock()))
    at = ["--rules", str(DAMPING_RULES), "--at", "2026-11-24T09:00:00Z"]
    assert main(["route", str(payload), *at, "--json"]) == 0
    disk, link = json.loads(capsys.readouterr().out)["alerts"]
    assert (disk["pending_seconds"], disk["flapping"]) == (120, None)
    assert disk["timeline"][0]["at_seconds"] == 120  # step 1 waits out the pending period
    assert link["pending_seconds"] is None
    assert link["flapping"] == {"resolves": 1, "within_seconds": 1800, "quiet_seconds": 900}
    assert link["timeline"][0]["at_seconds"] == 0
    assert main(["route", str(payload), *at]) == 0
    text = capsys.readouterr().out
    assert (
        "  damping   pending 2m: step 1 pages only if the alert still fires 2m after it opened; "
        "resolved before, nobody is paged\n" in text
    )
    assert "  damping   flap detection: resolved and fired again 1 time within 30m" in text


async def test_the_routing_page_shows_the_damping(client: Client, clock: FakeClock) -> None:
    response = await client.post(
        "/routing", data={"payload": damping_payload(clock)}, headers={"Host": "router.test"}
    )
    assert response.status == 200
    html = await response.text()
    assert "pending 2m: step 1 pages only if the alert still fires 2m after it opened" in html
    assert "flap detection: resolved and fired again 1 time within 30m" in html
