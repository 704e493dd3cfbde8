"""Replay: `runbook-router replay` over 100,000 stored alerts, shipped rules against a change.

The history is written in bulk into the store's SQLite schema: 10,000 incidents, one a minute
for a week, of 10 alerts each (fired 30 s apart, resolved 30 minutes after the incident opened),
half of them acknowledged after 4 minutes, the others after 8. The alert names are those of the
shipped rules' incidents, on 50 services and 10 instances each: the same alerts recur, as they do
in production.
The new rules are the shipped ones with the P0 and P1 first steps' `ack_within` shortened to 3
and 6 minutes. Timed: the whole command, from reading the history to the printed report.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from router.cli import main as cli
from router.ingest.payloads import label_fingerprint
from router.store import schema
from router.store.sql import SqlStore

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS = 10_000
ALERTS_PER_INCIDENT = 10
BATCH = 1_000  # incidents per statement
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
NAMES = (
    "ServiceDown",
    "LedgerDataCorruption",
    "InvalidProofDetected",
    "ProofGenerationSlow",
    "HighErrorRate",
    "DiskIOErrors",
    "DatabaseSlowQueries",
    "HighMemoryUsage",
    "CertificateExpiringSoon",
    "QueueBacklogGrowing",
)
LIMIT_SECONDS = 60.0


def _rows(number: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Incident `number` (its id is number + 1) and its alerts, as the store writes them."""
    opened = START + timedelta(minutes=number)
    resolved = opened + timedelta(minutes=30)
    labels = {"alertname": NAMES[number % len(NAMES)], "service": f"svc-{number % 50}"}
    incident = {
        "id": number + 1,
        "key": f"bench|{labels['alertname']}|{labels['service']}",
        "state": "resolved",
        "severity": "P0",
        "rule": None,
        "policy": "default",
        "title": labels["alertname"],
        "step": 0,
        "round": 0,
        "opened_at": opened,
        "acknowledged_at": opened + timedelta(minutes=4 if number % 2 else 8),
        "acknowledged_by": "bench",
        "resolved_at": resolved,
        "resolved_by": "bench",
        "classification": {},
    }
    alerts = []
    for index in range(ALERTS_PER_INCIDENT):
        all_labels = {**labels, "instance": f"i-{index}", "severity": "critical"}
        fired = opened + timedelta(seconds=30 * index)
        alerts.append(
            {
                "id": number * ALERTS_PER_INCIDENT + index + 1,
                "fingerprint": label_fingerprint(all_labels),
                "starts_at": fired,
                "source": "alertmanager",
                "status": "resolved",
                "alertname": labels["alertname"],
                "labels": all_labels,
                "annotations": {"summary": f"{labels['alertname']} on {labels['service']}"},
                "details": {},
                "ends_at": resolved,
                "received_at": fired,
                "updated_at": resolved,
            }
        )
    return incident, alerts


def _populate(url: str) -> None:
    """The schema made by the store itself, then the rows in bulk (through the store's
    transactions this takes minutes, and what is measured is the replay)."""

    async def create_schema() -> None:
        store = SqlStore(url)
        await store.start()
        await store.close()

    asyncio.run(create_schema())
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for first in range(0, INCIDENTS, BATCH):
            incidents, alerts = [], []
            for number in range(first, min(first + BATCH, INCIDENTS)):
                incident, its_alerts = _rows(number)
                incidents.append(incident)
                alerts += its_alerts
            conn.execute(schema.incidents.insert(), incidents)
            conn.execute(schema.alerts.insert(), alerts)
            links = [
                {
                    "incident_id": (alert["id"] - 1) // ALERTS_PER_INCIDENT + 1,
                    "alert_id": alert["id"],
                    "severity": "P0",
                }
                for alert in alerts
            ]
            conn.execute(schema.incident_alerts.insert(), links)
    engine.dispose()


def _new_rules(directory: Path) -> Path:
    shutil.copytree(ROOT / "rules", directory)
    escalation = directory / "10-escalation.yaml"
    text = escalation.read_text(encoding="utf-8")
    for old, new in (
        ("- {notify: [oncall], ack_within: 5m}", "- {notify: [oncall], ack_within: 3m}"),
        ("- {notify: [oncall], ack_within: 15m}", "- {notify: [oncall], ack_within: 6m}"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    escalation.write_text(text, encoding="utf-8")
    return directory


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "router.db"
        url = f"sqlite:///{database}"
        started = time.perf_counter()
        _populate(url)
        print(
            f"history: {INCIDENTS * ALERTS_PER_INCIDENT:,} alerts in {INCIDENTS:,} incidents "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        new_rules = _new_rules(Path(tmp) / "new-rules")
        saved = {name: os.environ.get(name) for name in ("ROUTER_DATABASE_URL", "ROUTER_RULES_DIR")}
        os.environ["ROUTER_DATABASE_URL"] = url
        os.environ["ROUTER_RULES_DIR"] = str(ROOT / "rules")
        out = io.StringIO()
        try:
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = cli(
                    [
                        "replay",
                        "--rules",
                        str(new_rules),
                        "--from",
                        START.isoformat(),
                        "--to",
                        (START + timedelta(days=8)).isoformat(),
                    ]
                )
            elapsed = time.perf_counter() - started
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        report = out.getvalue().splitlines()
        differences = sum(line.startswith("incident opened") for line in report)
        alerts = INCIDENTS * ALERTS_PER_INCIDENT
        verdict = "under" if elapsed < LIMIT_SECONDS else "OVER"
        print(
            f"replay of {alerts:,} alerts: {elapsed:.1f} s ({alerts / elapsed:,.0f} alerts/s), "
            f"{verdict} the {LIMIT_SECONDS:.0f} s budget; exit {code}, "
            f"{differences:,} incidents differ"
        )
        print("\n".join(report[:3]))
