"""`runbook-router test-page TIER`: a marked page through every channel of a tier, each channel's
outcome printed, nothing stored. The command runs as its own process, the fake PagerDuty Events
API on a loopback port of this test's event loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fakes import FakePagerDuty
from .support import router_env

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
RULES = """\
severities:
  P0: {}
  P1: {}
default_severity: P1
tiers:
  oncall:
    pagerduty: {routing_key: "${TEST_PAGE_KEY}"}
    log: true
  quiet: {log: true}
policies:
  default:
    P0: {steps: [{notify: [oncall]}]}
    P1: {steps: [{notify: [quiet]}]}
"""


@dataclass
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty()
    await fake.start()
    yield fake
    await fake.close()


async def run_test_page(tmp_path: Path, pagerduty: FakePagerDuty, *args: str) -> Run:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "rules.yaml").write_text(RULES)
    env = router_env(
        pagerduty_events_url=pagerduty.url,
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
    )
    env["TEST_PAGE_KEY"] = ROUTING_KEY
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router",
        "test-page",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def test_every_channel_of_the_tier_gets_a_marked_page_and_nothing_is_stored(
    tmp_path: Path, pagerduty: FakePagerDuty
) -> None:
    run = await run_test_page(tmp_path, pagerduty, "oncall", "--severity", "P0")
    assert run.status == 0, run.err
    (event,) = pagerduty.events
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"].startswith("rr-test:oncall:")
    assert "TEST PAGE (no incident)" in event["payload"]["summary"]
    assert event["payload"]["severity"] == "critical"
    assert run.out.splitlines() == [
        "test page to tier oncall (P0), 2 channel(s):",
        f"  pagerduty: delivered: {event['payload']['summary']}",
        "  log: delivered: [P0] TRIGGERED: TEST PAGE (no incident)",
    ]
    assert "PAGE (log channel" in run.err and "TEST PAGE (no incident)" in run.err
    assert not (tmp_path / "router.db").exists()
    assert not (tmp_path / "data").exists()


async def test_a_log_only_tier_at_the_default_severity(
    tmp_path: Path, pagerduty: FakePagerDuty
) -> None:
    run = await run_test_page(tmp_path, pagerduty, "quiet")
    assert run.status == 0, run.err
    assert run.out.splitlines() == [
        "test page to tier quiet (P1), 1 channel(s):",
        "  log: delivered: [P1] TRIGGERED: TEST PAGE (no incident)",
    ]
    assert pagerduty.events == []


async def test_a_channel_that_fails_is_reported_with_its_reason(
    tmp_path: Path, pagerduty: FakePagerDuty
) -> None:
    pagerduty.answer(400)
    run = await run_test_page(tmp_path, pagerduty, "oncall")
    assert run.status == 1
    lines = run.out.splitlines()
    assert lines[1] == (
        '  pagerduty: FAILED: http_400: PagerDuty answered HTTP 400: {"status": "invalid event", '
        '"message": "Event object is invalid", "errors": ["\'payload.summary\' is missing or '
        'blank"]}'
    )
    assert lines[2] == "  log: delivered: [P1] TRIGGERED: TEST PAGE (no incident)"
    assert lines[3] == "1 of 2 channel(s) failed"
    assert len(pagerduty.requests) == 1  # not retried


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["night-shift"],
            "runbook-router: no tier 'night-shift' in rules; the tiers are: oncall, quiet",
        ),
        (
            ["oncall", "--severity", "P7"],
            "runbook-router: no severity 'P7'; the severities are: P0, P1",
        ),
    ],
)
async def test_an_unknown_tier_or_severity_is_named_with_the_ones_there_are(
    tmp_path: Path, pagerduty: FakePagerDuty, args: list[str], message: str
) -> None:
    run = await run_test_page(tmp_path, pagerduty, *args)
    assert (run.status, run.out, run.err) == (2, "", message + "\n")
    assert pagerduty.requests == []
