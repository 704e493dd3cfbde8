"""The shipped rules/: they check clean, follow the catalogue, and classify as intended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from router.cli import main
from router.incidents.schedule import format_duration
from router.rules import load_rules
from router.rules import reader as rules_loader
from router.rules import schema as rules_schema
from tests.alerts import make_alert

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "rules"
CASES = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "classification" / "shipped_rules.yaml").read_text(
        "utf-8"
    )
)
RULESET = load_rules(SHIPPED, {}, strict_secrets=True)


def test_check_passes_on_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SHIPPED)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[-1]
        == "rules OK: 15 rules, 5 tiers, 2 policies, 4 severities, 5 runbooks (56 sections)"
    )
    assert all(": warning: " in line for line in lines[:-1])


def test_with_no_secrets_every_tier_pages_to_the_log() -> None:
    assert all(tier.falls_back_to_log for tier in RULESET.tiers.values())
    assert list(RULESET.tiers) == ["oncall", "team-lead", "eng-manager", "cto", "team-queue"]


def test_secrets_fill_the_channels() -> None:
    env = {"PD_ONCALL_KEY": "k" * 32, "TEAM_QUEUE_APPRISE_URL": "mailto://team@example.com"}
    ruleset = load_rules(SHIPPED, env, strict_secrets=True)
    assert [c.label for c in ruleset.tiers["oncall"].channels] == ["pagerduty"]
    assert [c.label for c in ruleset.tiers["team-queue"].channels] == ["apprise:mailto"]
    assert ruleset.tiers["cto"].falls_back_to_log


def catalogue_case(case: dict[str, Any]) -> str:
    return str(case["alert"]["labels"]["alertname"])


@pytest.mark.parametrize("case", CASES, ids=[catalogue_case(case) for case in CASES])
def test_classification(case: dict[str, Any]) -> None:
    given = case["alert"]
    alert = make_alert(
        given["labels"],
        given.get("annotations"),
        values=given.get("values"),
        value_string=given.get("value_string"),
    )
    decision = RULESET.classify(alert)
    expected = dict(case["expect"])
    if "matched" in expected:
        expected["matched_rules"] = tuple(expected.pop("matched"))
    actual = {field: getattr(decision, field) for field in expected}
    assert actual == expected


def test_every_shipped_rule_decides_at_least_one_case() -> None:
    deciding = {case["expect"].get("rule") for case in CASES}
    assert {rule.name for rule in RULESET.rules} <= deciding


def test_the_shipped_escalation_follows_the_catalogue() -> None:
    def steps(policy: str, severity: str) -> list[tuple[tuple[str, ...], str | None]]:
        chosen = RULESET.severity_policy(policy, severity)
        return [
            (step.tiers, format_duration(step.ack_within) if step.ack_within else None)
            for step in chosen.steps
        ]

    assert steps("default", "P0") == [
        (("oncall",), "5m"),
        (("team-lead",), "15m"),
        (("eng-manager",), "15m"),
        (("cto",), "30m"),
    ]
    p0 = RULESET.severity_policy("default", "P0")
    assert (p0.repeat, p0.ack_expires and p0.ack_expires.total_seconds()) == (2, 3600)
    assert steps("default", "P1") == [
        (("oncall",), "15m"),
        (("team-lead",), "30m"),
        (("eng-manager",), "1h"),
    ]
    assert RULESET.severity_policy("default", "P1").repeat == 1
    assert steps("default", "P2") == [(("oncall",), "4h"), (("team-lead",), "8h")]
    assert steps("default", "P3") == [(("team-queue",), None)]
    assert RULESET.severity_policy("zkp-ledger", "P0") == p0
    assert steps("zkp-ledger", "P1") == [
        (("oncall",), "10m"),
        (("team-lead",), "20m"),
        (("eng-manager",), "1h"),
    ]
    assert [(s.name, s.hours) for s in RULESET.severities] == [
        ("P0", "always"),
        ("P1", "always"),
        ("P2", "business"),
        ("P3", "business"),
    ]
    hours = RULESET.business_hours
    assert (hours.day_names, f"{hours.start:%H:%M}", f"{hours.end:%H:%M}") == (
        ("mon", "tue", "wed", "thu", "fri"),
        "09:00",
        "18:00",
    )


# --- the JSON Schema ----------------------------------------------------------------------------

SCHEMA = json.loads((SHIPPED / "schema.json").read_text("utf-8"))


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_files_reference_and_satisfy_the_schema(path: Path) -> None:
    text = path.read_text("utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=schema.json"
    jsonschema.validate(yaml.safe_load(text), SCHEMA)


def test_the_committed_schema_is_the_one_the_loader_makes() -> None:
    assert (SHIPPED / "schema.json").read_text("utf-8") == rules_schema.schema_text(), (
        "run make schema"
    )


def test_the_schema_knows_the_keys_the_loader_knows() -> None:
    definitions = SCHEMA["definitions"]
    top = SCHEMA["properties"]
    tier = top["tiers"]["additionalProperties"]["properties"]
    severity = top["severities"]["additionalProperties"]["anyOf"][1]["properties"]
    step = definitions["severityPolicy"]["properties"]["steps"]["items"]["properties"]
    assert set(top) == set(rules_loader.TOP_LEVEL_KEYS)
    assert set(top["business_hours"]["properties"]) == set(rules_loader.BUSINESS_HOURS_KEYS)
    assert set(severity) == set(rules_loader.SEVERITY_KEYS)
    assert set(tier) == set(rules_loader.TIER_KEYS)
    assert set(tier["pagerduty"]["properties"]) == set(rules_loader.PAGERDUTY_KEYS)
    assert set(definitions["severityPolicy"]["properties"]) == set(
        rules_loader.SEVERITY_POLICY_KEYS
    )
    assert set(step) == set(rules_loader.STEP_KEYS)
    assert set(definitions["rule"]["properties"]) == set(rules_loader.RULE_KEYS)


@pytest.mark.parametrize(
    "fixture",
    ["bad_unknown_rule_key", "bad_unknown_top_level_key", "bad_duration", "bad_no_condition"],
)
def test_the_schema_catches_what_editors_can_see(fixture: str) -> None:
    path = Path(__file__).parent / "fixtures" / "rules" / f"{fixture}.yaml"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(path.read_text("utf-8")), SCHEMA)
