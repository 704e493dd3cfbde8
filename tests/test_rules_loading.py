"""Loading rules directories: secrets, merging of several files, and the checks that need a whole
directory of their own (the golden fixtures share one base file)."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from router.errors import ConfigError
from router.rules import ChannelTarget, check_rules, load_rules, rules_files
from tests.alerts import make_alert

SEVERITIES = """
severities:
  P0: {aliases: [critical]}
  P1: {}
"""
POLICIES = """
policies:
  default:
    P0: {steps: [{notify: [oncall], ack_within: 5m}]}
    P1: {steps: [{notify: [oncall]}]}
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(dedent(text), encoding="utf-8")
    return directory


ONE_RULE = "rules: [{name: x, matchers: ['alertname=\"X\"'], severity: P1}]\n"


def rules_dir(tmp_path: Path, tiers: str, rules: str = ONE_RULE) -> Path:
    return write(tmp_path / "rules", {"a.yaml": SEVERITIES + tiers + POLICIES, "b.yaml": rules})


ONCALL = """
tiers:
  oncall:
    pagerduty: {routing_key: "${PD_KEY}"}
    apprise: ["${SLACK_URL:-}", "mailto://oncall@example.com"]
"""


def test_secrets_come_from_the_given_environment(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, ONCALL)
    env = {"PD_KEY": "0123456789abcdef0123456789abcdef", "SLACK_URL": "slack://T1/B1/C1"}
    ruleset = load_rules(directory, env, strict_secrets=True)
    channels = ruleset.tiers["oncall"].channels
    assert [(c.kind, c.target, c.label) for c in channels] == [
        ("pagerduty", "0123456789abcdef0123456789abcdef", "pagerduty"),
        ("apprise", "slack://T1/B1/C1", "apprise:slack"),
        ("apprise", "mailto://oncall@example.com", "apprise:mailto"),
    ]
    assert not ruleset.tiers["oncall"].falls_back_to_log
    assert ruleset.warnings == ()


def test_secrets_never_print() -> None:
    channel = ChannelTarget("pagerduty", "0123456789abcdef0123456789abcdef", "pagerduty")
    assert "0123456789abcdef" not in repr(channel)


def test_an_unset_secret_is_an_error_for_the_daemon(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, ONCALL)
    with pytest.raises(ConfigError) as caught:
        load_rules(directory, {}, strict_secrets=True)
    assert caught.value.problems == (
        f"{directory}/a.yaml:8: environment variable PD_KEY is not set "
        "(write ${PD_KEY:-} to make it optional)",
    )
    assert str(caught.value) == f"rules in {directory} are invalid: 1 error"


def test_an_unset_secret_is_a_warning_for_check(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, ONCALL)
    ruleset = load_rules(directory, {}, strict_secrets=False)
    # The empty routing key is dropped; the mailto target is left.
    assert [c.label for c in ruleset.tiers["oncall"].channels] == ["apprise:mailto"]
    report = check_rules(directory, {})
    assert report.ok and report.ruleset is not None
    assert report.warnings == [
        f"{directory}/a.yaml:8: environment variable PD_KEY is not set "
        "(write ${PD_KEY:-} to make it optional)"
    ]
    assert report.lines == [
        f"{directory}/a.yaml:8: warning: environment variable PD_KEY is not set "
        "(write ${PD_KEY:-} to make it optional)"
    ]


@pytest.mark.parametrize(
    ("written", "env", "expected"),
    [
        ("${URL}", {"URL": "json://a"}, "json://a"),
        ("${URL:-json://default}", {}, "json://default"),
        ("${URL:-json://default}", {"URL": ""}, "json://default"),  # empty counts as unset
        ("${URL:-json://default}", {"URL": "json://set"}, "json://set"),
        ("json://host/${PATH_PART}/x", {"PATH_PART": "p"}, "json://host/p/x"),
        ("json://host/$${NOT_A_VARIABLE}", {}, "json://host/${NOT_A_VARIABLE}"),
        ("json://host/$PLAIN", {}, "json://host/$PLAIN"),
    ],
)
def test_interpolation(tmp_path: Path, written: str, env: dict[str, str], expected: str) -> None:
    tiers = f'\ntiers:\n  oncall:\n    apprise: ["{written}"]\n'
    ruleset = load_rules(rules_dir(tmp_path, tiers), env, strict_secrets=True)
    assert [c.target for c in ruleset.tiers["oncall"].channels] == [expected]


def test_a_tier_with_no_channel_left_pages_to_the_log(tmp_path: Path) -> None:
    tiers = '\ntiers:\n  oncall:\n    pagerduty: {routing_key: "${PD_KEY:-}"}\n'
    directory = rules_dir(tmp_path, tiers)
    ruleset = load_rules(directory, {}, strict_secrets=True)
    tier = ruleset.tiers["oncall"]
    assert tier.falls_back_to_log
    assert [(c.kind, c.label) for c in tier.channels] == [("log", "log")]
    assert ruleset.warnings == (
        f"{directory}/a.yaml:7: tier oncall has no channel left (its routing keys and URLs are "
        "empty or unset); its pages go to the log",
    )


def test_files_merge_in_file_name_order(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "rules",
        {
            "10-base.yaml": SEVERITIES + "tiers: {oncall: {log: true}}\n" + POLICIES,
            "30-late.yaml": """
                rules:
                  - {name: late, matchers: ['alertname="Disk"'], severity: P1}
                tiers: {lead: {log: true}}
            """,
            "20-early.yaml": """
                rules:
                  - {name: early, matchers: ['alertname="Disk"'], severity: P1}
                  - {name: early-critical, matchers: ['alertname="Fire"'], severity: P0}
            """,
            "notes.txt": "not a rules file",
        },
    )
    ruleset = load_rules(directory, {}, strict_secrets=True)
    assert [rule.name for rule in ruleset.rules] == ["early", "early-critical", "late"]
    assert list(ruleset.tiers) == ["oncall", "lead"]
    assert ruleset.rules[0].source == f"{directory}/20-early.yaml:3"
    assert ruleset.files == tuple(
        str(directory / name) for name in ("10-base.yaml", "20-early.yaml", "30-late.yaml")
    )
    # Equal severities: the earlier rule (by file name, then place in the file) decides.
    decided = ruleset.classify(make_alert({"alertname": "Disk"}))
    assert (decided.rule, decided.matched_rules) == ("early", ("early", "late"))


def test_one_rules_file_can_be_checked_alone(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(SEVERITIES + "tiers: {oncall: {log: true}}\n" + POLICIES, encoding="utf-8")
    assert load_rules(path, {}, strict_secrets=True).rules == ()


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = """
        tiers: {oncall: {log: true}, lead: {log: true}}
        policies:
          default:
            P0: &fast {steps: [{notify: [oncall], ack_within: 5m}], repeat: 3}
            P1:
              <<: *fast
              repeat: 1
    """
    ruleset = load_rules(
        write(tmp_path / "r", {"a.yaml": SEVERITIES + dedent(text)}), {}, strict_secrets=True
    )
    default = ruleset.policies["default"].by_severity
    assert (default["P0"].repeat, default["P1"].repeat) == (3, 1)
    assert default["P1"].steps == default["P0"].steps


def test_defaults(tmp_path: Path) -> None:
    ruleset = load_rules(
        rules_dir(tmp_path, "tiers: {oncall: {log: true}}\n"), {}, strict_secrets=True
    )
    assert ruleset.timezone == "UTC"
    assert ruleset.business_hours.day_names == ("mon", "tue", "wed", "thu", "fri")
    assert (ruleset.business_hours.start.hour, ruleset.business_hours.end.hour) == (9, 18)
    assert ruleset.group_by == ("alertname",)
    assert ruleset.default_severity == "P1"  # the least severe
    assert ruleset.runbook_base_url == ""
    assert [(s.name, s.aliases, s.hours) for s in ruleset.severities] == [
        ("P0", ("critical",), "always"),
        ("P1", (), "always"),
    ]


def test_runbook_base_url_is_a_prefix(tmp_path: Path) -> None:
    tiers = "runbook_base_url: https://git.example.com/runbooks\ntiers: {oncall: {log: true}}\n"
    ruleset = load_rules(rules_dir(tmp_path, tiers), {}, strict_secrets=True)
    assert ruleset.runbook_base_url == "https://git.example.com/runbooks/"


def test_runbook_files_are_checked_only_where_runbooks_exist(tmp_path: Path) -> None:
    rules = "rules: [{name: r, matchers: ['alertname=\"A\"'], severity: P0, runbook: x.md#y}]\n"
    directory = rules_dir(tmp_path, "tiers: {oncall: {log: true}}\n", rules)
    assert load_rules(directory, {}, strict_secrets=True).rules[0].runbook == "x.md#y"
    (directory / "runbooks").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_rules(directory, {}, strict_secrets=True)
    assert caught.value.problems == (
        f"{directory}/b.yaml:1: rule r: runbook: no file x.md in {directory}/runbooks",
    )
    (directory / "runbooks" / "x.md").write_text("# X\n\n## Y\n", encoding="utf-8")
    assert load_rules(directory, {}, strict_secrets=True).rules[0].runbook == "x.md#y"


def problems_of(directory: Path) -> list[str]:
    report = check_rules(directory, {})
    return [line.removeprefix(f"{directory}/") for line in report.lines]


def test_a_missing_default_policy(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "r",
        {
            "a.yaml": SEVERITIES
            + "tiers: {oncall: {log: true}}\n"
            + "policies: {other: {P0: {steps: [{notify: [oncall]}]}}}\n"
        },
    )
    assert problems_of(directory) == [
        'a.yaml: no "default" policy; alerts that no rule classifies, and rules that name no '
        "policy, use it"
    ]


def test_the_default_policy_covers_every_severity(tmp_path: Path) -> None:
    text = (
        SEVERITIES
        + """
tiers: {oncall: {log: true}}
policies:
  default:
    P0: {steps: [{notify: [oncall]}]}
"""
    )
    assert problems_of(write(tmp_path / "r", {"a.yaml": text})) == [
        "a.yaml:8: policy default: has no P1; it must cover every severity, since alerts that no "
        "rule classifies may get any"
    ]


def test_severity_settings(tmp_path: Path) -> None:
    text = """
severities:
  P0: {aliases: [critical, sev1]}
  P1: {aliases: [Critical], hours: office}
  P2: {alias: [low]}
tiers: {oncall: {log: true}}
"""
    directory = write(tmp_path / "r", {"a.yaml": text})
    assert problems_of(directory) == [
        'a.yaml: no "default" policy; alerts that no rule classifies, and rules that name no '
        "policy, use it",
        'a.yaml:4: severity P1: hours: must be always or business, got "office"',
        f'a.yaml:4: severity P1: "Critical" already means P0 (at {directory}/a.yaml:3)',
        'a.yaml:5: severity P2: unknown key "alias" (did you mean "aliases"?)',
    ]


def test_no_severities(tmp_path: Path) -> None:
    directory = write(tmp_path / "r", {"a.yaml": "tiers: {oncall: {log: true}}\n" + POLICIES})
    assert problems_of(directory)[0] == (
        "a.yaml: no severities defined; add severities: (most severe first)"
    )


def test_a_directory_without_rules_files(tmp_path: Path) -> None:
    assert check_rules(tmp_path, {}).errors == [f"{tmp_path}: no rules files (*.yaml or *.yml)"]
    missing = tmp_path / "missing"
    assert check_rules(missing, {}).errors == [f"{missing}: no such file or directory"]


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, "tiers: {oncall: {log: true}}\n")
    (directory / "c.yaml").write_bytes(b"rules: [\xff]\n")
    assert problems_of(directory) == ["c.yaml: not UTF-8 text (byte 8)"]


def test_an_empty_file_is_fine(tmp_path: Path) -> None:
    directory = rules_dir(tmp_path, "tiers: {oncall: {log: true}}\n", "# nothing yet\n")
    assert load_rules(directory, {}, strict_secrets=True).rules == ()


def test_yml_files_are_rules_files_too(tmp_path: Path) -> None:
    (tmp_path / "10-tiers.yml").write_text("tiers: {oncall: {log: true}}\n", "utf-8")
    (tmp_path / "20-rest.yaml").write_text(SEVERITIES + POLICIES, "utf-8")
    assert [p.name for p in rules_files(tmp_path)] == ["10-tiers.yml", "20-rest.yaml"]
    assert "oncall" in load_rules(tmp_path, {}, strict_secrets=True).tiers


def test_a_grafana_ref_and_a_unit_classify(tmp_path: Path) -> None:
    rules = """
    rules:
      - name: slow-by-ref
        matchers: ['alertname="Slow"']
        value: {ref: B, op: ">", threshold: 10s}
        unit: ms
        severity: P0
      - name: slow-by-value
        matchers: ['alertname="Slow"']
        value: "> 10"
        severity: P1
    """
    ruleset = load_rules(
        rules_dir(tmp_path, "tiers: {oncall: {log: true}}\n", rules), {}, strict_secrets=True
    )
    # B is 12400 ms; A is the first measurement, 50, for the rule that names no ref.
    alert = make_alert({"alertname": "Slow"}, values={"A": 50.0, "B": 12400.0, "C": 1.0})
    decision = ruleset.classify(alert)
    assert decision.matched_rules == ("slow-by-ref", "slow-by-value")
    assert decision.reason == (
        'P0 by rule slow-by-ref (alertname="Slow" and value 12400ms (values[B], unit ms from '
        "the rule) > 10s); also matched: slow-by-value (P1)"
    )
    slower = make_alert({"alertname": "Slow"}, values={"A": 50.0, "B": 9000.0, "C": 1.0})
    assert ruleset.classify(slower).rule == "slow-by-value"
