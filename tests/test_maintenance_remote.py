"""Run-time maintenance windows through the API and `runbook-router maintenance` against a real
daemon process: made, listed, used, ended, and kept across a restart."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .support import ROOT, free_port, post_json, router_env, start_router, stop, wait_until_healthy

pytestmark = pytest.mark.process

API_TOKEN = "api-t0ken"
HOOK_TOKEN = "hook-t0ken"


@dataclass
class Daemon:
    url: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def restart(self) -> None:
        stop(self.process)
        self.process = start_router(self.env)
        wait_until_healthy(self.process, self.port)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    port = free_port()
    env = router_env(
        port=str(port),
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        webhook_token=HOOK_TOKEN,
        api_token=API_TOKEN,
    )
    process = start_router(env)
    running = Daemon(f"http://127.0.0.1:{port}", port, env, process)
    try:
        wait_until_healthy(process, port)
        yield running
    finally:
        stop(running.process)


def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = router_env()
    env["ROUTER_URL"] = url
    env["ROUTER_API_TOKEN"] = API_TOKEN
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def fire(url: str, service: str, name: str = "LedgerReplicationLag") -> None:
    labels = {"alertname": name, "service": service, "severity": "warning"}
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "runbook-router",
        "groupKey": "{}:{}",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{name} on {service}"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{service}{name}"[:16].ljust(16, "0"),
            }
        ],
    }
    status, _ = post_json(f"{url}/webhooks/alertmanager", json.dumps(body).encode(), HOOK_TOKEN)
    assert status == 200


def incidents(url: str) -> list[dict[str, Any]]:
    listed = cli("incidents", "--state", "all", "--json", url=url)
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, Any]] = json.loads(listed.stdout)["incidents"]
    return found


def test_a_window_made_from_the_terminal_suppresses_survives_a_restart_and_ends(
    daemon: Daemon,
) -> None:
    added = cli(
        "maintenance", "add", "--match", 'service="ledger"', "--for", "2h",
        "--reason", "disk swap", "--name", "ledger-disks", url=daemon.url,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("maintenance window ledger-disks until ")

    fire(daemon.url, "ledger")
    fire(daemon.url, "payments")
    states = {i["title"].split(" on ")[-1]: i["state"] for i in incidents(daemon.url)}
    assert states == {"ledger": "suppressed", "payments": "triggered"}

    daemon.restart()
    listed = cli("maintenance", "list", url=daemon.url)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["NAME", "SOURCE", "IN", "FORCE", "MATCHERS", "REASON"]
    (row,) = [row for row in rows if row.startswith("ledger-disks")]
    assert row.split()[:3] == ["ledger-disks", "api", "until"]
    assert row.endswith('service="ledger"  disk swap')
    # Still suppressed after the restart: the window came back from the database.
    fire(daemon.url, "ledger", name="LedgerDiskFull")
    ledger = [i for i in incidents(daemon.url) if i["title"].endswith("on ledger")]
    assert sorted(i["state"] for i in ledger) == ["suppressed", "suppressed"]

    ended = cli("maintenance", "end", "ledger-disks", url=daemon.url)
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout == "maintenance window ledger-disks: ended ledger-disks\n"
    # Ending it makes its incidents due: the engine pages them as new triggers.
    for _ in range(100):
        ledger = [i for i in incidents(daemon.url) if i["title"].endswith("on ledger")]
        if all(i["state"] == "triggered" for i in ledger):
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert sorted(i["state"] for i in ledger) == ["triggered", "triggered"]

    again = cli("maintenance", "end", "ledger-disks", url=daemon.url)
    assert again.returncode == 1
    assert 'answered 404: no maintenance window "ledger-disks" is in force' in again.stderr


def test_the_api_refuses_bad_windows_with_the_field_and_a_taken_name_with_409(
    daemon: Daemon,
) -> None:
    url = f"{daemon.url}/api/v1/maintenance"
    good = {"matchers": ['service="ledger"'], "duration": "1h", "name": "one"}
    status, answer = post_json(url, json.dumps(good).encode(), API_TOKEN)
    assert status == 201, answer
    assert answer["window"]["active"] is True and answer["window"]["source"] == "api"
    status, answer = post_json(url, json.dumps(good).encode(), API_TOKEN)
    assert (status, answer["error"]) == (
        409,
        'a maintenance window named "one" is in force already',
    )

    for body, field in (
        ({"matchers": [], "duration": "1h"}, "matchers"),
        ({"matchers": ['service=~"("'], "duration": "1h"}, "matchers"),
        ({"matchers": ['service="a"'], "duration": "forever"}, "duration"),
        ({"matchers": ['service="a"']}, "duration"),
        ({"matchers": ['service="a"'], "duration": "1h", "name": "bad name"}, "name"),
        ({"matchers": ['service="a"'], "duration": "1h", "reason": "a\u0000b"}, "reason"),
        ({"matchers": ['service="a"'], "ends_at": "2026-01-01T10:00"}, "ends_at"),
        ({"matchers": ['service="a"'], "duration": "1h", "include_p0": "yes"}, "include_p0"),
        ({"matchers": ['service="a"'], "duration": "1h", "colour": "red"}, "colour"),
    ):
        status, answer = post_json(url, json.dumps(body).encode(), API_TOKEN)
        assert status == 400, (body, answer)
        assert answer["error"].startswith(f"{field}: "), answer
    status, _ = post_json(url, json.dumps(good).encode(), "wrong")
    assert status == 401

    listed = json.loads(cli("maintenance", "list", "--json", url=daemon.url).stdout)
    assert [w["name"] for w in listed["windows"] if w["source"] == "api"] == ["one"]
