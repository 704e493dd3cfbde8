"""`runbook-router incidents`, `ack ID` and `resolve ID` against a real daemon's API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import FIXTURES
from .support import ROOT, free_port, post_json, router_env, start_router, stop, wait_until_healthy

pytestmark = pytest.mark.process

API_TOKEN = "api-t0ken"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = router_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        webhook_token="hook-t0ken",
        api_token=API_TOKEN,
    )
    process = start_router(env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, port)
        body = (FIXTURES / "payloads/good/alertmanager/firing_two_alerts.json").read_bytes()
        status, _ = post_json(f"{url}/webhooks/alertmanager", body, "hook-t0ken")
        assert status == 200
        yield url
    finally:
        stop(process)


def cli(*args: str, url: str, token: str | None = API_TOKEN) -> subprocess.CompletedProcess[str]:
    env = router_env()
    env["ROUTER_URL"] = url
    if token:
        env["ROUTER_API_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_list_acknowledge_and_resolve_from_the_terminal(daemon: str) -> None:
    listed = cli("incidents", url=daemon)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:4] == ["ID", "SEV", "STATE", "AGE"]
    assert row.split()[:3] == ["1", "P0", "triggered"]
    # Whom the next escalation pages, and when: the shipped P0 policy's second step.
    assert "team-lead at " in row
    assert row.endswith("LedgerDataCorruption: Checksum mismatch on ledger block 118812")

    acked = cli("ack", "1", "--by", "alice", url=daemon)
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout.startswith("incident 1: acknowledged by alice")
    again = cli("ack", "1", "--by", "alice", url=daemon)
    assert again.stdout == "incident 1: already acknowledged\n"

    resolved = cli("resolve", "1", "--by", "alice", url=daemon)
    assert resolved.returncode == 0
    assert cli("incidents", url=daemon).stdout == "no incidents\n"  # open ones only, by default
    everything = cli("incidents", "--state", "all", url=daemon).stdout
    assert "resolved" in everything and "alice" in everything


def test_refusals_say_why_and_exit_1(daemon: str) -> None:
    wrong = cli("incidents", url=daemon, token="wrong")
    assert wrong.returncode == 1
    assert "answered 401: missing or wrong API token" in wrong.stderr
    missing = cli("ack", "99", url=daemon)
    assert missing.returncode == 1 and "answered 404: no such incident" in missing.stderr
    gone = cli("incidents", url=f"http://127.0.0.1:{free_port()}")
    assert gone.returncode == 1 and "cannot reach" in gone.stderr
    bad = cli("incidents", "--state", "sideways", url=daemon)
    assert bad.returncode == 2  # argparse names the choices
