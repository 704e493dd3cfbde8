"""Pages through the real outbox: the incident service writes them to SQLite, the dispatcher sends
them through the real channels to fakes on loopback ports, and time moves only when told.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from router.api.views import event_json
from router.incidents.service import IncidentService
from router.links import AckLinks
from router.metrics import Metrics
from router.outbox.channels import build_channels
from router.outbox.dispatcher import Dispatcher, RetryPolicy
from router.routing import load_routing
from router.settings import Settings
from router.store import Store, open_store

from .conftest import FIXTURES
from .fakes import FakePagerDuty, Receiver, SmtpServer, text_of
from .pages import STARTED, alertmanager
from .scenario import FakeClock
from .support import free_port

RULES = FIXTURES / "delivery" / "rules"
ROUTING_KEY = "ONCALLKEY00000000000000000000000"
# Small, jitter-free delays: 1 s, 2 s, 4 s, ... up to 5 minutes.
RETRY = RetryPolicy(base=timedelta(seconds=1), cap=timedelta(minutes=5), jitter=0.0)


@dataclass
class World:
    store: Store
    service: IncidentService
    dispatcher: Dispatcher
    clock: FakeClock
    metrics: Metrics
    pagerduty: FakePagerDuty
    smtp: SmtpServer
    webhook: Receiver

    async def deliver(self) -> int:
        return await self.dispatcher.dispatch_due()

    async def incident_id(self) -> int:
        incidents = await self.store.list_incidents(None, 10)
        assert len(incidents) == 1
        return incidents[0].id

    async def timeline(self) -> list[dict[str, Any]]:
        detail = await self.store.incident_detail(await self.incident_id())
        assert detail is not None
        return [event_json(event) for event in detail.events]

    def pages(self, channel: str, outcome: str, tier: str = "oncall") -> float:
        value = self.metrics.registry.get_sample_value(
            "router_pages_total", {"tier": tier, "channel": channel, "outcome": outcome}
        )
        return 0.0 if value is None else value


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def world(tmp_path: Path, pagerduty: FakePagerDuty) -> AsyncIterator[World]:
    async for built in _world(tmp_path, pagerduty, pagerduty.url):
        yield built


@pytest.fixture
async def world_without_pagerduty(tmp_path: Path, pagerduty: FakePagerDuty) -> AsyncIterator[World]:
    """PagerDuty is down: nothing listens where its Events API should be."""
    async for built in _world(tmp_path, pagerduty, f"http://127.0.0.1:{free_port()}"):
        yield built


async def _world(
    tmp_path: Path, pagerduty: FakePagerDuty, events_url: str, rules: Path = RULES
) -> AsyncIterator[World]:
    smtp = SmtpServer()
    smtp.start()
    webhook = Receiver()
    webhook_url = (await webhook.start()).replace("http://", "json://") + "/team-lead"
    env = {
        "PD_ONCALL_KEY": ROUTING_KEY,
        "ONCALL_EMAIL": smtp.mailto(),
        "TEAM_LEAD_WEBHOOK": webhook_url,
    }
    routing = load_routing(rules, env, strict_secrets=True)
    store = open_store(f"sqlite:///{tmp_path / 'router.db'}")
    await store.start()
    metrics = Metrics()
    clock = FakeClock(STARTED)
    settings = Settings(_env_file=None, pagerduty_events_url=events_url)  # type: ignore[call-arg]
    channels = build_channels(settings, None)
    service = IncidentService(
        store, lambda: routing, metrics, lambda: AckLinks(b"k" * 32), "http://router.test"
    )
    dispatcher = Dispatcher(
        store, channels, lambda: routing, metrics, clock, retry=RETRY, rng=random.Random(7)
    )
    try:
        yield World(store, service, dispatcher, clock, metrics, pagerduty, smtp, webhook)
    finally:
        await channels.close()
        await store.close()
        await webhook.close()
        smtp.stop()


@pytest.fixture
async def world_in_berlin(tmp_path: Path, pagerduty: FakePagerDuty) -> AsyncIterator[World]:
    """The delivery rules with `timezone: Europe/Berlin`."""
    rules = tmp_path / "berlin"
    rules.mkdir()
    text = (RULES / "rules.yaml").read_text()
    (rules / "rules.yaml").write_text(text.replace("timezone: UTC", "timezone: Europe/Berlin"))
    async for built in _world(tmp_path, pagerduty, pagerduty.url, rules):
        yield built


def details(timeline: list[dict[str, Any]], kind: str) -> list[str]:
    return [str(event["detail"]) for event in timeline if event["kind"] == kind]


async def test_429_and_500_are_retried_then_the_page_is_delivered_once(world: World) -> None:
    world.pagerduty.answer(429, 500)
    await world.service.ingest(alertmanager("firing"), world.clock())

    assert await world.deliver() == 2  # PagerDuty (429) and the email
    world.clock.advance(seconds=1)
    assert await world.deliver() == 1  # PagerDuty again (500)
    world.clock.advance(seconds=2)
    assert await world.deliver() == 1  # PagerDuty again: 202
    world.clock.advance(hours=1)
    assert await world.deliver() == 0, "nothing is sent twice"

    events = world.pagerduty.events
    assert len(events) == 3
    assert all(event == events[0] for event in events), "every attempt sends the same event"
    assert (
        events[0]["dedup_key"]
        == f"rr-{await world.incident_id()}:disk-full|alertname=DiskFull|service=api"
    )
    assert (
        events[0]["payload"]["summary"]
        == "[P0] DiskFull (api): disk /var is 97% full [instance=db-1:9100]"
    )
    assert events[0]["payload"]["severity"] == "critical"
    assert len(world.smtp.messages) == 1

    timeline = await world.timeline()
    # One note for the first failure, none per retry, and the outcome.
    assert details(timeline, "page_retried") == [
        "paged tier oncall step 1 via pagerduty: attempt 1 failed (PagerDuty answered HTTP 429: "
        '{"status": "throttle event", "message": "Requests for this service are arriving too '
        'fast."}); retrying at 2024-05-06T10:00:01+00:00, then with backoff up to 5 minutes '
        "until it is delivered",
    ]
    assert sorted(details(timeline, "page_delivered")) == [
        "paged tier oncall step 1 via apprise:mailto: delivered",
        "paged tier oncall step 1 via pagerduty: delivered at attempt 3",
    ]
    assert world.pages("pagerduty", "retried") == 2
    assert world.pages("pagerduty", "delivered") == 1
    assert world.pages("apprise", "delivered") == 1


async def test_400_is_not_retried_and_is_recorded(world: World) -> None:
    world.pagerduty.answer(400)
    await world.service.ingest(alertmanager("firing"), world.clock())

    await world.deliver()
    world.clock.advance(hours=1)
    assert await world.deliver() == 0

    assert len(world.pagerduty.requests) == 1
    assert len(world.smtp.messages) == 1, "the tier's email is delivered all the same"
    timeline = await world.timeline()
    assert details(timeline, "page_failed") == [
        "paged tier oncall step 1 via pagerduty: failed after 1 attempt(s), not retryable: "
        'PagerDuty answered HTTP 400: {"status": "invalid event", "message": "Event object is '
        'invalid", "errors": ["\'payload.summary\' is missing or blank"]}'
    ]
    assert world.pages("pagerduty", "failed") == 1
    assert world.pages("apprise", "delivered") == 1


async def test_tier_whose_pagerduty_is_down_still_gets_its_email(
    world_without_pagerduty: World,
) -> None:
    world = world_without_pagerduty
    await world.service.ingest(alertmanager("firing"), world.clock())

    await world.deliver()
    assert len(world.smtp.messages) == 1
    message = world.smtp.messages[0]
    assert message["Subject"] == "[P0] TRIGGERED: DiskFull: disk /var is 97% full"
    text = text_of(message)
    assert "http://router.test/ack/" in text
    assert "no runbook section matched this alert" in text

    for _ in range(24):  # PagerDuty stays down for two hours: retried all along
        world.clock.advance(minutes=5)
        assert await world.deliver() == 1
    timeline = await world.timeline()
    assert details(timeline, "page_failed") == []
    assert len(details(timeline, "page_retried")) == 1, "one note, not one per retry"
    [overdue] = details(timeline, "page_overdue")
    assert overdue.startswith(
        "paged tier oncall step 1 via pagerduty: not delivered by its deadline "
        "2024-05-06T10:30:00+00:00 ("
    )
    assert "last: PagerDuty unreachable (ConnectionError)); still retrying" in overdue
    assert world.pages("pagerduty", "failed") == 0
    assert world.pages("pagerduty", "retried") == 25
    assert world.pages("apprise", "delivered") == 1
    assert (
        world.metrics.registry.get_sample_value("router_channel_up", {"channel": "pagerduty"}) == 0
    )


async def test_escalation_acknowledgement_and_resolution_reach_every_paged_target(
    world: World,
) -> None:
    await world.service.ingest(alertmanager("firing"), world.clock())
    await world.deliver()

    # Nobody acknowledges within 5 minutes: the team lead's webhook is paged.
    await world.service.run_due(world.clock.advance(minutes=5, seconds=1))
    assert await world.deliver() == 1
    [escalation] = world.webhook.requests
    assert escalation.path == "/team-lead"
    body = escalation.json()
    assert body["title"] == "[P0] ESCALATED: DiskFull: disk /var is 97% full"
    assert "now paging team-lead (step 2)" in body["message"]
    assert "**Acknowledge:** http://router.test/ack/" in body["message"]

    incident = await world.incident_id()
    await world.service.acknowledge(incident, "alice", "api", world.clock.advance(minutes=1))
    assert await world.deliver() == 3  # PagerDuty, the email and the webhook
    await world.service.ingest(alertmanager("resolved"), world.clock.advance(minutes=30))
    assert await world.deliver() == 3

    actions = [(e["event_action"], e["dedup_key"]) for e in world.pagerduty.events]
    dedup_key = actions[0][1]
    assert actions == [
        ("trigger", dedup_key),
        ("acknowledge", dedup_key),
        ("resolve", dedup_key),
    ]
    assert [m["Subject"] for m in world.smtp.messages] == [
        "[P0] TRIGGERED: DiskFull: disk /var is 97% full",
        "[P0] ACKNOWLEDGED: DiskFull: disk /var is 97% full",
        "[P0] RESOLVED: DiskFull: disk /var is 97% full",
    ]
    assert [r.json()["title"] for r in world.webhook.requests] == [
        "[P0] ESCALATED: DiskFull: disk /var is 97% full",
        "[P0] ACKNOWLEDGED: DiskFull: disk /var is 97% full",
        "[P0] RESOLVED: DiskFull: disk /var is 97% full",
    ]
    assert world.pages("pagerduty", "failed") == 0
    assert world.pages("apprise", "delivered", tier="team-lead") == 3


LEGACY_CONTEXTS = json.loads(
    (FIXTURES / "delivery" / "contexts-before-versions.json").read_text(encoding="utf-8")
)


def _set_contexts(database: Path, contexts: dict[str, Any]) -> None:
    """Put page contexts into the queued rows by channel, as another release would have."""
    with sqlite3.connect(database) as db:
        for channel, context in contexts.items():
            if not channel.startswith("_"):
                db.execute(
                    "UPDATE pages SET context = ? WHERE channel = ?", (json.dumps(context), channel)
                )


async def test_pages_queued_by_the_release_before_versioned_contexts_are_delivered(
    world: World, tmp_path: Path
) -> None:
    await world.service.ingest(alertmanager("firing"), world.clock())
    _set_contexts(tmp_path / "router.db", LEGACY_CONTEXTS)

    assert await world.deliver() == 2
    legacy = LEGACY_CONTEXTS["pagerduty"]
    (event,) = world.pagerduty.events
    assert (
        event["dedup_key"] == legacy["dedup_key"] == "rr-1:disk-full|alertname=DiskFull|service=api"
    )
    assert (
        event["payload"]["summary"]
        == "[P0] DiskFull (api): disk /var is 97% full [instance=db-1:9100]"
    )
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"]["ack_link"] == legacy["ack_url"]
    assert event["payload"]["custom_details"]["next_escalation"].startswith("team-lead at ")
    (mail,) = world.smtp.messages
    assert LEGACY_CONTEXTS["apprise"]["ack_url"] in text_of(mail)
    assert world.pages("pagerduty", "delivered") == world.pages("apprise", "delivered") == 1


async def test_a_page_queued_by_a_newer_release_waits_for_it(world: World, tmp_path: Path) -> None:
    await world.service.ingest(alertmanager("firing"), world.clock())
    newer = {**LEGACY_CONTEXTS["pagerduty"], "version": 99}
    _set_contexts(tmp_path / "router.db", {"pagerduty": newer})

    await world.deliver()
    assert world.pagerduty.events == [], "nothing half-understood is sent"
    retried = details(await world.timeline(), "page_retried")
    assert len(retried) == 1
    assert "page context version 99 is newer than this release reads (1)" in retried[0]


async def test_pages_show_their_times_in_the_rules_time_zone(world_in_berlin: World) -> None:
    world = world_in_berlin
    # 10:00 UTC on 6 May 2024 is 12:00 in Berlin (summer time); the P0 escalates after 5 minutes.
    await world.service.ingest(alertmanager("firing"), world.clock())
    await world.deliver()
    email = text_of(world.smtp.messages[0])
    assert "Started: 2024-05-06 12:00 CEST" in email
    assert "team-lead at 2024-05-06 12:05 CEST unless acknowledged" in email
    assert "UTC" not in email
    (event,) = world.pagerduty.events
    assert event["payload"]["custom_details"]["next_escalation"] == (
        "team-lead at 2024-05-06 12:05 CEST unless acknowledged"
    )
