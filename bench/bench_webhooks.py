"""Webhook ingestion: alerts stored per second, against a bare aiohttp receiver in the same run.

Both servers run in this process on loopback; one client posts Alertmanager bodies of 10 alerts
each, with a bounded number of requests in flight. The bare receiver reads the body and answers 200;
runbook-router authenticates, parses, validates and stores every alert in SQLite (WAL,
synchronous=FULL) before it answers.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from router.app import RouterService
from router.metrics import Metrics
from router.settings import Settings

REQUESTS = 400
ALERTS_PER_REQUEST = 10
CONCURRENCY = 8


def _body(request_number: int) -> bytes:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "BenchAlert", "instance": f"host-{request_number}-{i}"},
            "annotations": {"summary": "benchmark alert"},
            "startsAt": "2026-11-21T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"{request_number:08x}{i:08x}",
        }
        for i in range(ALERTS_PER_REQUEST)
    ]
    document = {"version": "4", "status": "firing", "receiver": "bench", "alerts": alerts}
    return json.dumps(document).encode()


async def _drive(url: str, bodies: list[bytes]) -> tuple[float, list[float]]:
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    latencies: list[float] = []
    queue = list(bodies)
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, latencies


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def _report(label: str, elapsed: float, latencies: list[float]) -> None:
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    alerts = REQUESTS * ALERTS_PER_REQUEST
    print(
        f"{label:<16} {REQUESTS / elapsed:8.0f} req/s {alerts / elapsed:8.0f} alerts/s "
        f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
    )


async def _run() -> None:
    bodies = [_body(n) for n in range(REQUESTS)]

    async def bare(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "accepted"})

    bare_app = web.Application()
    bare_app.router.add_post("/webhooks/alertmanager", bare)
    runner, port = await _serve(bare_app)
    elapsed, latencies = await _drive(f"http://127.0.0.1:{port}/webhooks/alertmanager", bodies)
    await runner.cleanup()
    _report("bare aiohttp", elapsed, latencies)

    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite:///{Path(directory) / 'bench.db'}",
            webhook_token="bench",  # type: ignore[arg-type]
        )
        service = RouterService(settings, metrics=Metrics())
        await service.start()
        runner, port = await _serve(service.web_app())
        url = f"http://127.0.0.1:{port}/webhooks/alertmanager"
        elapsed, latencies = await _drive(url, bodies)
        stored = await service.store.count_alerts()
        await runner.cleanup()
        await service.close()
    _report("runbook-router", elapsed, latencies)
    assert stored == REQUESTS * ALERTS_PER_REQUEST, stored


def main() -> None:
    asyncio.run(_run())
