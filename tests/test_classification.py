"""Classification: the rule index decides as evaluating every rule would; incident keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from router.models import Alert
from router.rules import Rule, RuleSet, load_rules
from router.rules.conditions import alert_value
from router.rules.model import MAX_INCIDENT_KEY, incident_key
from tests.alerts import make_alert

SEVERITIES = ("P0", "P1", "P2")
MATCHERS = (
    'alertname="DiskFull"',
    'alertname="Down"',
    'alertname=~"Disk.*"',
    'alertname=~".*Down|Outage"',
    'alertname!="DiskFull"',
    'alertname!~"Disk.*"',
    'team="db"',
    'team=""',
    'team!="db"',
    'team=~"d.*"',
    'env="prod"',
    'env!~"dev|test"',
)
TEXTS = ("disk full", "/out(age)?/", "down")
VALUES = ("> 10s", "<= 5", ">= 50%")

rule_strategy = st.fixed_dictionaries(
    {
        "severity": st.sampled_from(SEVERITIES),
        "matchers": st.lists(st.sampled_from(MATCHERS), max_size=3, unique=True),
        "text": st.none() | st.sampled_from(TEXTS),
        "value": st.none() | st.sampled_from(VALUES),
    }
).filter(lambda r: r["matchers"] or r["text"] or r["value"])

alert_strategy = st.fixed_dictionaries(
    {
        "labels": st.fixed_dictionaries(
            {"alertname": st.sampled_from(["DiskFull", "DiskSlow", "Down", "Outage", "Other"])},
            optional={
                "team": st.sampled_from(["db", "", "dev", "web"]),
                "env": st.sampled_from(["prod", "dev", "test"]),
            },
        ),
        "annotations": st.fixed_dictionaries(
            {},
            optional={
                "summary": st.sampled_from(["Disk FULL", "service down", "outages", "fine"]),
                "value": st.sampled_from(["12s", "3", "75%", "n/a", "9s"]),
            },
        ),
    }
)


def write_rules(
    directory: Path, rules: list[dict[str, object]], group_by: list[str] | None = None
) -> RuleSet:
    lines = [
        *([f"group_by: {group_by!r}"] if group_by else []),
        "severities: {P0: {}, P1: {}, P2: {}}",
        "tiers: {oncall: {log: true}}",
        "policies: {default: {P0: &s {steps: [{notify: [oncall]}]}, P1: *s, P2: *s}}",
        "rules:",
    ]
    for index, rule in enumerate(rules):
        lines.append(f"  - name: r{index}")
        lines.append(f"    severity: {rule['severity']}")
        if rule["matchers"]:
            lines.append(f"    matchers: {rule['matchers']!r}")
        for key in ("text", "value"):
            if rule[key] is not None:
                lines.append(f"    {key}: {rule[key]!r}")
    path = directory / "rules.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_rules(path, {}, strict_secrets=True)


def holds(rule: Rule, alert: Alert) -> bool:
    """A rule evaluated the plain way: every condition, no index."""
    if not all(matcher.matches(alert.labels) for matcher in rule.matchers):
        return False
    if rule.text is not None and rule.text.find(alert.annotations) is None:
        return False
    return rule.value is None or rule.value.evaluate(alert_value(alert))[0]


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(rule_strategy, min_size=1, max_size=12),
    alerts=st.lists(alert_strategy, min_size=1, max_size=6),
)
def test_the_index_decides_as_evaluating_every_rule(
    tmp_path_factory: object, rules: list[dict[str, object]], alerts: list[dict[str, object]]
) -> None:
    directory = tmp_path_factory.mktemp("rules")  # type: ignore[attr-defined]
    ruleset = write_rules(directory, rules)
    for given_alert in alerts * 2:  # twice: the regex cache is warm the second time
        alert = make_alert(given_alert["labels"], given_alert["annotations"])  # type: ignore[arg-type]
        expected = [rule for rule in ruleset.rules if holds(rule, alert)]
        decision = ruleset.classify(alert)
        assert decision.matched_rules == tuple(rule.name for rule in expected)
        if expected:
            decider = min(
                expected, key=lambda r: (ruleset.rank(r.severity), ruleset.rules.index(r))
            )
            assert (decision.rule, decision.severity) == (decider.name, decider.severity)
        else:
            assert decision.rule is None


def test_incident_keys_are_bounded_and_stable() -> None:
    short = incident_key("rule", {"alertname": "A", "service": ""})
    assert short == "rule|alertname=A|service="
    long_values = {"alertname": "A" * 200, "instance": "i" * 200}
    key = incident_key("rule", long_values)
    assert len(key) == MAX_INCIDENT_KEY
    assert key.startswith("rule|alertname=AAAA")
    assert key == incident_key("rule", long_values)
    assert key != incident_key("rule", {**long_values, "instance": "i" * 199 + "j"})


def test_rule_group_by_overrides_the_rule_set(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "group_by: [alertname]\n"
        "severities: {P0: {}}\ntiers: {oncall: {log: true}}\n"
        "policies: {default: {P0: {steps: [{notify: [oncall]}]}}}\n"
        "rules:\n"
        "  - {name: per-instance, matchers: ['alertname=\"A\"'], severity: P0,\n"
        "     group_by: [instance]}\n"
        "  - {name: per-name, matchers: ['alertname=\"B\"'], severity: P0}\n",
        encoding="utf-8",
    )
    ruleset = load_rules(path, {}, strict_secrets=True)
    a = ruleset.classify(make_alert({"alertname": "A", "instance": "i1"}))
    b = ruleset.classify(make_alert({"alertname": "B", "instance": "i1"}))
    assert (a.incident_key, dict(a.group_values)) == (
        "per-instance|instance=i1",
        {"instance": "i1"},
    )
    assert b.incident_key == "per-name|alertname=B"


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(rule_strategy, min_size=1, max_size=8),
    group_by=st.lists(st.sampled_from(["alertname", "instance", "team", "pod"]), unique=True),
    alerts=st.lists(alert_strategy, min_size=1, max_size=4),
    others=st.dictionaries(
        st.sampled_from(["instance", "pod", "team", "env", "value", "severity", "region"]),
        st.sampled_from(["", "db", "prod", "12s", "critical", "host-7"]),
    ),
)
def test_labels_that_do_not_decide_change_only_the_incident_key(
    tmp_path_factory: object,
    rules: list[dict[str, object]],
    group_by: list[str],
    alerts: list[dict[str, object]],
    others: dict[str, str],
) -> None:
    # What lets Routing.route answer alerts that differ only in such labels from memory.
    directory = tmp_path_factory.mktemp("rules")  # type: ignore[attr-defined]
    ruleset = write_rules(directory, rules, group_by)
    for rule in ruleset.rules:
        assert {matcher.name for matcher in rule.matchers} <= ruleset.deciding_labels
    unread = {name: v for name, v in others.items() if name not in ruleset.deciding_labels}
    for given_alert in alerts:
        labels: dict[str, str] = given_alert["labels"]  # type: ignore[assignment]
        annotations: dict[str, str] = given_alert["annotations"]  # type: ignore[assignment]
        here = ruleset.classify(make_alert(labels, annotations))
        moved = {**labels, **unread}
        there = ruleset.classify(make_alert(moved, annotations))
        assert there.group_values == {name: moved.get(name, "") for name in here.group_values}
        same = dataclasses.replace(there, group_values=here.group_values, incident_key="")
        assert same == dataclasses.replace(here, incident_key="")
        if there.group_values == here.group_values:
            assert there.incident_key == here.incident_key
