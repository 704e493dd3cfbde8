"""The routing in force: rules and runbooks, and what they say about one alert.

`Routing` is replaced whole when the rules are reloaded, so a decision never mixes two versions of
the rules or of the runbooks. It is pure: `route(alert)` classifies the alert and finds its runbook
section; `excerpt(runbook)` gives the text a page carries for that section.
"""

from __future__ import annotations

import traceback
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.errors import ConfigError
from router.incidents.escalation import Context
from router.lru import LruCache
from router.models import Alert
from router.outbox.context import PageRunbook
from router.rules import (
    DEFAULT_POLICY,
    Classification,
    RuleSet,
    SeverityPolicy,
    incident_key,
    load_rules,
)
from router.runbooks import Candidate, RunbookLibrary, RunbookMatch, Section, render_excerpt
from router.runbooks.library import LABELS_READ
from router.runbooks.search import Evidence
from router.types import Style

# Routed alerts remembered by their labels, annotations and values (see `Routing.route`).
ROUTED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class RoutedAlert:
    alert: Alert
    classification: Classification
    # {"file", "anchor", "heading", "path", "link", "method", "score", "confidence"}, or None
    # when no section was attached.
    runbook: dict[str, Any] | None
    match: RunbookMatch | None = None
    # The best searched sections with their confidence and evidence (`candidate_json`).
    candidates: tuple[dict[str, Any], ...] = ()
    # An error in the rules or the search (a bug): the alert is routed with what is known, and
    # the runtime logs this, with its traceback.
    failure: str | None = None


def load_routing(rules_dir: Path, env: Mapping[str, str], *, strict_secrets: bool) -> Routing:
    """Rules and runbooks of a rules directory; ConfigError lists every problem of both."""
    rules = load_rules(rules_dir, env, strict_secrets=strict_secrets)
    runbooks = RunbookLibrary.load(rules_dir / "runbooks")
    problems = list(runbooks.problems) + reference_problems(rules, runbooks)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in {rules_dir}", tuple(problems))
    return Routing(rules, runbooks)


def reference_problems(rules: RuleSet, runbooks: RunbookLibrary) -> list[str]:
    """`file:line: message` for every rule whose `runbook:` names no section the library holds."""
    problems = []
    for rule in rules.rules:
        if rule.runbook is None:
            continue
        missing = runbooks.missing_reference(rule.runbook)
        if missing is not None:
            problems.append(f"{rule.source}: rule {rule.name}: {missing}")
    return problems


def section_json(section: Section, method: str, score: float) -> dict[str, Any]:
    """A runbook section as the API, the dry run and page contexts show it."""
    return {
        "file": section.file,
        "anchor": section.anchor,
        "heading": section.heading,
        "path": list(section.path),
        "method": method,
        "score": round(score, 3),
    }


def candidate_json(candidate: Candidate, base_url: str = "") -> dict[str, Any]:
    """A searched section with its confidence and evidence, as the API and the dry run show it."""
    return {
        **section_json(candidate.section, "search", candidate.score),
        "link": candidate.section.link(base_url),
        "confidence": round(candidate.confidence, 3),
        "evidence": [
            {"word": e.word, "source": e.source, "field": e.field} for e in candidate.evidence
        ],
    }


def percent(confidence: float) -> str:
    """A confidence as people read it: `87%`; never 100 %, which no search can promise."""
    return f"{min(confidence, 0.99):.0%}"


def format_evidence(evidence: Sequence[Evidence]) -> str:
    """`heading ← alertname: kube, pod; text ← description: waiting` (which alert terms were
    found in which part of the section)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for item in evidence:
        groups.setdefault((item.field, item.source), []).append(item.word)
    return "; ".join(
        f"{field} ← {source}: {', '.join(found)}" for (field, source), found in groups.items()
    )


class Routing:
    def __init__(self, rules: RuleSet, runbooks: RunbookLibrary) -> None:
        self.rules = rules
        self.runbooks = runbooks
        self._severities = frozenset(level.name for level in rules.severities)
        self._routed: LruCache[Hashable, RoutedAlert] = LruCache(ROUTED_CACHE_SIZE)
        # The labels that decide classification and search, in a fixed order; for alerts that
        # agree on them, the `group_by` labels their incident key reads (see `route`).
        self._deciding = tuple(sorted(rules.deciding_labels | LABELS_READ))
        self._grouped_by: LruCache[Hashable, tuple[str, ...]] = LruCache(ROUTED_CACHE_SIZE)
        # Contexts by (policy, severity, rule): a few per rules version, asked for by every
        # alert that joins an incident and every escalation.
        self._contexts: dict[tuple[str, str, str | None], Context] = {}

    def route(self, alert: Alert) -> RoutedAlert:
        """Classify `alert` and find its runbook section, from memory when an alert that says
        the same was routed before.

        Both depend only on the deciding labels (the rules' matchers, the severity and value
        labels, the labels the search reads), the annotations and the values: they fix the
        deciding rule, hence its `group_by`, and the incident key adds those labels' values.
        So a repeat (Alertmanager resends every firing alert of a group) or the same alert on
        another pod is answered from memory, and one on another instance too unless the rule
        groups by instance."""
        labels = alert.labels
        deciding = (
            tuple(map(labels.get, self._deciding)),
            tuple(alert.annotations.items()),
            tuple(alert.values.items()),
            alert.value_string,
        )
        routed = None
        grouped_by = self._grouped_by.get(deciding)
        if grouped_by is not None:
            routed = self._routed.get((deciding, tuple(labels.get(n, "") for n in grouped_by)))
        if routed is None:
            routed = self._route(alert)
            grouped_by = tuple(routed.classification.group_values)
            self._grouped_by.put(deciding, grouped_by)
            self._routed.put((deciding, tuple(labels.get(n, "") for n in grouped_by)), routed)
        return RoutedAlert(
            alert,
            routed.classification,
            routed.runbook,
            routed.match,
            routed.candidates,
            routed.failure,
        )

    def _route(self, alert: Alert) -> RoutedAlert:
        # A bug in classification or search must not lose the alert (the sender would retry a
        # 500 for ever): it is logged, and the alert is paged with what is known.
        try:
            classification = self.rules.classify(alert)
        except Exception as exc:
            failure = _failure("classifying", exc)
            return RoutedAlert(alert, self._unclassified(alert, exc), None, failure=failure)
        try:
            match = self.runbooks.find(
                alert, rule_runbook=classification.runbook, rule_names=classification.matched_rules
            )
        except Exception as exc:
            failure = _failure("searching the runbooks for", exc)
            return RoutedAlert(alert, classification, None, failure=failure)
        base_url = self.rules.runbook_base_url
        return RoutedAlert(
            alert,
            classification,
            self._runbook_json(match),
            match,
            tuple(candidate_json(c, base_url) for c in match.candidates),
        )

    def _unclassified(self, alert: Alert, exc: Exception) -> Classification:
        """Its severity label, else default_severity, as when no rule holds."""
        rules = self.rules
        label = alert.labels.get("severity", "")
        severity = (rules.severity_for_label(label) if label else None) or rules.default_severity
        group_values = {name: alert.labels.get(name, "") for name in rules.group_by}
        return Classification(
            severity=severity,
            rule=None,
            matched_rules=(),
            policy=DEFAULT_POLICY,
            incident_key=incident_key("unclassified", group_values),
            group_values=group_values,
            reason=f"{severity}: the rules failed on this alert ({type(exc).__name__}: {exc}), "
            "an error in runbook-router, logged",
            runbook=None,
        )

    def _runbook_json(self, match: RunbookMatch) -> dict[str, Any] | None:
        if match.section is None:
            return None
        return {
            **section_json(match.section, match.method, match.score),
            "link": match.section.link(self.rules.runbook_base_url),
            "confidence": round(match.confidence, 3),
            "content_hash": match.section.content_hash,
        }

    def section(self, runbook: PageRunbook | None) -> Section | None:
        return self.runbooks.get(runbook.reference) if runbook else None

    def excerpt(self, runbook: PageRunbook | None, budget: int, style: Style) -> str:
        """The runbook text for a page of `budget` characters: the section as it is now on disk,
        or, if it is gone since the page was queued, the link alone."""
        section = self.section(runbook)
        if section is None:
            link = runbook.link if runbook else ""
            return link if len(link) <= budget else ""
        link = section.link(self.rules.runbook_base_url)
        return render_excerpt(section, budget=budget, link=link, style=style)

    # An open incident keeps the policy and severity it was opened with, but a reload may have
    # removed them from the rules. Its escalation then goes on under the `default` policy and the
    # default severity's escalation, rather than stopping.

    def severity_policy(self, policy: str, severity: str) -> SeverityPolicy:
        rules = self.rules
        chosen = rules.policies.get(policy) or rules.policies.get(DEFAULT_POLICY)
        if chosen is None:
            chosen = next(iter(rules.policies.values()))
        by_severity = chosen.by_severity
        found = by_severity.get(severity) or by_severity.get(rules.default_severity)
        return found if found is not None else next(iter(by_severity.values()))

    def rank(self, severity: str) -> int:
        """0 for the most severe; a severity the rules no longer have ranks below all others."""
        try:
            return self.rules.rank(severity)
        except KeyError:
            return len(self.rules.severities)

    def escalation_context(self, policy: str, severity: str, rule: str | None = None) -> Context:
        """What the escalation of an incident needs: its policy's steps for `severity`, the
        business hours, and the flap damping of `rule` at `severity`."""
        key = (policy, severity, rule)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = self._escalation_context(policy, severity, rule)
        return context

    def _escalation_context(self, policy: str, severity: str, rule: str | None) -> Context:
        known = severity if severity in self._severities else None
        return Context(
            severity=severity,
            policy=self.severity_policy(policy, severity),
            hours=self.rules.hours_for(known or self.rules.default_severity),
            damping=self.rules.damping(rule, severity),
        )


def _failure(doing: str, exc: Exception) -> str:
    return f"error while {doing} the alert:\n" + "".join(traceback.format_exception(exc))
