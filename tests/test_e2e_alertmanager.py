"""End to end: a real Alertmanager sends real webhooks to a real `runbook-router serve` process.

Alerts are pushed into Alertmanager's API v2; Alertmanager groups them and posts them to the router
with a bearer token, as a user would configure it. The router pages a fake PagerDuty Events API
and a real SMTP server (both on loopback, in this process), escalates when its short, test-set
`ack_within` lapses, takes an acknowledgement through the link in the email, and resolves
PagerDuty when Alertmanager resolves the alert. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.metrics import Metrics
from router.settings import Settings
from router.store.base import IncidentRecord

from .conftest import ROOT
from .fakes import FakePagerDuty, SmtpServer, text_of
from .scenario import SCENARIO_RULES, FakeClock
from .support import (
    free_port,
    require_tool,
    router_env,
    start_router,
    stop,
    wait_until_healthy,
    wait_until_ready,
)

pytestmark = pytest.mark.process

TOKEN = "e2e-webhook-token"
API_TOKEN = "e2e-api-token"
ONCALL_KEY = "E2EONCALL00000000000000000000000"
LEAD_KEY = "E2ELEAD0000000000000000000000000"
ACK_WITHIN_SECONDS = 3

# The shipped classification rules and runbooks, with escalation times short enough to watch.
ESCALATION = f"""
timezone: UTC
business_hours: {{days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00"}}
runbook_base_url: https://git.example.com/ops/runbooks/blob/main/
group_by: [alertname, service]
default_severity: P2
severities:
  P0: {{aliases: [critical]}}
  P1: {{aliases: [high]}}
  P2: {{aliases: [warning]}}
  P3: {{aliases: [info]}}
tiers:
  oncall:
    pagerduty: {{routing_key: "${{PD_ONCALL_KEY}}"}}
    apprise: ["${{ONCALL_EMAIL}}"]
  team-lead:
    pagerduty: {{routing_key: "${{PD_LEAD_KEY}}"}}
    apprise: ["${{LEAD_EMAIL}}"]
  eng-manager: {{log: true}}
  cto: {{log: true}}
  team-queue: {{log: true}}
policies:
  default: &short
    P0:
      steps:
        - {{notify: [oncall], ack_within: {ACK_WITHIN_SECONDS}s}}
        - {{notify: [team-lead], ack_within: {ACK_WITHIN_SECONDS}s}}
        - {{notify: [eng-manager], ack_within: {ACK_WITHIN_SECONDS}s}}
        - {{notify: [cto]}}
    P1:
      steps:
        - {{notify: [oncall], ack_within: 1h}}
        - {{notify: [team-lead]}}
    P2:
      steps:
        - {{notify: [team-queue]}}
    P3:
      steps:
        - {{notify: [team-queue]}}
  zkp-ledger: *short
"""


def alertmanager_config(router_port: int, repeat_interval: str = "1h") -> str:
    return f"""
route:
  receiver: runbook-router
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: {repeat_interval}
receivers:
  - name: runbook-router
    webhook_configs:
      - url: http://127.0.0.1:{router_port}/webhooks/alertmanager
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Alertmanager:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *alerts: dict[str, Any]) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(list(alerts)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200


def start_alertmanager(
    binary: str, directory: Path, router_port: int, repeat_interval: str = "1h"
) -> Alertmanager:
    directory.mkdir()
    config = directory / "alertmanager.yml"
    config.write_text(alertmanager_config(router_port, repeat_interval))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: each instance stands alone
            "--log.level=warn",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wait_until_ready(process, f"http://127.0.0.1:{port}/-/ready", "alertmanager")
    return Alertmanager(process, port)


@dataclass
class Stack:
    alertmanager_binary: str
    router_port: int
    database: Path
    pagerduty: FakePagerDuty
    smtp: SmtpServer
    alertmanagers: list[Alertmanager] = field(default_factory=list)

    def api(self, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.router_port}{path}",
            data=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            method="POST" if body is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    def stored_alerts(self) -> int:
        with sqlite3.connect(self.database) as connection:
            return int(connection.execute("SELECT count(*) FROM alerts").fetchone()[0])

    def pagerduty_events(self, action: str, routing_key: str | None = None) -> list[dict[str, Any]]:
        return [
            event
            for event in self.pagerduty.events
            if event["event_action"] == action
            and (routing_key is None or event["routing_key"] == routing_key)
        ]

    def mails_to(self, address: str) -> list[str]:
        return [text_of(message) for message in self.smtp.messages if address in message["To"]]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    binary = require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "10-escalation.yaml").write_text(ESCALATION)
    pagerduty = FakePagerDuty()
    await pagerduty.start()
    smtp = SmtpServer()
    smtp.start()
    port = free_port()
    database = tmp_path / "router.db"
    env = router_env(
        port=str(port),
        database_url=f"sqlite:///{database}",
        rules_dir=str(rules),
        webhook_token=TOKEN,
        api_token=API_TOKEN,
        pagerduty_events_url=pagerduty.url,
        public_url=f"http://127.0.0.1:{port}",
    )
    env |= {
        "PD_ONCALL_KEY": ONCALL_KEY,
        "PD_LEAD_KEY": LEAD_KEY,
        "ONCALL_EMAIL": smtp.mailto("oncall@example.com"),
        "LEAD_EMAIL": smtp.mailto("lead@example.com"),
    }
    router = start_router(env)
    the_stack = Stack(binary, port, database, pagerduty, smtp)
    try:
        wait_until_healthy(router, port)
        yield the_stack
    finally:
        for manager in the_stack.alertmanagers:
            manager.process.terminate()
            manager.process.communicate(timeout=10)
        code, output = stop(router)
        smtp.stop()
        await pagerduty.close()
    assert code == 0, output
    assert TOKEN not in output and ONCALL_KEY not in output


def add_alertmanager(stack: Stack, tmp_path: Path) -> Alertmanager:
    directory = tmp_path / f"am{len(stack.alertmanagers)}"
    manager = start_alertmanager(stack.alertmanager_binary, directory, stack.router_port)
    stack.alertmanagers.append(manager)
    return manager


def corruption_alert(starts: datetime, ends: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "LedgerDataCorruption",
            "service": "ledger",
            "severity": "critical",
        },
        "annotations": {
            "summary": "Checksum mismatch on ledger block 118812",
            "description": "Possible data corruption in the ledger store.",
        },
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=ledger_checksum_mismatch_total",
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat().replace("+00:00", "Z")
    return alert


async def test_page_escalate_acknowledge_and_resolve_through_a_real_alertmanager(
    stack: Stack, tmp_path: Path
) -> None:
    manager = add_alertmanager(stack, tmp_path)
    starts = datetime.now(UTC).replace(microsecond=0)
    manager.push(corruption_alert(starts))

    # The P0 tier is paged on PagerDuty and by email, both carrying the runbook section.
    (trigger,) = await eventually(lambda: stack.pagerduty_events("trigger", ONCALL_KEY), "P0 page")
    details = trigger["payload"]["custom_details"]
    assert trigger["payload"]["severity"] == "critical"
    assert "Data Corruption Detected" in json.dumps(details)
    assert "Immediate Actions" in json.dumps(details)
    (mail,) = await eventually(lambda: stack.mails_to("oncall@example.com"), "P0 email")
    assert "Data Corruption Detected" in mail
    assert "zkp-ledger.md#data-corruption-detected" in mail
    ack_link = re.search(r"http://127\.0\.0\.1:\d+/ack/[A-Za-z0-9._-]+", mail)
    assert ack_link is not None

    # Nobody acknowledges within ack_within: the next tier is paged.
    await eventually(lambda: stack.pagerduty_events("trigger", LEAD_KEY), "escalation", timeout=15)
    await eventually(lambda: stack.mails_to("lead@example.com"), "escalation email", timeout=15)

    # Acknowledging through the link in the first email stops escalation...
    request = urllib.request.Request(ack_link.group(), data=b"by=e2e", method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert "acknowledged by e2e via link" in answer.read().decode()
    (incident,) = stack.api("/api/v1/incidents")["incidents"]
    assert incident["state"] == "acknowledged"
    # ... and is passed on to PagerDuty for both tiers that it paged.
    await eventually(lambda: len(stack.pagerduty_events("acknowledge")) == 2, "PagerDuty ack")
    await asyncio.sleep(ACK_WITHIN_SECONDS + 1.5)
    detail = stack.api(f"/api/v1/incidents/{incident['id']}")
    paged_tiers = [e["detail"] for e in detail["timeline"] if e["kind"] == "page_delivered"]
    assert not any("eng-manager" in line for line in paged_tiers), paged_tiers

    # Resolving the alert in Alertmanager resolves the incident and PagerDuty, same dedup_key.
    manager.push(corruption_alert(starts, ends=datetime.now(UTC) - timedelta(seconds=1)))
    resolves = await eventually(
        lambda: len(stack.pagerduty_events("resolve")) == 2 and stack.pagerduty_events("resolve"),
        "resolve",
    )
    assert {event["dedup_key"] for event in resolves} == {trigger["dedup_key"]}
    assert stack.api(f"/api/v1/incidents/{incident['id']}")["state"] == "resolved"
    assert len(stack.pagerduty_events("trigger")) == 2  # oncall, then team-lead: nothing twice


async def test_two_alertmanagers_sending_the_same_alert_page_once(
    stack: Stack, tmp_path: Path
) -> None:
    first, second = add_alertmanager(stack, tmp_path), add_alertmanager(stack, tmp_path)
    starts = datetime.now(UTC).replace(microsecond=0)
    first.push(corruption_alert(starts))
    second.push(corruption_alert(starts))
    await eventually(lambda: stack.pagerduty_events("trigger", ONCALL_KEY), "P0 page")
    # Both deliveries arrive (the alert is stored once) and the page is not repeated.
    await eventually(lambda: stack.stored_alerts() == 1, "the alert stored")
    await asyncio.sleep(1.5)
    assert len(stack.pagerduty_events("trigger", ONCALL_KEY)) == 1
    assert len(stack.mails_to("oncall@example.com")) == 1
    assert len(stack.api("/api/v1/incidents")["incidents"]) == 1


async def test_a_burst_of_1000_alerts_is_all_received_and_stored(
    stack: Stack, tmp_path: Path
) -> None:
    manager = add_alertmanager(stack, tmp_path)
    starts = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    burst = [
        {
            "labels": {
                "alertname": "BurstNoise",
                "service": f"svc-{n % 20}",
                "instance": f"host-{n}",
                "severity": "info",
            },
            "annotations": {"summary": f"noise {n}"},
            "startsAt": starts,
        }
        for n in range(1000)
    ]
    for chunk in range(0, len(burst), 250):
        manager.push(*burst[chunk : chunk + 250])
    await eventually(lambda: stack.stored_alerts() == 1000, "1,000 alerts stored", timeout=60)
    incidents = stack.api("/api/v1/incidents?limit=500")["incidents"]
    assert len(incidents) == 20
    assert {incident["severity"] for incident in incidents} == {"P3"}


# --- the Watchdog heartbeat ---------------------------------------------------------------------


def watchdog_alert(starts: datetime) -> dict[str, Any]:
    return {
        "labels": {"alertname": "Watchdog", "severity": "none"},
        "annotations": {"summary": "An alert that should always be firing"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
    }


async def test_the_watchdog_through_a_real_alertmanager_keeps_its_heartbeat_alive(
    tmp_path: Path,
) -> None:
    """The router runs in this process, so that the test moves its clock (minutes of silence in
    no time); Alertmanager is real and re-sends the Watchdog every second (its repeat_interval)."""
    binary = require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    rules = tmp_path / "rules"
    shutil.copytree(SCENARIO_RULES, rules)
    (rules / "30-heartbeats.yaml").write_text(
        "heartbeats:\n"
        "  - {name: watchdog, matchers: ['alertname=\"Watchdog\"'], interval: 10m, severity: P1}\n"
    )
    clock = FakeClock(datetime.now(UTC))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        webhook_token=TOKEN,
        rules_dir=rules,
    )
    service = RouterService(settings, metrics=Metrics(), clock=clock)
    await service.start()
    managers: list[Alertmanager] = []

    async def last_beat() -> datetime | None:
        record = (await service.store.heartbeats()).get("watchdog")
        return record.last_beat_at if record else None

    async def open_incidents() -> list[IncidentRecord]:
        return await service.store.list_incidents(None, 10)

    try:
        async with TestClient(TestServer(service.web_app(), host="127.0.0.1")) as client:
            port = client.server.port
            assert port is not None
            manager = start_alertmanager(binary, tmp_path / "am0", port, repeat_interval="1s")
            managers.append(manager)
            manager.push(watchdog_alert(datetime.now(UTC)))
            await eventually(last_beat, "the first Watchdog beat")

            # Nine minutes later (router time) Alertmanager has re-sent it: still alive.
            for _ in range(2):
                clock.advance(minutes=9)
                await service.engine.run_once()
                assert await open_incidents() == []
                await eventually(
                    lambda now=clock.now: _equals(last_beat(), now), "a re-sent Watchdog"
                )

            # Alertmanager stops (the alerting pipeline is broken): 10 minutes of silence page.
            manager.process.terminate()
            manager.process.communicate(timeout=10)
            managers.clear()
            clock.advance(minutes=10)
            await service.engine.run_once()
            (incident,) = await open_incidents()
            assert incident.title == "Heartbeat watchdog: nothing received for 10m"
            assert [page.event for page in await service.store.list_pages()] == ["trigger"]

            # Alerting comes back: the first Watchdog resolves it.
            manager = start_alertmanager(binary, tmp_path / "am1", port, repeat_interval="1s")
            managers.append(manager)
            manager.push(watchdog_alert(datetime.now(UTC)))
            await eventually(
                lambda: _resolved(service, incident.id), "the incident resolved by the Watchdog"
            )
            assert len(await service.store.list_incidents(None, 10)) == 1
    finally:
        for running in managers:
            running.process.terminate()
            running.process.communicate(timeout=10)
        await service.close()


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


async def _resolved(service: RouterService, incident_id: int) -> bool:
    detail = await service.store.incident_detail(incident_id)
    return detail is not None and detail.incident.state.value == "resolved"
