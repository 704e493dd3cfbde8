"""Classification speed with 1,000 rules: one alert must classify in well under a millisecond.

The rule set mixes what real rule files hold: exact alert names, alert name regexes, label-only
matchers, value thresholds and text searches, over four severities. Alerts are classified twice:
the first time each alert name is new to the rule set (the alert-name index is built for it), the
second time it is known, as in an alert storm where the same alerts repeat.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from router.ingest.payloads import label_fingerprint
from router.models import Alert, AlertStatus, Source
from router.rules import RuleSet, load_rules

RULES = 1000
ALERTS = 5000
SEVERITIES = ("P0", "P1", "P2", "P3")
TARGET_SECONDS = 0.001


def rules_yaml(count: int) -> str:
    lines = [
        "severities: {P0: {aliases: [critical]}, P1: {}, P2: {}, P3: {}}",
        "tiers: {oncall: {log: true}}",
        "policies:",
        "  default:",
        *(f"    {s}: {{steps: [{{notify: [oncall], ack_within: 5m}}]}}" for s in SEVERITIES),
        "rules:",
    ]
    for i in range(count):
        severity = SEVERITIES[i % 4]
        kind = i % 10
        if kind < 4:  # exact alert name, often with a second label matcher
            matchers = [f'alertname="Service{i}Down"', 'env!~"dev|test"']
            condition = f"matchers: {matchers!r}"
        elif kind < 7:  # alert name regex
            condition = f"matchers: ['alertname=~\"Team{i}(Error|Failure)s?.*\"']"
        elif kind == 7:  # label matchers only: checked for every alert
            condition = f"matchers: ['team=\"team-{i}\"', 'severity=~\"critical|high\"']"
        elif kind == 8:  # value threshold on an exact name
            condition = f'matchers: [\'alertname="Latency{i}High"\']\n    value: "> {i}ms"'
        else:  # text search: checked for every alert
            condition = f'text: "incident keyword {i}"'
        lines.append(f"  - name: rule-{i}\n    severity: {severity}\n    {condition}")
    return "\n".join(lines) + "\n"


def make_alerts(count: int, rng: random.Random) -> list[Alert]:
    alerts = []
    for j in range(count):
        i = rng.randrange(RULES)
        shape = j % 4
        if shape == 0:
            name = f"Service{i - i % 10}Down"  # an exact-name rule exists for it
        elif shape == 1:
            name = f"Team{i - i % 10 + 4}ErrorsRising{j}"  # matches a regex rule; a new name
        elif shape == 2:
            name = f"Latency{i - i % 10 + 8}High"
        else:
            name = f"Unrelated{j}"  # no rule for it; a new name
        labels = {
            "alertname": name,
            "service": f"svc-{j % 50}",
            "env": "prod",
            "team": f"team-{i}",
            "severity": "critical" if j % 7 == 0 else "warning",
        }
        annotations = {
            "summary": f"{name} on svc-{j % 50}",
            "description": f"incident keyword {rng.randrange(RULES * 2)} seen",
            "value": f"{rng.randrange(2000)}ms",
        }
        alerts.append(
            Alert(
                source=Source.ALERTMANAGER,
                status=AlertStatus.FIRING,
                fingerprint=label_fingerprint(labels),
                labels=labels,
                annotations=annotations,
                starts_at=None,
            )
        )
    return alerts


def timings(ruleset: RuleSet, alerts: list[Alert]) -> list[float]:
    spent = []
    clock = time.perf_counter
    for alert in alerts:
        started = clock()
        ruleset.classify(alert)
        spent.append(clock() - started)
    return spent


def p99(spent: list[float]) -> float:
    ordered = sorted(spent)
    return ordered[int(len(ordered) * 0.99) - 1]


def describe(label: str, spent: list[float]) -> str:
    return (
        f"  {label:<26} median {statistics.median(spent) * 1e6:7.1f} µs   "
        f"p99 {p99(spent) * 1e6:7.1f} µs   max {max(spent) * 1e6:7.1f} µs"
    )


def main() -> None:
    rng = random.Random(20240510)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "rules.yaml"
        path.write_text(rules_yaml(RULES), encoding="utf-8")
        started = time.perf_counter()
        ruleset = load_rules(path, {}, strict_secrets=True)
        load_seconds = time.perf_counter() - started
    alerts = make_alerts(ALERTS, rng)
    first = timings(ruleset, alerts)  # new alert names: the index is consulted in full
    again = timings(ruleset, alerts)  # the same alerts again, as in a storm
    held = sum(1 for alert in alerts if ruleset.classify(alert).rule is not None)
    verdict = "met" if max(p99(first), p99(again)) < TARGET_SECONDS else "MISSED"
    print(
        f"rules: classify one alert against {len(ruleset.rules)} rules "
        f"({ALERTS} alerts, {held} decided by a rule)"
    )
    print(f"  loading and checking the rules: {load_seconds * 1000:.0f} ms")
    print(describe("first sight of each alert", first))
    print(describe("alerts seen before", again))
    print(f"  target: p99 under {TARGET_SECONDS * 1e6:.0f} µs per alert: {verdict}")


if __name__ == "__main__":
    main()
