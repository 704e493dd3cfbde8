"""A channel outage longer than the delivery deadline, inside one process with a moved clock: the
real HTTP handlers, incident service, engine and outbox on SQLite, PagerDuty faked on loopback
(answering 500, then 202 again) and the tier's second channel, a JSON webhook, answering all along.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.metrics import Metrics
from router.settings import Settings

from ..conftest import WEBHOOK_TOKEN
from ..fakes import FakePagerDuty, Receiver
from ..scenario import FakeClock, alert, send, timeline

RULES = """
timezone: UTC
runbook_base_url: https://git.example.com/runbooks/
group_by: [alertname]
default_severity: P0
severities:
  P0: {aliases: [critical]}
tiers:
  oncall:
    pagerduty: {routing_key: "${PD_KEY}"}
    apprise: ["${HOOK}"]
  lead: {log: true}
policies:
  default:
    P0:
      steps:
        - {notify: [oncall], ack_within: 10m}
        - {notify: [lead]}
rules: []
"""


@pytest.fixture
async def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RouterService, FakePagerDuty, Receiver, FakeClock]]:
    pagerduty, hook = FakePagerDuty(), Receiver()
    await pagerduty.start()
    hook_url = (await hook.start()).replace("http://", "json://") + "/oncall"
    monkeypatch.setenv("PD_KEY", "R0UT1NGKEY000000000000000000000A")
    monkeypatch.setenv("HOOK", hook_url)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(RULES)
    clock = FakeClock()
    service = RouterService(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite:///{tmp_path / 'router.db'}",
            rules_dir=rules,
            webhook_token=WEBHOOK_TOKEN,  # type: ignore[arg-type]
            pagerduty_events_url=pagerduty.url,
        ),
        metrics=Metrics(),
        clock=clock,
    )
    await service.start()
    try:
        yield service, pagerduty, hook, clock
    finally:
        await service.close()
        await pagerduty.close()
        await hook.close()


async def test_an_outage_longer_than_the_deadline_still_pages_the_on_call_tier(
    world: tuple[RouterService, FakePagerDuty, Receiver, FakeClock],
) -> None:
    service, pagerduty, hook, clock = world
    opened_at = clock.now
    pagerduty.answer(*[500] * 1000)  # PagerDuty fails until told otherwise
    async with TestClient(TestServer(service.web_app())) as client:
        await send(client, alert("LedgerDown"))
        await service.engine.run_once()
        assert len(hook.requests) == 1, "the tier's other channel is paged at once"
        up = service.metrics.registry.get_sample_value(
            "router_channel_up", {"channel": "pagerduty"}
        )
        assert up == 0

        # 45 minutes of outage, past the 30-minute deadline and past the step's 10 minutes.
        while clock.now - opened_at < timedelta(minutes=45):
            clock.advance(minutes=1)
            await service.engine.run_once()
        attempts_during_outage = len(pagerduty.requests)
        pagerduty.recover()  # PagerDuty answers again
        for _ in range(7):  # the capped backoff: 5 minutes ±20 %
            clock.advance(minutes=1)
            await service.engine.run_once()

        detail = await client.get("/api/v1/incidents/1")
        incident: dict[str, Any] = await detail.json()
    notes = await timeline(service, 1)
    kinds = [kind for kind, _ in notes]
    pages = {(page["tier"], page["channel"].split(":")[0]): page for page in incident["pages"]}

    # Before: the page was given up at the deadline ("failed") and on-call never paged.
    assert pages[("oncall", "pagerduty")]["state"] == "delivered"
    assert pages[("oncall", "apprise")]["state"] == "delivered"
    assert pages[("lead", "log")]["state"] == "delivered", "the escalation went on"
    assert [event["event_action"] for event in pagerduty.events][-1] == "trigger"
    assert 10 <= attempts_during_outage <= 20, "capped backoff, not a retry per pass"
    # The outage is noted once when it starts and once at the deadline, not per retry.
    assert kinds.count("page_retried") == 1
    assert kinds.count("page_overdue") == 1
    assert "page_failed" not in kinds
    escalation = [index for index, kind in enumerate(kinds) if kind == "page"][1]
    assert kinds.index("page_retried") < escalation < kinds.index("page_overdue")
    delivered = [detail for kind, detail in notes if kind == "page_delivered"]
    assert any("via pagerduty: delivered at attempt" in detail for detail in delivered)
    up = service.metrics.registry.get_sample_value("router_channel_up", {"channel": "pagerduty"})
    assert up == 1
