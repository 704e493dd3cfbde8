"""Shadow rules: what a second rule set would decide for the alerts the rules in force route.

With `ROUTER_SHADOW_RULES_DIR` set, every firing alert of an accepted webhook is routed by the
shadow rules too, with `Routing.route` as the daemon routes it; the comparison is recorded (a log
line when they differ, `router_shadow_decisions_total`, and the latest disagreements on the web
Rules page), and nothing is paged or stored for it.
Pure: the caller logs and counts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.models import Alert
from router.routing import RoutedAlert, Routing


@dataclass(frozen=True, slots=True)
class Decision:
    """What one rule set says about an alert: severity, policy, incident key, the tiers of the
    first step, and the runbook section (`file#anchor`, None when none is attached)."""

    severity: str
    policy: str
    incident_key: str
    tiers: tuple[str, ...]
    runbook: str | None


@dataclass(frozen=True, slots=True)
class ShadowDecision:
    alert: Alert
    in_force: Decision
    shadow: Decision

    @property
    def differs(self) -> bool:
        return self.in_force != self.shadow

    def log_fields(self) -> dict[str, Any]:
        """The alert and both decisions, for the log line."""
        found: dict[str, Any] = {"alert": self.alert.name, "fingerprint": self.alert.fingerprint}
        for prefix, decision in (("", self.in_force), ("shadow_", self.shadow)):
            found |= {
                f"{prefix}severity": decision.severity,
                f"{prefix}policy": decision.policy,
                f"{prefix}incident_key": decision.incident_key,
                f"{prefix}tiers": ",".join(decision.tiers),
                f"{prefix}runbook": decision.runbook or "none",
            }
        return found


def decide(routing: Routing, routed: RoutedAlert) -> Decision:
    c = routed.classification
    steps = routing.severity_policy(c.policy, c.severity).steps
    match = routed.match
    return Decision(
        severity=c.severity,
        policy=c.policy,
        incident_key=c.incident_key,
        tiers=tuple(steps[0].tiers) if steps else (),
        runbook=match.section.reference if match and match.section else None,
    )


def compare(in_force: Routing, shadow: Routing, alerts: Iterable[Alert]) -> list[ShadowDecision]:
    """Both decisions for every firing alert (a resolution pages nobody under either)."""
    return [
        ShadowDecision(
            alert, decide(in_force, in_force.route(alert)), decide(shadow, shadow.route(alert))
        )
        for alert in alerts
        if alert.firing
    ]


@dataclass(frozen=True, slots=True)
class Disagreement:
    at: datetime
    decision: ShadowDecision


class RecentDisagreements:
    """The latest alerts on which the shadow rules disagree, newest first, for the Rules page.

    Kept in memory only and bounded: the log line and the metric are the record; this is a view
    of the last few, lost on restart (`replay` over the stored history gives the whole period)."""

    def __init__(self, size: int = 50) -> None:
        self._items: deque[Disagreement] = deque(maxlen=size)

    def add(self, decision: ShadowDecision, at: datetime) -> None:
        self._items.append(Disagreement(at, decision))

    def newest_first(self) -> list[Disagreement]:
        return list(reversed(self._items))
