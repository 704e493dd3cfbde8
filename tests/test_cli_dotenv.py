"""`.env` in the working directory is read by `check` and `route` as by `serve`: the settings
(`ROUTER_RULES_DIR`) and the rules' `${NAME}` secrets alike, the process's environment first."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from router.cli import main

from .conftest import FIXTURES

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
RULES = """\
severities:
  P1: {}
tiers:
  oncall:
    pagerduty: {routing_key: "${DOTENV_TEST_KEY}"}
policies:
  default:
    P1: {steps: [{notify: [oncall]}]}
rules:
  - name: ledger-corruption
    matchers: ['alertname="LedgerDataCorruption"']
    severity: P1
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory whose `.env` names the rules directory and holds the secret."""
    for name in list(os.environ):
        if name.startswith("ROUTER_") or name == "DOTENV_TEST_KEY":
            monkeypatch.delenv(name)
    (tmp_path / "ops-rules").mkdir()
    (tmp_path / "ops-rules" / "rules.yaml").write_text(RULES)
    (tmp_path / ".env").write_text(f"ROUTER_RULES_DIR=ops-rules\nDOTENV_TEST_KEY={ROUTING_KEY}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_reads_the_rules_dir_and_the_secrets_from_dotenv(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert out == "rules OK: 1 rules, 1 tiers, 1 policies, 1 severities, 0 runbooks (0 sections)\n"


def test_the_process_environment_wins_over_dotenv(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOTENV_TEST_KEY", "")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "rules.yaml:4: warning: tier oncall has no channel left" in out


def test_route_pages_the_channel_whose_secret_is_in_dotenv(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = FIXTURES / "payloads" / "good" / "alertmanager" / "firing_two_alerts.json"
    assert main(["route", str(payload), "--json", "--at", "2026-12-07T13:00:00Z"]) == 0
    routes = json.loads(capsys.readouterr().out)
    assert [alert["rule"] for alert in routes["alerts"]] == ["ledger-corruption"] * 2
    channels = {
        (page["tier"], page["channel"]) for alert in routes["alerts"] for page in alert["pages"]
    }
    assert channels == {("oncall", "pagerduty")}
