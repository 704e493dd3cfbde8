"""The real `runbook-router serve` process, over real HTTP on a free loopback port."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES
from .support import (
    ROOT,
    free_port,
    post_json,
    router_env,
    start_router,
    stop,
    wait_until_healthy,
)

pytestmark = pytest.mark.process


def test_serve_stores_posted_alerts_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "router.db"
    env = router_env(
        port=str(port),
        database_url=f"sqlite:///{database}",
        webhook_token="t0ken",
        log_format="json",
    )
    process = start_router(env)
    try:
        wait_until_healthy(process, port)
        body = (FIXTURES / "payloads/good/alertmanager/firing_two_alerts.json").read_bytes()
        status, answer = post_json(f"http://127.0.0.1:{port}/webhooks/alertmanager", body, "t0ken")
        assert (status, answer["new"]) == (200, 2)
        status, answer = post_json(f"http://127.0.0.1:{port}/webhooks/alertmanager", body, None)
        assert status == 401
    finally:
        code, output = stop(process)
    assert code == 0, output
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM alerts").fetchone() == (2,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    accepted = [line for line in lines if line["message"] == "webhook accepted"]
    assert accepted and accepted[0]["source"] == "alertmanager" and accepted[0]["alerts"] == 2
    assert any(line["message"] == "webhook refused" and line["status"] == 401 for line in lines)
    assert "t0ken" not in output
    (listening,) = [line for line in lines if line["message"] == "listening"]
    assert listening["event_loop"] == "uvloop"


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    env = router_env(
        host="0.0.0.0", port=str(free_port()), database_url=f"sqlite:///{tmp_path}/r.db"
    )
    process = start_router(env)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    output = output.decode()
    assert (
        "refusing to listen on 0.0.0.0 without ROUTER_WEBHOOK_TOKEN and ROUTER_API_TOKEN" in output
    )


def test_serve_reports_a_bad_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router", "serve"],
        env=router_env(port="ninety"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "ROUTER_PORT: Input should be a valid integer" in result.stderr


def test_serve_refuses_rules_whose_channels_cannot_page(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURES / "rules" / "base", rules)
    (rules / "chat.yaml").write_text('tiers:\n  chat:\n    apprise: ["slack://"]\n', "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "router", "serve"],
        env=router_env(
            port=str(free_port()), database_url=f"sqlite:///{tmp_path}/r.db", rules_dir=str(rules)
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "1 channel(s) that cannot page" in result.stderr
    assert (
        f"{rules}/chat.yaml:3: tier chat: apprise[0]: Apprise does not accept this slack:// URL"
        in result.stderr
    )


def test_serve_names_an_address_in_use_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "router", "serve"],
            env=router_env(port=str(port), database_url=f"sqlite:///{tmp_path}/r.db"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=ROOT,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"runbook-router: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr


def test_serve_logs_each_tier_and_the_ones_that_page_the_log(tmp_path: Path) -> None:
    port = free_port()
    # The shipped rules with no secrets set: every tier pages the log, and says so at start.
    process = start_router(
        router_env(port=str(port), database_url=f"sqlite:///{tmp_path}/r.db", log_format="json")
    )
    try:
        wait_until_healthy(process, port)
    finally:
        code, output = stop(process)
    assert code == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    fallbacks = [
        line["tier"]
        for line in lines
        if line["message"] == "tier pages the log only: its channels' secrets are unset"
    ]
    assert fallbacks == ["oncall", "team-lead", "eng-manager", "cto", "team-queue"]


def test_a_closed_pipe_ends_a_listing_quietly() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "router", "runbooks", "tests/fixtures/runbooks/corpus"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as listing:
        assert listing.stdout is not None and listing.stderr is not None
        listing.stdout.readline()
        listing.stdout.close()  # as `| head -1` does
        errors = listing.stderr.read().decode()
        listing.wait(timeout=30)
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
