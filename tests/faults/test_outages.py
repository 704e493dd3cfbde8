"""Outages, crashes, restarts and overload, against real `runbook-router serve` processes on
loopback, with PagerDuty and a webhook target faked in a thread of the test (tests/faults/outside.py).
Each test names the figure it measures; docs/failure-modes.md gives the same figures.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ..databases import fresh_postgres_database
from ..scenario import alert, alertmanager_body
from ..support import free_port, post_json, router_env, start_router, stop, wait_until_healthy
from .outside import Outside, outside, wait_until

pytestmark = pytest.mark.process

PD_KEY = "R0UT1NGKEY000000000000000000000A"


def rules(tmp_path: Path, channel: str) -> Path:
    """One P0 policy: `oncall` pages `channel` (a rules mapping), `lead` the log after an hour."""
    directory = tmp_path / "rules"
    directory.mkdir(exist_ok=True)
    (directory / "rules.yaml").write_text(
        f"""
timezone: UTC
runbook_base_url: https://git.example.com/runbooks/
group_by: [alertname]
default_severity: P0
severities:
  P0: {{aliases: [critical]}}
tiers:
  oncall: {channel}
  lead: {{log: true}}
policies:
  default:
    P0:
      steps:
        - {{notify: [oncall], ack_within: 1h}}
        - {{notify: [lead]}}
rules: []
"""
    )
    return directory


def channel_env(
    tmp_path: Path, fake: Outside, database: str, channel: str, **settings: str
) -> dict[str, str]:
    """The environment of a router whose `oncall` tier pages the fake PagerDuty (`pagerduty`)
    or a webhook of the fake outside world (`webhook`)."""
    if channel == "pagerduty":
        tier, secrets = '{pagerduty: {routing_key: "${PD_KEY}"}}', {"PD_KEY": PD_KEY}
        settings = {"pagerduty_events_url": fake.events_url, **settings}
    else:
        tier, secrets = '{apprise: ["${HOOK}"]}', {"HOOK": fake.json_url("hook")}
    env = router_env(
        port=str(free_port()),
        database_url=database,
        rules_dir=str(rules(tmp_path, tier)),
        **settings,
    )
    env.update(secrets)
    return env


def pagerduty_env(tmp_path: Path, fake: Outside, database: str, **settings: str) -> dict[str, str]:
    return channel_env(tmp_path, fake, database, "pagerduty", **settings)


def webhook_env(tmp_path: Path, fake: Outside, database: str, **settings: str) -> dict[str, str]:
    return channel_env(tmp_path, fake, database, "webhook", **settings)


def url(env: dict[str, str], path: str) -> str:
    return f"http://127.0.0.1:{env['ROUTER_PORT']}{path}"


def webhook(env: dict[str, str], *alerts: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps(alertmanager_body(*alerts)).encode()
    return post_json(url(env, "/webhooks/alertmanager"), body)


def get(address: str) -> tuple[int, dict[str, str], Any]:
    """GET: status, headers and decoded JSON; status 0 when the connection fails."""
    try:
        with urllib.request.urlopen(address, timeout=5) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())
    except OSError:
        return 0, {}, None


def count(database: Path, query: str) -> int:
    try:
        with sqlite3.connect(database) as connection:
            return int(connection.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def kill(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGKILL)
    return stop(process)[1]


# --- crashes: claims -----------------------------------------------------------------------------


def test_a_page_claimed_by_a_killed_daemon_is_sent_at_once_after_the_restart(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    with outside() as fake:
        env = pagerduty_env(tmp_path, fake, f"sqlite:///{database}")
        fake.slow(8.0)  # the page is mid-send when the daemon dies
        first = start_router(env)
        try:
            wait_until_healthy(first, int(env["ROUTER_PORT"]))
            assert webhook(env, alert("LedgerDown"))[0] == 200
            wait_until(lambda: len(fake.deliveries()) == 1, "the first attempt")
            assert count(database, "SELECT count(*) FROM pages WHERE state = 'sending'") == 1
        finally:
            kill(first)
        fake.ok()
        restarted = time.monotonic()
        second = start_router(env)
        try:
            wait_until(
                lambda: (
                    count(database, "SELECT count(*) FROM pages WHERE state = 'delivered'") == 1
                ),
                "the page delivered by the restarted daemon",
            )
            recovery = time.monotonic() - restarted
        finally:
            code, output = stop(second)
    assert code == 0, output
    # Before: the dead process's 2-minute claim held the page back (120 s and more).
    assert recovery < 10.0, recovery
    assert "pages claimed by a process that stopped are due again" in output
    assert len(fake.deliveries()) == 2
    assert fake.deliveries()[0]["dedup_key"] == fake.deliveries()[1]["dedup_key"]


async def test_a_replica_takes_over_the_claim_of_a_killed_replica_within_seconds(
    tmp_path: Path,
) -> None:
    async with fresh_postgres_database() as database:
        with outside() as fake:
            env_a = webhook_env(tmp_path, fake, database)
            env_b = dict(env_a, ROUTER_PORT=str(free_port()))
            fake.slow(25.0)  # longer than a lease: the claim must be renewed while it runs
            first = start_router(env_a)
            second: subprocess.Popen[bytes] | None = None
            try:
                wait_until_healthy(first, int(env_a["ROUTER_PORT"]), timeout=30)
                assert webhook(env_a, alert("LedgerDown"))[0] == 200
                wait_until(lambda: len(fake.deliveries("/hook")) == 1, "the first attempt")
                second = start_router(env_b)
                wait_until_healthy(second, int(env_b["ROUTER_PORT"]), timeout=30)
                time.sleep(17)  # past a 15 s lease: the live replica keeps its claim
                assert len(fake.deliveries("/hook")) == 1, "the claim was not renewed"
                kill(first)
                fake.ok()
                killed = time.monotonic()
                wait_until(
                    lambda: (
                        _postgres_count(
                            database, "SELECT count(*) FROM pages WHERE state = 'delivered'"
                        )
                        == 1
                    ),
                    "the other replica to deliver the page",
                    timeout=40,
                )
                takeover = time.monotonic() - killed
            finally:
                if first.poll() is None:
                    kill(first)
                if second is not None:
                    stop(second)
    # Before: 120 s (the claim's lease). Now: the rest of a 15 s lease plus one poll (5 s).
    assert takeover < 22.0, takeover


def _postgres_count(database: str, query: str) -> int:
    with psycopg.connect(database) as connection:
        row = connection.execute(query).fetchone()
        return int(row[0]) if row else 0


def test_kill_mid_burst_loses_no_acknowledged_alert_and_pages_each_incident_once(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    accepted: list[str] = []
    with outside() as fake:
        env = pagerduty_env(tmp_path, fake, f"sqlite:///{database}")
        first = start_router(env)
        wait_until_healthy(first, int(env["ROUTER_PORT"]))
        stop_sending = threading.Event()

        def sender(worker: int) -> None:
            for number in range(1_000):
                if stop_sending.is_set():
                    return
                name = f"Burst{worker}x{number}"
                try:
                    status, _ = webhook(env, alert(name))
                except OSError:
                    return  # the daemon died mid-request: not acknowledged
                if status == 200:
                    accepted.append(name)

        senders = [threading.Thread(target=sender, args=(worker,)) for worker in range(4)]
        for thread in senders:
            thread.start()
        wait_until(lambda: len(accepted) >= 60, "a burst under way")
        kill(first)
        stop_sending.set()
        for thread in senders:
            thread.join(10)
        second = start_router(env)
        try:
            wait_until(
                lambda: (
                    count(database, "SELECT count(*) FROM pages WHERE state = 'delivered'")
                    >= len(accepted)
                ),
                "every acknowledged alert's page",
                timeout=60,
            )
        finally:
            code, output = stop(second)
    assert code == 0, output
    with sqlite3.connect(database) as connection:
        stored = {row[0] for row in connection.execute("SELECT alertname FROM alerts")}
        pages_per_incident = connection.execute(
            "SELECT incident_id, count(*) FROM pages GROUP BY incident_id"
        ).fetchall()
        undelivered = connection.execute(
            "SELECT count(*) FROM pages WHERE state != 'delivered'"
        ).fetchone()[0]
    assert set(accepted) <= stored, "an alert answered 200 was lost"
    assert all(pages == 1 for _, pages in pages_per_incident), "an incident paged twice"
    assert undelivered == 0
    triggered = {event["dedup_key"] for event in fake.deliveries()}
    assert len(triggered) == len(stored)
    # At least once: only pages in flight at the kill (8 at most) reach PagerDuty twice.
    assert len(fake.deliveries()) - len(triggered) <= 8


# --- start and stop ------------------------------------------------------------------------------


def test_listens_at_once_after_a_restart_and_catches_up_in_the_background(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    incidents = 48
    with outside() as fake:
        env = webhook_env(tmp_path, fake, f"sqlite:///{database}")
        fake.refuse()  # the target is down: every page waits for a retry
        first = start_router(env)
        try:
            wait_until_healthy(first, int(env["ROUTER_PORT"]))
            names = [alert(f"Backlog{number}") for number in range(incidents)]
            assert webhook(env, *names)[0] == 200
            wait_until(
                lambda: (
                    count(database, "SELECT count(*) FROM pages WHERE attempts >= 1") == incidents
                ),
                "a first attempt of every page",
            )
        finally:
            stop(first)
        time.sleep(7)  # the retries fall due while the daemon is down
        fake.ok()
        fake.slow(1.0)  # 48 pages, 8 at a time: 6 s of catching up
        second = start_router(env)
        try:
            wait_until_healthy(second, int(env["ROUTER_PORT"]))
            status, _, ready = get(url(env, "/readyz"))
            sent_when_listening = len(fake.deliveries("/hook"))
            wait_until(
                lambda: (
                    count(database, "SELECT count(*) FROM pages WHERE state = 'delivered'")
                    == incidents
                ),
                "the backlog sent",
            )
            # The engine says it caught up once its passes end, just after the last delivery.
            wait_until(
                lambda: get(url(env, "/readyz"))[2] == {"status": "ready"},
                "readiness without catching up",
            )
            _, _, caught_up = get(url(env, "/readyz"))
        finally:
            code, output = stop(second)
    assert code == 0, output
    # Before: nothing answered until the whole backlog was sent.
    assert sent_when_listening < incidents
    assert status == 200 and ready["status"] == "ready", ready
    assert ready["catching_up"]["pages_pending"] > 0, ready
    assert caught_up == {"status": "ready"}


def test_sigterm_answers_503_to_new_webhooks_while_requests_in_flight_finish(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    with outside() as fake:
        env = webhook_env(tmp_path, fake, f"sqlite:///{database}")
        process = start_router(env)
        try:
            wait_until_healthy(process, int(env["ROUTER_PORT"]))
            body = json.dumps(alertmanager_body(alert("InFlight"))).encode()
            # A webhook in flight: its head and half its body are sent when SIGTERM arrives.
            in_flight = socket.create_connection(("127.0.0.1", int(env["ROUTER_PORT"])))
            in_flight.sendall(
                b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            during = [webhook(env, alert(f"New{number}")) for number in range(3)]
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(
                    urllib.request.Request(
                        url(env, "/webhooks/alertmanager"),
                        data=body,
                        headers={"Content-Type": "application/json"},
                    ),
                    timeout=5,
                )
            retry_after = refused.value.headers["Retry-After"]
            refused.value.close()
            ready, _, _ = get(url(env, "/readyz"))
            in_flight.sendall(body[10:])
            answer = in_flight.recv(65536).decode()
            in_flight.close()
        finally:
            code, output = stop(process)
    assert code == 0, output
    # Before: the listener closed at once (connection refused, the request in flight reset).
    assert [status for status, _ in during] == [503, 503, 503]
    assert during[0][1] == {"error": "shutting down, retry later"}
    assert retry_after == "5"
    assert ready == 503
    assert answer.startswith("HTTP/1.1 200 OK"), answer
    assert count(database, "SELECT count(*) FROM alerts") == 1


def test_an_unwritable_database_is_served_with_503_until_it_can_write(tmp_path: Path) -> None:
    database = tmp_path / "router.db"
    with outside() as fake:
        env = webhook_env(tmp_path, fake, f"sqlite:///{database}")
        first = start_router(env)
        wait_until_healthy(first, int(env["ROUTER_PORT"]))
        assert stop(first)[0] == 0
        # Another program holds SQLite's write lock: nothing can be written.
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        process = start_router(env)
        try:
            # SQLite waits 10 s for the lock (busy_timeout), then the open fails: it listens.
            wait_until_healthy(process, int(env["ROUTER_PORT"]), timeout=30)
            _, _, not_ready = get(url(env, "/readyz"))
            refused = webhook(env, alert("WhileLocked"))
            holder.execute("ROLLBACK")
            recovered = wait_until(
                lambda: get(url(env, "/readyz"))[0] == 200, "readiness once it can write", 45
            )
            accepted = webhook(env, alert("AfterLock"))
            # It fails later too: readiness writes, so it sees what a read would not.
            holder.execute("BEGIN IMMEDIATE")
            locked_later = wait_until(
                lambda: get(url(env, "/readyz"))[0] == 503, "readiness to see the lock", 30
            )
            holder.execute("ROLLBACK")
        finally:
            holder.close()
            code, output = stop(process, timeout=40)
    assert code == 0, output
    # Before: the daemon exited 1 at start.
    assert refused[0] == 503
    assert accepted[0] == 200
    assert not_ready["status"] == "not ready"
    assert not_ready["problems"][0].startswith("database not open: open database: "), not_ready
    assert "database cannot be opened; answering 503 and retrying" in output
    assert recovered < 45 and locked_later < 30


# --- load ---------------------------------------------------------------------------------------


def test_idle_and_slow_connections_are_closed_and_the_daemon_keeps_answering(
    tmp_path: Path,
) -> None:
    database = tmp_path / "router.db"
    with outside() as fake:
        env = webhook_env(
            tmp_path,
            fake,
            f"sqlite:///{database}",
            idle_timeout_seconds="1",
            body_timeout_seconds="1",
        )
        process = start_router(env)
        port = int(env["ROUTER_PORT"])
        try:
            wait_until_healthy(process, port)
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
            slow_head = socket.create_connection(("127.0.0.1", port))
            slow_head.sendall(b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\n")
            slow_body = socket.create_connection(("127.0.0.1", port))
            slow_body.sendall(
                b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            assert get(url(env, "/healthz"))[0] == 200
            assert webhook(env, alert("UnderLoad"))[0] == 200
            closed = [_closed_within(connection, 5.0) for connection in [*idle, slow_head]]
            body_closed = _closed_within(slow_body, 5.0)
        finally:
            code, output = stop(process)
    # Before: held for as long as the client liked (over 90 s).
    assert all(closed)
    assert body_closed
    assert code == 0, output
    assert "request body not received in time; connection closed" in output


def _closed_within(connection: socket.socket, seconds: float) -> bool:
    connection.settimeout(seconds)
    try:
        while connection.recv(4096):
            pass  # an answer (408) before the close is fine
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        connection.close()
