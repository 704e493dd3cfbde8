"""The PagerDuty channel against a fake Events API v2 on a loopback port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.errors import DeliveryError
from router.outbox.channels.base import Sent
from router.outbox.channels.pagerduty import PagerDutyChannel, pagerduty_severity
from router.outbox.channels.ratelimit import RateLimit, TokenBucket
from router.outbox.render import Renderer
from router.rules import ChannelTarget

from .conftest import FIXTURES
from .fakes import FakePagerDuty
from .pages import delivery, page_context
from .support import free_port

EVENTS = FIXTURES / "pagerduty"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"
TARGET = ChannelTarget("pagerduty", ROUTING_KEY, "pagerduty")


@pytest.fixture
async def pagerduty() -> AsyncIterator[tuple[FakePagerDuty, str]]:
    fake = FakePagerDuty(slow_seconds=0.5)
    url = await fake.start()
    yield fake, url
    await fake.close()


@pytest.fixture
async def channel(pagerduty: tuple[FakePagerDuty, str]) -> AsyncIterator[PagerDutyChannel]:
    _fake, url = pagerduty
    pd = PagerDutyChannel(url, Renderer(), timeout=0.2)
    yield pd
    await pd.close()


@pytest.mark.parametrize("fixture", sorted(EVENTS.glob("*.json")), ids=lambda p: p.stem)
async def test_event_body_is_what_the_events_api_documents(
    pagerduty: tuple[FakePagerDuty, str], channel: PagerDutyChannel, fixture: Path
) -> None:
    fake, _url = pagerduty
    await channel.send(delivery(fixture.stem, TARGET))

    assert len(fake.requests) == 1
    request = fake.requests[0]
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("pdpyras/")
    assert request.json() == json.loads(fixture.read_text())


async def test_acknowledge_and_resolve_carry_only_the_documented_fields(
    pagerduty: tuple[FakePagerDuty, str], channel: PagerDutyChannel
) -> None:
    fake, _url = pagerduty
    await channel.send(delivery("trigger", TARGET))
    await channel.send(delivery("acknowledge", TARGET))
    await channel.send(delivery("resolve", TARGET))

    trigger, ack, resolve = fake.events
    for event, action in ((ack, "acknowledge"), (resolve, "resolve")):
        assert event == {
            "routing_key": ROUTING_KEY,
            "dedup_key": trigger["dedup_key"],
            "event_action": action,
        }


def _alert(**annotations: str) -> dict[str, Any]:
    """The sample page's alert (stored form) with more annotations."""
    alert = page_context("trigger").alert.to_json()
    alert["annotations"].update(annotations)
    return alert


async def test_summary_fits_pagerdutys_limit(
    pagerduty: tuple[FakePagerDuty, str], channel: PagerDutyChannel
) -> None:
    fake, _url = pagerduty
    long_summary = "the disk is filling up " * 100
    await channel.send(delivery("trigger", TARGET, alert=_alert(summary=long_summary)))

    summary = fake.events[0]["payload"]["summary"]
    assert len(summary) <= 1024
    assert summary.startswith("[P1] ProofGenerationSlow (prover): the disk is filling up")
    assert summary.endswith("…")


async def test_huge_annotation_is_bounded(
    pagerduty: tuple[FakePagerDuty, str], channel: PagerDutyChannel
) -> None:
    fake, _url = pagerduty
    await channel.send(delivery("trigger", TARGET, alert=_alert(description="x" * 1_000_000)))

    description = fake.events[0]["payload"]["custom_details"]["annotations"]["description"]
    assert len(description) == 2000
    assert len(fake.requests[0].body) < 512 * 1024


@pytest.mark.parametrize(
    ("status", "retryable", "reason"),
    [
        (400, False, "http_400"),
        (403, False, "http_403"),
        (404, False, "http_404"),
        (429, True, "http_429"),
        (500, True, "http_500"),
        (502, True, "http_502"),
        (503, True, "http_503"),
        (504, True, "http_504"),
    ],
)
async def test_failure_is_mapped_and_not_retried_inside_pdpyras(
    pagerduty: tuple[FakePagerDuty, str],
    channel: PagerDutyChannel,
    status: int,
    retryable: bool,
    reason: str,
) -> None:
    fake, _url = pagerduty
    fake.answer(status)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(delivery("trigger", TARGET))

    assert (raised.value.retryable, raised.value.reason) == (retryable, reason)
    assert str(raised.value).startswith(f"PagerDuty answered HTTP {status}")
    assert ROUTING_KEY not in str(raised.value)
    assert len(fake.requests) == 1, "pdpyras must not retry: the outbox does"


async def test_bad_request_message_says_what_pagerduty_said(
    pagerduty: tuple[FakePagerDuty, str], channel: PagerDutyChannel
) -> None:
    fake, _url = pagerduty
    fake.answer(400)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(delivery("acknowledge", TARGET))
    assert str(raised.value) == (
        'PagerDuty answered HTTP 400: {"status": "invalid event", "message": "Event object is '
        'invalid", "errors": ["\'payload.summary\' is missing or blank"]}'
    )


async def test_time_out_is_retryable(
    pagerduty: tuple[FakePagerDuty, str], channel: PagerDutyChannel
) -> None:
    fake, _url = pagerduty
    fake.answer("slow")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(delivery("trigger", TARGET))
    assert (raised.value.retryable, raised.value.reason) == (True, "timeout")


async def test_unreachable_events_api_is_a_retryable_network_error() -> None:
    channel = PagerDutyChannel(f"http://127.0.0.1:{free_port()}", Renderer(), timeout=0.5)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(delivery("trigger", TARGET))
    await channel.close()
    assert (raised.value.retryable, raised.value.reason) == (True, "network")
    assert str(raised.value) == "PagerDuty unreachable (ConnectionError)"


async def test_page_without_dedup_key_fails_for_good(channel: PagerDutyChannel) -> None:
    with pytest.raises(DeliveryError) as raised:
        await channel.send(delivery("trigger", TARGET, dedup_key=None))
    assert (raised.value.retryable, raised.value.reason) == (False, "invalid_page")


@pytest.mark.parametrize(
    ("severity", "rank", "expected"),
    [
        ("P0", None, "critical"),
        ("P1", None, "error"),
        ("P2", None, "warning"),
        ("P3", None, "info"),
        ("p1", None, "error"),
        # The rules' own severity names map by their rank: most severe first.
        ("SEV1", 0, "critical"),
        ("SEV2", 1, "error"),
        ("SEV3", 2, "warning"),
        ("SEV4", 3, "info"),
        ("SEV5", 4, "info"),
        ("P4", 4, "info"),
        # Unknown and unranked: page as the most severe rather than too softly.
        ("mystery", None, "critical"),
    ],
)
def test_severity_mapping(severity: str, rank: int | None, expected: str) -> None:
    assert pagerduty_severity(severity, rank) == expected


async def test_severity_outside_p0_p3_uses_the_rank_from_the_rules(
    pagerduty: tuple[FakePagerDuty, str],
) -> None:
    fake, url = pagerduty
    ranks = {"SEV1": 0, "SEV2": 1, "SEV3": 2}
    channel = PagerDutyChannel(url, Renderer(), severity_rank=ranks.get)
    await channel.send(delivery("trigger", TARGET, severity="SEV3"))
    await channel.close()
    assert fake.events[0]["payload"]["severity"] == "warning"


# --- the rate limit -----------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    limit = RateLimit(per_second=2.0, burst=3, max_wait=1.0)
    bucket = TokenBucket(limit, now=100.0)
    assert [bucket.reserve(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # Reservations queue: the 4th waits half a second, the 5th a second, the 6th too long.
    assert bucket.reserve(100.0) == pytest.approx(0.5)
    assert bucket.reserve(100.0) == pytest.approx(1.0)
    assert bucket.reserve(100.0) is None
    # Two seconds later four tokens came back, two of them already promised.
    assert bucket.reserve(102.0) == 0.0
    assert bucket.reserve(102.0) == 0.0
    assert bucket.reserve(102.0) == pytest.approx(0.5)


def test_token_bucket_never_lets_more_than_the_limit_through_in_a_window() -> None:
    limit = RateLimit(per_second=1.5, burst=20, max_wait=10.0)
    bucket = TokenBucket(limit, now=0.0)
    sent: list[float] = []
    now = 0.0
    while now < 300.0:  # a sender that tries every 0.1 s for five minutes
        wait = bucket.reserve(now)
        if wait is not None:
            sent.append(now + wait)
        now += 0.1
    for start in sent:
        in_window = [t for t in sent if start <= t < start + 60.0]
        assert len(in_window) <= limit.most_in(60.0) <= 120


class FakeTime:
    """A monotonic clock that moves only when told; `sleep` records how long it was asked."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_channel_waits_for_a_token_per_routing_key_and_gives_up_when_too_long(
    pagerduty: tuple[FakePagerDuty, str],
) -> None:
    fake, url = pagerduty
    clock = FakeTime()
    channel = PagerDutyChannel(
        url,
        Renderer(),
        rate_limit=RateLimit(per_second=1.0, burst=2, max_wait=1.5),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    other = ChannelTarget("pagerduty", "OTHERKEY000000000000000000000000", "pagerduty")
    # Five pages for one key at the same instant, and one for another key.
    results = await asyncio.gather(
        *(channel.send(delivery("trigger", TARGET)) for _ in range(5)),
        channel.send(delivery("trigger", other)),
        return_exceptions=True,
    )
    # Two go at once, the third after a second, the 4th and 5th would wait 2 s: over max_wait.
    assert all(isinstance(result, Sent) for result in results[:3])
    assert isinstance(results[5], Sent), "another routing key has its own bucket"
    for error in results[3:5]:
        assert isinstance(error, DeliveryError)
        assert (error.retryable, error.reason) == (True, "rate_limited")
        assert str(error) == (
            "over the Events API rate limit for this routing key for more than 1.5s"
        )
    assert clock.slept == [pytest.approx(1.0)]
    keys = [event["routing_key"] for event in fake.events]
    assert (keys.count(ROUTING_KEY), keys.count(other.target)) == (3, 1)

    clock.now += 2.0  # the bucket refills: the next page goes without waiting
    await channel.send(delivery("trigger", TARGET))
    await channel.close()
    assert clock.slept == [pytest.approx(1.0)]
    assert len(fake.requests) == 5


async def test_template_without_a_summary_falls_back_to_the_incident_title(
    pagerduty: tuple[FakePagerDuty, str], tmp_path: Path
) -> None:
    fake, url = pagerduty
    (tmp_path / "pagerduty").mkdir()
    (tmp_path / "pagerduty" / "trigger.j2").write_text("{# forgot the title #}\n")
    channel = PagerDutyChannel(url, Renderer(tmp_path))
    await channel.send(delivery("trigger", TARGET))
    await channel.close()
    summary = fake.events[0]["payload"]["summary"]
    assert summary == "ProofGenerationSlow: proof generation takes 14s"


async def test_event_without_a_section_carries_the_possible_ones(
    pagerduty: tuple[FakePagerDuty, str], channel: PagerDutyChannel
) -> None:
    fake, _url = pagerduty
    candidates = [
        {
            "heading": "Slow Proof Generation",
            "link": "https://rb.example/z.md#slow",
            "confidence": 0.62,
        },
        {
            "heading": "Invalid Proofs",
            "link": "https://rb.example/z.md#invalid",
            "confidence": 0.999,
        },
    ]
    await channel.send(
        delivery("trigger", TARGET, excerpt=False, runbook=None, runbook_candidates=candidates)
    )
    body = fake.requests[0].json()
    details = body["payload"]["custom_details"]
    assert details["runbook_found_by"] == "none"
    assert details["runbook"] == (
        "possible runbook sections (not sure enough to attach one):\n"
        "- Slow Proof Generation (62% confidence): https://rb.example/z.md#slow\n"
        "- Invalid Proofs (99% confidence): https://rb.example/z.md#invalid"
    )
    links = [(link["href"], link["text"]) for link in body["links"]]
    assert links[:2] == [
        ("https://rb.example/z.md#slow", "Possible runbook section: Slow Proof Generation"),
        ("https://rb.example/z.md#invalid", "Possible runbook section: Invalid Proofs"),
    ]
