"""An alert storm through a real Alertmanager, one alert per webhook: stored alerts per second.

10,000 alerts are pushed into Alertmanager's API v2 (as Prometheus does) with `group_by: ['...']`,
so that Alertmanager sends every alert in its own webhook, opening connections as it does. The
clock runs from the first push until the receiver holds all 10,000: a receiver that only counts
(aiohttp, parsing each body), a journal receiver (bench/journal_receiver.py: it checks each body
as the router does and commits it, nothing more), then runbook-router (`serve`, shipped rules,
SQLite), each on core 0 with Alertmanager on core 1. The figure is the ratio of the router's rate
to the counting receiver's; the journal receiver's shows what a journal-first design could answer
at, with every alert still to be processed after the answer.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.processes import (
    CLIENT_CORE,
    WEBHOOK_TOKEN,
    bare_receiver,
    free_port,
    journal_receiver,
    pinned,
    router,
    rss_mb,
    wait_until_answers,
)

ALERTS = 10_000
PUSH_CHUNK = 1_000
TIME_LIMIT_SECONDS = 120.0


def alertmanager_config(receiver_port: int) -> str:
    return f"""
route:
  receiver: target
  group_by: ['...']
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: target
    webhook_configs:
      - url: http://127.0.0.1:{receiver_port}/webhooks/alertmanager
        send_resolved: false
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials: {WEBHOOK_TOKEN}
"""


@contextlib.contextmanager
def alertmanager(directory: Path, receiver_port: int) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        raise SystemExit("Alertmanager is not installed (Debian: prometheus-alertmanager)")
    directory.mkdir()
    config = directory / "alertmanager.yml"
    config.write_text(alertmanager_config(receiver_port))
    port = free_port()
    process = subprocess.Popen(
        pinned(
            CLIENT_CORE,
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_answers(process, f"http://127.0.0.1:{port}/-/ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def storm(tag: str) -> list[bytes]:
    """The alerts as Prometheus would push them, in chunks; `tag` keeps runs apart."""
    starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alerts = [
        {
            "labels": {
                "alertname": "StormAlert",
                "service": f"svc-{n % 50}",
                "instance": f"host-{tag}-{n}",
                "severity": "warning",
            },
            "annotations": {"summary": "an alert of the storm"},
            "startsAt": starts,
        }
        for n in range(ALERTS)
    ]
    return [
        json.dumps(alerts[first : first + PUSH_CHUNK]).encode()
        for first in range(0, ALERTS, PUSH_CHUNK)
    ]


def push_and_wait(manager: str, bodies: list[bytes], received: Callable[[], int]) -> float:
    """Seconds from the first push until `received()` reaches ALERTS (inf past the limit)."""
    started = time.monotonic()
    for body in bodies:
        request = urllib.request.Request(
            f"{manager}/api/v2/alerts",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass
    while received() < ALERTS:
        if time.monotonic() - started > TIME_LIMIT_SECONDS:
            return float("inf")
        time.sleep(0.02)
    return time.monotonic() - started


def counted(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as answer:
        return int(json.load(answer)["alerts"])


def stored(database: Path) -> Callable[[], int]:
    def count() -> int:
        with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(database) as db:
            return int(db.execute("SELECT count(*) FROM alerts").fetchone()[0])
        return 0

    return count


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        port = free_port()
        with bare_receiver(port), alertmanager(root / "am-bare", port) as manager:
            bare = push_and_wait(manager, storm("bare"), lambda: counted(port))
        port = free_port()
        with (
            journal_receiver(port, root / "journal.db"),
            alertmanager(root / "am-journal", port) as manager,
        ):
            journal = push_and_wait(manager, storm("journal"), lambda: counted(port))
        database = root / "router.db"
        port = free_port()
        with router(port, database, root / "router.log") as process:
            with alertmanager(root / "am-router", port) as manager:
                routed = push_and_wait(manager, storm("router"), stored(database))
            peak = rss_mb(process)
    print(f"{ALERTS} alerts, one per webhook, from Alertmanager on core {CLIENT_CORE}")
    print(f"counting receiver   {bare:6.2f} s  {ALERTS / bare:8.0f} alerts/s")
    print(
        f"journal receiver    {journal:6.2f} s  {ALERTS / journal:8.0f} alerts/s committed"
        f"  = {bare / journal:.2f} (checks and commits each body, processes nothing)"
    )
    print(
        f"runbook-router      {routed:6.2f} s  {ALERTS / routed:8.0f} alerts/s stored"
        f"  = {bare / routed:.2f} of the counting receiver; peak RSS {peak:.0f} MB"
    )
