"""Kill -9 the real daemon after the first page; started again, it pages the next tier on time."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from .scenario import alert, alertmanager_body
from .support import free_port, post_json, router_env, start_router, stop, wait_until_healthy

pytestmark = pytest.mark.process

RULES = """
timezone: UTC
business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00"}
runbook_base_url: https://git.example.com/runbooks/
group_by: [alertname]
default_severity: P0
severities:
  P0: {aliases: [critical]}
tiers:
  oncall: {log: true}
  lead: {log: true}
policies:
  default:
    P0:
      steps:
        - {notify: [oncall], ack_within: 3s}
        - {notify: [lead]}
rules: []
"""


def wait_for(database: Path, query: str, expected: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(database) as connection:
                if connection.execute(query).fetchone()[0] >= expected:
                    return
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {query} to reach {expected}")


def test_kill_after_first_page_then_next_tier_on_time_and_nothing_twice(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(RULES)
    database = tmp_path / "router.db"
    port = free_port()
    env = router_env(port=str(port), database_url=f"sqlite:///{database}", rules_dir=str(rules))
    first = start_router(env)
    try:
        wait_until_healthy(first, port)
        body = json.dumps(alertmanager_body(alert("LedgerDown"))).encode()
        status, _ = post_json(f"http://127.0.0.1:{port}/webhooks/alertmanager", body)
        assert status == 200
        wait_for(database, "SELECT count(*) FROM pages WHERE state = 'delivered'", 1)
    finally:
        first.send_signal(signal.SIGKILL)
        _, first_output = stop(first)
    second = start_router(env)
    try:
        wait_until_healthy(second, port)
        wait_for(
            database, "SELECT count(*) FROM pages WHERE tier = 'lead' AND state = 'delivered'", 1
        )
    finally:
        code, second_output = stop(second)
    assert code == 0, second_output
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT tier, event, attempts, created_at FROM pages ORDER BY id"
        ).fetchall()
        (opened_at,) = connection.execute("SELECT opened_at FROM incidents").fetchone()
    assert [(tier, event, attempts) for tier, event, attempts, _ in rows] == [
        ("oncall", "trigger", 1),
        ("lead", "escalate", 1),
    ]
    escalated_after = (rows[1][3] - opened_at) / 1e6
    # Due 3 s after opening; the restart takes about a second, well inside the deadline.
    assert 3.0 <= escalated_after < 8.0, escalated_after
    assert first_output.count("PAGE (log channel") == 1
    assert second_output.count("PAGE (log channel") == 1
