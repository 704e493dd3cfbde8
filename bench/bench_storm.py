"""Time from a webhook's 2xx to PagerDuty's receipt of the trigger, idle and under load; and a
storm of 100,000 alerts over 10,000 incidents: nothing lost, each incident paged once.

runbook-router (`serve`, the shipped rules, SQLite) runs on core 0 with its `oncall` tier pointed
at a fake PagerDuty Events API that this process serves on loopback (core 1), recording when each
event arrives. A probe is one P0 alert of a new incident: its latency is the event's arrival minus
the moment the webhook's 2xx was read. Under load, the probes go out while wrk posts one-alert
webhooks as fast as the router takes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.bench_webhooks import wrk
from bench.processes import CLIENT_CORE, ROOT, WEBHOOK_TOKEN, free_port, pinned, router_env
from bench.processes import rss_mb as process_rss_mb

PROBES = 30
# PagerDuty takes about 2 events a second per routing key, and the router keeps under that
# (EVENTS_API_RATE_LIMIT): probes further apart than that measure the router, not the limit.
PROBE_GAP_SECONDS = 0.7
STORM_ALERTS = 100_000
STORM_INCIDENTS = 10_000
STORM_ALERTS_PER_REQUEST = 10
STORM_CONCURRENCY = 32
ROUTING_KEY = "B" * 32


class FakePagerDuty:
    """Records the arrival time of each event, by the `service` label of its alert."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}

    async def enqueue(self, request: web.Request) -> web.Response:
        event = await request.json()
        # A storm page (one for many incidents) carries no labels of one alert.
        service = event["payload"]["custom_details"].get("labels", {}).get("service", "")
        self.arrived.setdefault(service, time.time())
        self.waiters.setdefault(service, asyncio.Event()).set()
        return web.json_response(
            {"status": "success", "dedup_key": event.get("dedup_key")}, status=202
        )

    async def arrival(self, service: str) -> float:
        async with asyncio.timeout(10):
            await self.waiters.setdefault(service, asyncio.Event()).wait()
        return self.arrived[service]


def body(alerts: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"version": "4", "status": "firing", "receiver": "bench", "alerts": alerts}
    ).encode()


def alert(name: str, service: str, instance: str, severity: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": name,
            "service": service,
            "instance": instance,
            "severity": severity,
        },
        "annotations": {"summary": f"{name} on {service}"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "endsAt": "0001-01-01T00:00:00Z",
    }


async def probe(
    session: aiohttp.ClientSession, url: str, pagerduty: FakePagerDuty, name: str
) -> float:
    """Seconds from the 2xx of a new P0 incident's webhook to its trigger at PagerDuty."""
    async with session.post(url, data=body([alert("ProbeDown", name, name, "critical")])) as answer:
        await answer.read()
        assert answer.status == 200, answer.status
        answered = time.time()
    return await pagerduty.arrival(name) - answered


async def probes(
    session: aiohttp.ClientSession, url: str, pagerduty: FakePagerDuty, tag: str, gap: float
) -> list[float]:
    latencies = []
    for n in range(PROBES):
        latencies.append(await probe(session, url, pagerduty, f"{tag}-{n}"))
        await asyncio.sleep(gap)
    return sorted(latencies)


async def storm(session: aiohttp.ClientSession, url: str) -> int:
    """POST the storm's alerts; how many were answered 2xx."""
    requests = [
        body(
            [
                alert("StormWarning", f"svc-{n % STORM_INCIDENTS}", f"host-{n}", "warning")
                for n in range(first, first + STORM_ALERTS_PER_REQUEST)
            ]
        )
        for first in range(0, STORM_ALERTS, STORM_ALERTS_PER_REQUEST)
    ]
    answered = 0

    async def worker() -> None:
        nonlocal answered
        while requests:
            payload = requests.pop()
            while True:
                async with session.post(url, data=payload) as answer:
                    await answer.read()
                    if answer.status == 200:
                        answered += STORM_ALERTS_PER_REQUEST
                        break
                await asyncio.sleep(0.1)  # a 503: retry, as Alertmanager would

    await asyncio.gather(*(worker() for _ in range(STORM_CONCURRENCY)))
    return answered


def percentile(values: list[float], share: float) -> float:
    return values[max(0, int(len(values) * share) - 1)] * 1000


async def run(directory: Path) -> None:
    pagerduty = FakePagerDuty()
    app = web.Application()
    app.router.add_post("/v2/enqueue", pagerduty.enqueue)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    pagerduty_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", pagerduty_port).start()

    port = free_port()
    database = directory / "router.db"
    env = router_env(port, database)
    env.update(
        PD_ONCALL_KEY=ROUTING_KEY,
        ROUTER_PAGERDUTY_EVENTS_URL=f"http://127.0.0.1:{pagerduty_port}",
    )
    with (directory / "router.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            pinned("0", [sys.executable, "-m", "router", "serve"]),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await _measure(port, database, pagerduty, process)
        finally:
            process.terminate()
            process.wait(timeout=30)
    await runner.cleanup()


async def _measure(
    port: int, database: Path, pagerduty: FakePagerDuty, process: subprocess.Popen[bytes]
) -> None:
    url = f"http://127.0.0.1:{port}/webhooks/alertmanager"
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as answer:
                    if answer.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        idle = await probes(session, url, pagerduty, "idle", PROBE_GAP_SECONDS)
        print(
            f"2xx -> PagerDuty, idle:       p50 {percentile(idle, 0.5):6.1f} ms  "
            f"p99 {percentile(idle, 0.99):6.1f} ms  ({PROBES} probes)"
        )
        load = asyncio.get_running_loop().run_in_executor(None, wrk, port, 1, 25)
        await asyncio.sleep(2)
        loaded = await probes(session, url, pagerduty, "loaded", PROBE_GAP_SECONDS)
        ingest = await load
        print(
            f"2xx -> PagerDuty, under load: p50 {percentile(loaded, 0.5):6.1f} ms  "
            f"p99 {percentile(loaded, 0.99):6.1f} ms  (wrk meanwhile: {ingest})"
        )
        started = time.monotonic()
        answered = await storm(session, url)
        elapsed = time.monotonic() - started
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT count(*) FROM alerts WHERE alertname = 'StormWarning'")
        incidents = db.execute("SELECT count(*) FROM incidents WHERE title LIKE 'StormWarning%'")
        twice = db.execute(
            "SELECT count(*) FROM (SELECT incident_id, channel_index FROM pages "
            "WHERE event = 'trigger' GROUP BY incident_id, tier, channel_index HAVING count(*) > 1)"
        )
        stored_count, incident_count, paged_twice = (
            stored.fetchone()[0],
            incidents.fetchone()[0],
            twice.fetchone()[0],
        )
    print(
        f"storm: {STORM_ALERTS} alerts over {STORM_INCIDENTS} incidents in {elapsed:.1f} s "
        f"({STORM_ALERTS / elapsed:.0f} alerts/s): {answered} answered 2xx, {stored_count} stored, "
        f"{incident_count} incidents, {paged_twice} paged twice; "
        f"router peak RSS {process_rss_mb(process):.0f} MB"
    )
    if stored_count < answered or paged_twice:
        raise SystemExit("the storm lost alerts or paged an incident twice")


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(Path(directory)))
