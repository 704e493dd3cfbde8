"""SIGHUP reloads the rules; a bad reload keeps the rules in force and says why."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from .scenario import SCENARIO_RULES, alert, alertmanager_body
from .support import free_port, post_json, router_env, start_router, stop, wait_until_healthy

pytestmark = pytest.mark.process


def post_alert(port: int, name: str, **labels: str) -> None:
    body = json.dumps(alertmanager_body(alert(name, **labels))).encode()
    status, _ = post_json(f"http://127.0.0.1:{port}/webhooks/alertmanager", body)
    assert status == 200


def incident_severities(port: int) -> dict[str, str]:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/v1/incidents?state=all", timeout=5
    ) as answer:
        return {
            i["title"].split(":")[0]: i["severity"] for i in json.loads(answer.read())["incidents"]
        }


def test_sighup_reloads_good_rules_and_keeps_the_old_ones_on_bad(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(SCENARIO_RULES, rules)
    rules_file = rules / "rules.yaml"
    port = free_port()
    env = router_env(
        port=str(port), database_url=f"sqlite:///{tmp_path / 'r.db'}", rules_dir=str(rules)
    )
    process = start_router(env)
    try:
        wait_until_healthy(process, port)
        # A broken edit: the reload fails and the old rules stay.
        good = rules_file.read_text()
        rules_file.write_text(good.replace("severity: P1", "severity: P9"))
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        post_alert(port, "SlowThing", instance="a")
        before = incident_severities(port)
        # A good edit: SlowThing becomes P0 from now on; its next alert raises the incident.
        rules_file.write_text(good.replace("severity: P1", "severity: P0"))
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        post_alert(port, "SlowThing", instance="b")
        after = incident_severities(port)
    finally:
        code, output = stop(process)
    assert code == 0, output
    failed = next(line for line in output.splitlines() if "rules reload failed" in line)
    assert "rules.yaml:" in failed and "P9" in failed, failed
    assert "rules reloaded" in output
    assert before == {"SlowThing": "P1"}
    assert after == {"SlowThing": "P0"}
