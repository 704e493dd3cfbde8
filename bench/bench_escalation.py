"""Escalations on time: lag behind the due time with many open incidents, and peak memory.

The service runs in this process on SQLite, with rules whose one policy pages `oncall` at once and
`lead` when `ack_within` lapses (both tiers page the log, whose output is switched off here). Two
scenarios:

- staggered: 100,000 incidents opened as fast as the webhooks store them, each escalating
  `ack_within` (60 s) after it opened, so that escalations fall due, once all are open, at the
  rate incidents were opened;
- together: 10,000 incidents opened at one instant, all falling due in the same second.

Lag is when the escalation page was written minus when it was due, read from the database; the
engine runs as in the daemon (real clock, its own loops), the trigger pages being delivered
meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from router.app import RouterService
from router.metrics import Metrics
from router.models import Alert, AlertStatus, Notification, Source
from router.settings import Settings

RULES = """
timezone: UTC
business_hours: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "23:59"}}
runbook_base_url: https://git.example.com/runbooks/
group_by: [alertname, instance]
default_severity: P1
severities:
  P1: {{aliases: [critical]}}
tiers:
  oncall: {{log: true}}
  lead: {{log: true}}
policies:
  default:
    P1:
      steps:
        - {{notify: [oncall], ack_within: {ack_within}s}}
        - {{notify: [lead]}}
rules: []
"""
WEBHOOK_ALERTS = 500


def notification(first: int, count: int, tag: str, now: datetime) -> Notification:
    return Notification(
        source=Source.ALERTMANAGER,
        alerts=tuple(
            Alert(
                source=Source.ALERTMANAGER,
                status=AlertStatus.FIRING,
                fingerprint=f"{tag}{n:012x}",
                labels={"alertname": "Escalating", "instance": f"{tag}-{n}"},
                annotations={"summary": "an incident to escalate"},
                starts_at=now,
            )
            for n in range(first, first + count)
        ),
    )


async def run(incidents: int, ack_within: int, *, together: bool) -> tuple[list[float], float]:
    """Escalation lags in seconds, and how long opening the incidents took."""
    with tempfile.TemporaryDirectory() as directory:
        rules = Path(directory) / "rules"
        rules.mkdir()
        (rules / "rules.yaml").write_text(RULES.format(ack_within=ack_within))
        database = Path(directory) / "router.db"
        service = RouterService(
            Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=f"sqlite:///{database}",
                rules_dir=rules,
            ),
            metrics=Metrics(),
        )
        await service.start()
        service.engine.start()
        try:
            started = time.monotonic()
            opened_at = datetime.now(UTC)
            for first in range(0, incidents, WEBHOOK_ALERTS):
                now = opened_at if together else datetime.now(UTC)
                await service.incidents.ingest(notification(first, WEBHOOK_ALERTS, "i", now), now)
            opening = time.monotonic() - started
            lags = await _escalation_lags(database, incidents, ack_within)
        finally:
            await service.close()
    return lags, opening


async def _escalation_lags(database: Path, incidents: int, ack_within: int) -> list[float]:
    """Seconds between each escalation page's creation and its due time, once all are there."""
    due_us = ack_within * 1_000_000
    query = f"""
        SELECT (p.created_at - i.opened_at - {due_us}) / 1e6 FROM pages p
        JOIN incidents i ON i.id = p.incident_id WHERE p.event = 'escalate'"""
    deadline = time.monotonic() + ack_within + 120
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        with sqlite3.connect(database) as db:
            lags = sorted(float(row[0]) for row in db.execute(query))
        if len(lags) >= incidents:
            break
    return lags


def _report(label: str, lags: list[float], incidents: int, opening: float) -> None:
    p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("inf")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label:<11} {incidents:>7} incidents opened in {opening:5.1f} s; "
        f"{len(lags)} escalated, lag p50 {lags[len(lags) // 2] if lags else 0:.2f} s, "
        f"p99 {p99:.2f} s, max {max(lags, default=0):.2f} s; peak RSS so far {peak_mb:.0f} MB"
    )


def main() -> None:
    # The log channel would print 200,000 pages: measure without the terminal.
    logging.getLogger("router").setLevel(logging.ERROR)
    lags, opening = asyncio.run(run(10_000, 15, together=True))
    _report("together", lags, 10_000, opening)
    lags, opening = asyncio.run(run(100_000, 60, together=False))
    _report("staggered", lags, 100_000, opening)
