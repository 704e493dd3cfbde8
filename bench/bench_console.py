"""The incidents page with 10,000 incidents in the database: time to answer `GET /incidents`.

10,000 incidents are opened through the Alertmanager webhook (500 alerts per body) on SQLite with
the shipped rules, then the page is requested over loopback HTTP, unfiltered and with each filter;
the figure is the whole answer, HTML rendered, as the browser receives it. The target is 200 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.metrics import Metrics
from router.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS = 10_000
PER_BODY = 500
REQUESTS = 40
TARGET_MS = 200.0
TOKEN = "bench-token"
SEVERITIES = ("critical", "high", "warning", "info")


def _body(first: int) -> dict[str, Any]:
    alerts = []
    for number in range(first, first + PER_BODY):
        labels = {
            "alertname": f"BenchAlert{number}",
            "service": f"svc{number % 50}",
            "severity": SEVERITIES[number % 4],
        }
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"bench alert {number} on svc{number % 50}"},
                "startsAt": "2026-11-24T08:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{number:016x}",
            }
        )
    return {
        "version": "4",
        "status": "firing",
        "receiver": "runbook-router",
        "groupKey": "{}:{}",
        "alerts": alerts,
    }


async def _timed(client: TestClient[Any, Any], path: str) -> tuple[float, float]:
    durations = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = await client.get(path, headers={"Host": "127.0.0.1"})
        await response.read()
        durations.append(time.perf_counter() - started)
        assert response.status == 200, path
    return statistics.median(durations) * 1000, statistics.quantiles(durations, n=20)[18] * 1000


async def _run(directory: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{directory / 'router.db'}",
        rules_dir=ROOT / "rules",
        webhook_token=TOKEN,  # type: ignore[arg-type]
        max_body_bytes=8 * 1024 * 1024,
    )
    service = RouterService(settings, metrics=Metrics())
    await service.start()
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            started = time.perf_counter()
            for first in range(0, INCIDENTS, PER_BODY):
                response = await client.post(
                    "/webhooks/alertmanager",
                    json=_body(first),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert response.status == 200, await response.text()
            opened = len(await service.store.list_incidents(None, INCIDENTS + 1))
            print(f"  {opened:,} incidents opened in {time.perf_counter() - started:.1f} s")
            for label, path in (
                ("all, newest 200", "/incidents"),
                ("open", "/incidents?state=open"),
                ("severity P2", "/incidents?severity=P2"),
                ("service svc7", "/incidents?service=svc7"),
                ("text 'alert 9999'", "/incidents?q=alert+9999"),
            ):
                median, p95 = await _timed(client, path)
                verdict = "within" if p95 < TARGET_MS else "OVER"
                print(
                    f"  GET {path:<28} {label:<18} median {median:6.1f} ms, p95 {p95:6.1f} ms "
                    f"({verdict} the {TARGET_MS:.0f} ms target)"
                )
    finally:
        await service.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_run(Path(directory)))


if __name__ == "__main__":
    main()
