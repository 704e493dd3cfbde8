"""PostgreSQL: alerts stored per second through one replica and through three.

Each replica is `runbook-router serve` on the same fresh PostgreSQL database
(`ROUTER_TEST_POSTGRES_URL` or the local server); wrk posts 10-alert Alertmanager bodies with
fresh fingerprints over 50 incidents, one wrk per replica (32 connections in all), for the same
time. The machine's cores are shared by the replicas, PostgreSQL and wrk, so
the three-replica figure says what sharing the database costs, not what three machines would do.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from bench.bench_webhooks import Load, wrk
from bench.processes import free_port, router_env, running

POSTGRES_URL = os.environ.get(
    "ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ALERTS_PER_REQUEST = 10
KEYS = 50
SECONDS = 10


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    name = f"router_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stored(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM alerts").fetchone()
        return int(row[0]) if row else 0


def replicas(count: int, directory: Path) -> tuple[list[Load], int]:
    with fresh_database() as url, contextlib.ExitStack() as stack:
        ports = []
        for n in range(count):
            port = free_port()
            env = router_env(port, directory / "unused.db")
            env["ROUTER_DATABASE_URL"] = url
            command = [sys.executable, "-m", "router", "serve"]
            log = directory / f"replica-{count}-{n}.log"
            stack.enter_context(running(command, f"http://127.0.0.1:{port}/healthz", env, log))
            ports.append(port)
        with ThreadPoolExecutor(count) as pool:
            runs = [
                pool.submit(
                    wrk,
                    port,
                    ALERTS_PER_REQUEST,
                    SECONDS,
                    tag=f"r{n}",
                    keys=KEYS,
                    connections=32 // count,
                )
                for n, port in enumerate(ports)
            ]
            loads = [run.result() for run in runs]
        return loads, stored(url)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        for count in (1, 3):
            loads, alerts = replicas(count, Path(directory))
            rate = sum(load.requests_per_second for load in loads) * ALERTS_PER_REQUEST
            errors = sum(load.non_2xx for load in loads)
            answered = sum(load.requests - load.non_2xx for load in loads) * ALERTS_PER_REQUEST
            if alerts < answered:
                raise SystemExit(f"lost alerts: {answered - alerts} answered 2xx, not stored")
            print(
                f"PostgreSQL, {count} replica(s): {rate:8.0f} alerts/s stored "
                f"({alerts} alerts in {SECONDS} s, {errors} non-2xx)"
            )
