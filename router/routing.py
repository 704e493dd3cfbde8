"""The routing in force: rules and runbooks, and what they say about one alert.

`Routing` is replaced whole when the rules are reloaded, so a decision never mixes two versions of
the rules. It is pure: `route(alert)` classifies the alert and finds its runbook section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.escalation import Context
from router.models import Alert
from router.rules import Classification, RuleSet


@dataclass(frozen=True, slots=True)
class RoutedAlert:
    alert: Alert
    classification: Classification
    runbook: dict[str, Any] | None  # {"file", "anchor", "heading", "method", "score"}


class Routing:
    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def route(self, alert: Alert) -> RoutedAlert:
        return RoutedAlert(alert, self.rules.classify(alert), None)

    def escalation_context(self, policy: str, severity: str) -> Context:
        return Context(
            severity=severity,
            policy=self.rules.severity_policy(policy, severity),
            hours=self.rules.hours_for(severity),
        )

    def next_tiers(self, policy: str, severity: str, step: int, round_: int) -> tuple[str, ...]:
        """The tiers the step after (step, round) pages, or () when escalation ends there."""
        severity_policy = self.rules.severity_policy(policy, severity)
        steps = severity_policy.steps
        if step + 1 < len(steps):
            return tuple(steps[step + 1].tiers)
        if round_ < severity_policy.repeat:
            return tuple(steps[-1].tiers)
        return ()
