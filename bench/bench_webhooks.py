"""Webhook ingest under wrk: runbook-router against a bare aiohttp receiver, same run, same core.

Each server runs as its own process pinned to core 0; wrk (one thread, 32 connections) runs on core
1 and posts Alertmanager bodies whose fingerprints are all fresh, so every alert is stored. The
bare receiver only parses the JSON. runbook-router (`serve`, the shipped rules, SQLite in WAL with
synchronous=FULL) answers 200 only after the commit that holds the body's alerts. The figure is
the ratio of the two rates; afterwards the alerts stored are counted against the 2xx answers.
Each line also gives the server's CPU time per request, which drifts less than a rate from one
run to the next.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from bench.processes import (
    CLIENT_CORE,
    bare_receiver,
    cpu_seconds,
    free_port,
    pinned,
    router,
    rss_mb,
)

DURATION_SECONDS = 10
CONNECTIONS = 32
SCRIPT = Path(__file__).with_name("wrk_alertmanager.lua")


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p99_ms: float
    requests: int
    non_2xx: int
    # The server's CPU time (user and system) per request, when `measured` took it.
    cpu_us_per_request: float | None = None

    def __str__(self) -> str:
        errors = f", {self.non_2xx} non-2xx" if self.non_2xx else ""
        cpu = (
            f"  CPU {self.cpu_us_per_request:6.0f} µs/request"
            if self.cpu_us_per_request is not None
            else ""
        )
        return f"{self.requests_per_second:8.0f} req/s  p99 {self.p99_ms:7.1f} ms{cpu}{errors}"


def measured(server: subprocess.Popen[bytes], port: int, alerts_per_request: int) -> Load:
    """wrk against `server`, with the CPU time the server spent per request."""
    before = cpu_seconds(server)
    load = wrk(port, alerts_per_request)
    spent = cpu_seconds(server) - before
    return replace(load, cpu_us_per_request=spent / max(load.requests, 1) * 1e6)


def wrk(
    port: int,
    alerts_per_request: int,
    seconds: int = DURATION_SECONDS,
    *,
    tag: str = "",
    keys: int = 1,
    connections: int = CONNECTIONS,
) -> Load:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    command = pinned(
        CLIENT_CORE,
        [
            binary,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(SCRIPT),
            f"http://127.0.0.1:{port}",
            "--",
            str(alerts_per_request),
            tag,
            str(keys),
        ],
    )
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return Load(
        float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        _milliseconds(_find(r"^\s+99%\s+(\S+)", output)),
        int(_find(r"(\d+) requests in", output)),
        int(_find(r"Non-2xx or 3xx responses: (\d+)", output, "0")),
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        if default is not None:
            return default
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return found.group(1)


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def stored_alerts(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM alerts").fetchone()[0])


def main() -> None:
    print(f"wrk -t1 -c{CONNECTIONS} -d{DURATION_SECONDS}s on core {CLIENT_CORE}; servers on core 0")
    for alerts_per_request in (10, 1):
        port = free_port()
        with bare_receiver(port) as receiver:
            bare = measured(receiver, port, alerts_per_request)
        with tempfile.TemporaryDirectory() as directory:
            database = Path(directory) / "router.db"
            port = free_port()
            with router(port, database, Path(directory) / "router.log") as process:
                routed = measured(process, port, alerts_per_request)
                peak = rss_mb(process)
            stored = stored_alerts(database)
        answered = (routed.requests - routed.non_2xx) * alerts_per_request
        print(f"{alerts_per_request:>2} alert(s)/request  bare aiohttp    {bare}")
        ratio = routed.requests_per_second / bare.requests_per_second
        print(
            f"{'':20} runbook-router  {routed}  = {ratio:.2f} of bare; {stored} alerts stored "
            f"for {answered} answered 2xx; peak RSS {peak:.0f} MB"
        )
        if stored < answered:
            raise SystemExit(f"lost alerts: {answered - stored} answered 2xx but not stored")
