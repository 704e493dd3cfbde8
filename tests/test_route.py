"""`runbook-router route`: golden output over tests/fixtures/payloads/route/.

Every `NAME.json` payload is routed with the shipped rules at a fixed time (a Friday evening, so
that business hours show) and compared with `NAME.expected.json` (`--json`) and `NAME.expected.txt`
(the human format). `UPDATE_GOLDEN=1` rewrites the expected files; read the diff before committing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from router.cli import main

ROOT = Path(__file__).parent.parent
PAYLOADS = Path(__file__).parent / "fixtures" / "payloads" / "route"
CASES = sorted(p for p in PAYLOADS.glob("*.json") if not p.name.endswith(".expected.json"))
AT = "2024-05-10T17:30:00Z"


def route(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["route", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("payload", CASES, ids=[p.stem for p in CASES])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_route(payload: Path, as_json: bool, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(payload), "--rules", str(ROOT / "rules"), "--at", AT]
    code, out, err = route(capsys, *args, *(["--json"] if as_json else []))
    assert (code, err) == (0, "")
    expected_path = payload.with_suffix(".expected.json" if as_json else ".expected.txt")
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(out, encoding="utf-8")
    expected = expected_path.read_text(encoding="utf-8")
    if as_json:
        assert json.loads(out) == json.loads(expected)
    else:
        assert out == expected


def test_route_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    payload = PAYLOADS / "alertmanager_zkp_prover.json"
    _code, out, _err = route(
        capsys, str(payload), "--rules", str(ROOT / "rules"), "--at", AT, "--json"
    )
    document = json.loads(out)
    assert set(document) == {"alerts"}
    first = document["alerts"][0]
    assert {
        "fingerprint",
        "alertname",
        "severity",
        "rules",
        "reason",
        "incident_key",
        "policy",
        "timeline",
        "runbook",
    } <= set(first)
    assert first["runbook"] == {
        "file": "zkp-ledger.md",
        "anchor": "slow-proof-generation",
        "heading": "Slow Proof Generation",
        "path": ["⚠️ High Severity Incidents (P1)", "Slow Proof Generation"],
        "method": "rule",
        "score": 1.0,
    }
    assert [(s["step"], s["tiers"], s["at_seconds"]) for s in first["timeline"]] == [
        (1, ["oncall"], 0),
        (2, ["team-lead"], 600),
        (3, ["eng-manager"], 1800),
        (3, ["eng-manager"], 5400),
    ]


def test_route_defaults_to_now(capsys: pytest.CaptureFixture[str]) -> None:
    payload = PAYLOADS / "grafana_legacy_database.json"
    code, out, _err = route(capsys, str(payload), "--rules", str(ROOT / "rules"), "--json")
    assert code == 0
    assert json.loads(out)["alerts"][0]["timeline"][0]["at_seconds"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"{",
            "body: not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1 column 2",
        ),
        (b'{"version": "4", "status": "firing"}', "alerts: Field required"),
        (b"[]", "body: expected a JSON object, got an array"),
    ],
)
def test_route_refuses_bad_payloads(
    tmp_path: Path, body: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_bytes(body)
    code, out, err = route(capsys, str(payload), "--rules", str(ROOT / "rules"))
    assert (code, out, err) == (1, "", f"runbook-router: {payload}: {message}\n")


def test_route_refuses_invalid_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text("tier: {}\n", encoding="utf-8")
    payload = PAYLOADS / "grafana_legacy_database.json"
    code, out, err = route(capsys, str(payload), "--rules", str(tmp_path))
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == (
        f"runbook-router: rules in {tmp_path} are invalid: 3 errors; "
        f"run: runbook-router check {tmp_path}"
    )


def test_route_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"
    code, out, err = route(capsys, str(missing), "--rules", str(ROOT / "rules"))
    assert (code, out, err) == (1, "", f"runbook-router: {missing}: No such file or directory\n")


def test_an_empty_payload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = tmp_path / "empty.json"
    payload.write_text('{"version": "4", "status": "firing", "alerts": []}', encoding="utf-8")
    assert route(capsys, str(payload), "--rules", str(ROOT / "rules")) == (
        0,
        "the payload holds no alerts\n",
        "",
    )


def test_route_refuses_a_duration_beyond_prometheus_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 10000-year ack_within made the timeline overflow datetime (OverflowError, a traceback).
    rules = (ROOT / "rules" / "10-escalation.yaml").read_text(encoding="utf-8")
    assert "ack_within: 5m" in rules
    (tmp_path / "10-escalation.yaml").write_text(
        rules.replace("ack_within: 5m", "ack_within: 10000y", 1), encoding="utf-8"
    )
    payload = PAYLOADS / "alertmanager_outage_and_fallbacks.json"
    code, out, err = route(capsys, str(payload), "--rules", str(tmp_path), "--at", AT)
    assert (code, out) == (1, "")
    assert f"{tmp_path / '10-escalation.yaml'}:" in err
    assert 'ack_within: duration "10000y" is out of range' in err


def test_a_grafana_latency_without_unit_is_read_in_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Grafana sends {"A": 12.4, "C": 1}: A is the p95 in seconds, C the threshold's 1 (firing).
    payload = PAYLOADS / "grafana_unified_proof_latency.json"
    code, out, _err = route(
        capsys, str(payload), "--rules", str(ROOT / "rules"), "--at", AT, "--json"
    )
    assert code == 0
    [alert] = json.loads(out)["alerts"]
    assert (alert["severity"], alert["rule"]) == ("P1", "slow-proof-generation")
    assert "value 12.4s (values[A], no unit: read in seconds) > 10s" in alert["reason"]
