"""Loaded rules as immutable objects, and the classification of an alert against them.

`RuleSet.classify` is the decision docs/rules.md describes: every rule is evaluated; the alert
takes the most severe severity among the rules that hold, the earlier rule between equals; with no
rule, the alert's `severity` label through the severities' aliases; else `default_severity`.

Rules are indexed by one of their matchers, so that an alert is checked only against the rules that
can hold for it: by an equality matcher (`alertname="X"`, `team="db"`: one dictionary look-up per
indexed label), else by an `alertname=~` regex (which of them hold is remembered per alert name, so
in an alert storm each name is matched once). The result is the same as evaluating every rule: a
rule left out is one whose index matcher fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from router.incidents.damping import NO_DAMPING, Damping
from router.incidents.escalation import PlannedStep, plan_timeline
from router.incidents.schedule import BusinessHours
from router.models import Alert
from router.rules.conditions import (
    TEXT_FIELDS,
    VALUE_LABEL,
    AlertValue,
    TextCondition,
    ValueCondition,
    alert_value,
)
from router.rules.heartbeats import Heartbeat, heartbeat_for
from router.rules.matchers import Matcher, MatchType
from router.rules.regex import compile_set
from router.rules.storm import StormSettings

if TYPE_CHECKING:
    # Only named in annotations: maintenance.windows imports the rules' matchers, whose package
    # imports this module.
    from router.maintenance.windows import Window

DEFAULT_POLICY = "default"
# Incident keys are stored and sent to PagerDuty as `dedup_key`, which takes at most 255 characters
# (PagerDuty Events API v2, "dedup_key": maximum length 255).
MAX_INCIDENT_KEY = 255
# How many alert names the regex cache remembers before it starts again.
_REGEX_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class SeverityLevel:
    """A severity; `aliases` are values of an alert's `severity` label that mean it."""

    name: str
    aliases: tuple[str, ...] = ()
    hours: Literal["always", "business"] = "always"
    damping: Damping = NO_DAMPING  # the pending period and flap detection of its rules


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """Where a tier's page goes. `target` holds the secret (routing key, URL) and never prints;
    `label` is safe to log and to use as a metric label: `pagerduty`, `apprise:mailto`, `log`."""

    kind: Literal["pagerduty", "apprise", "log"]
    target: str = field(repr=False)
    label: str
    # Where the rules write it (`file:line: tiers.oncall.apprise[0]`), for problems found later.
    where: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Tier:
    """A group of people paged together. `falls_back_to_log` is true when none of its configured
    channels was left after interpolation, so its pages are written to the log instead."""

    name: str
    channels: tuple[ChannelTarget, ...]
    falls_back_to_log: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """One escalation step: tiers paged together; `ack_within` to acknowledge before the next."""

    tiers: tuple[str, ...]
    ack_within: timedelta | None


@dataclass(frozen=True, slots=True)
class SeverityPolicy:
    """How one severity escalates: `steps`, then `repeat` more pages of the last step."""

    steps: tuple[Step, ...]
    repeat: int = 0
    ack_expires: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    by_severity: Mapping[str, SeverityPolicy]


@dataclass(frozen=True, slots=True)
class Rule:
    """A classification rule: it holds when every condition it has holds.

    `policy` is the policy's name (`default` when the rule names none); `group_by` is None when
    the rule uses the rule set's; `source` is where the rule was written (`file:line`).
    """

    name: str
    severity: str
    policy: str
    runbook: str | None
    group_by: tuple[str, ...] | None
    source: str
    matchers: tuple[Matcher, ...] = ()
    text: TextCondition | None = None
    value: ValueCondition | None = None
    damping: Damping = NO_DAMPING  # over the severity's, setting by setting


@dataclass(frozen=True, slots=True)
class Classification:
    """The decision for one alert, with everything needed to explain it.

    `rule` is the deciding rule (None when no rule held); `matched_rules` lists every rule that
    held, in rule order; `group_values` are the `group_by` labels of the incident key (a missing
    label is the empty string); `reason` is one sentence for a person.
    """

    severity: str
    rule: str | None
    matched_rules: tuple[str, ...]
    policy: str
    incident_key: str
    group_values: Mapping[str, str]
    reason: str
    runbook: str | None


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    position: int
    rank: int
    # The matchers left to check once the index has chosen the rule: (label name, test).
    residual: tuple[tuple[str, Callable[[str], bool]], ...]
    matcher_words: str


class RuleSet:
    """Every rule, tier, policy and severity of a rules directory, checked and cross-referenced.

    Built by `router.rules.load_rules`; immutable once built (the regex cache aside, which
    never changes a result).
    """

    def __init__(
        self,
        *,
        severities: tuple[SeverityLevel, ...],
        tiers: Mapping[str, Tier],
        policies: Mapping[str, Policy],
        rules: tuple[Rule, ...],
        business_hours: BusinessHours,
        timezone: str,
        runbook_base_url: str,
        group_by: tuple[str, ...],
        default_severity: str,
        storm: StormSettings | None = None,
        warnings: tuple[str, ...] = (),
        files: tuple[str, ...] = (),
        heartbeats: tuple[Heartbeat, ...] = (),
        maintenance: tuple[Window, ...] = (),
    ) -> None:
        self.severities = severities
        self.tiers = tiers
        self.policies = policies
        self.rules = rules
        self.business_hours = business_hours
        self.timezone = timezone
        self.runbook_base_url = runbook_base_url
        self.group_by = group_by
        self.default_severity = default_severity
        # When a tier's pages fold into a storm page (router/incidents/storms.py).
        self.storm = storm or StormSettings()
        self.warnings = warnings
        self.files = files
        self.heartbeats = {heartbeat.name: heartbeat for heartbeat in heartbeats}
        # The maintenance windows the rules declare (those made at run time are in the store).
        self.maintenance = maintenance
        self._ranks = {level.name: index for index, level in enumerate(severities)}
        self._rules_by_name = {rule.name: rule for rule in rules}
        self._levels = {level.name: level for level in severities}
        self._aliases: dict[str, str] = {}
        for level in severities:
            self._aliases[level.name.casefold()] = level.name
            for alias in level.aliases:
                self._aliases[alias.casefold()] = level.name
        self._build_index()
        # The labels that decide an alert's classification. Any other label can only be one of
        # the deciding rule's `group_by`, read for the incident key (`group_values`).
        self.deciding_labels = frozenset(
            {"alertname", "severity", VALUE_LABEL}
            | {matcher.name for rule in rules for matcher in rule.matchers}
        )

    # --- severities and policies ------------------------------------------------------------

    def rank(self, severity: str) -> int:
        """0 for the most severe; KeyError for an unknown severity."""
        return self._ranks[severity]

    def severity_level(self, severity: str) -> SeverityLevel:
        return self._levels[severity]

    def severity_for_label(self, value: str) -> str | None:
        """The severity an alert's `severity` label means (name or alias, any case), or None."""
        return self._aliases.get(value.casefold())

    def hours_for(self, severity: str) -> BusinessHours | None:
        """The business hours pages of `severity` wait for; None when they page at any time."""
        return self.business_hours if self._levels[severity].hours == "business" else None

    def severity_policy(self, policy: str, severity: str) -> SeverityPolicy:
        """The escalation of `severity` under `policy` (loading made sure that it exists)."""
        return self.policies[policy].by_severity[severity]

    def damping(self, rule: str | None, severity: str) -> Damping:
        """The flap damping of incidents of `rule` at `severity`: the rule's settings, each one it
        does not give from the severity's (docs/rules.md, "Flap damping"). A rule or severity the
        rules no longer have (a reload) gives what is left."""
        level = self._levels.get(severity)
        fallback = level.damping if level is not None else NO_DAMPING
        found = self._rules_by_name.get(rule) if rule is not None else None
        return found.damping.over(fallback) if found is not None else fallback

    def plan(self, classification: Classification, opened_at: datetime) -> list[PlannedStep]:
        """The pages of an incident classified so, opened at `opened_at`, if nobody acknowledges
        and it keeps firing (after its pending period, if any)."""
        return plan_timeline(
            self.severity_policy(classification.policy, classification.severity),
            self.hours_for(classification.severity),
            opened_at,
            classification.severity,
            self.damping(classification.rule, classification.severity),
        )

    def heartbeat_for(self, alert: Alert) -> Heartbeat | None:
        """The heartbeat that `alert` beats when it fires (it opens no incident then), or None."""
        return heartbeat_for(self.heartbeats.values(), alert) if self.heartbeats else None

    # --- classification ---------------------------------------------------------------------

    def classify(self, alert: Alert) -> Classification:
        """Classify one alert as docs/rules.md says; never raises for any alert."""
        labels = alert.labels
        # The values (per Grafana ref a rule names) and the case-folded text are found once, and
        # only if a rule needs them.
        values: dict[str | None, AlertValue | None] = {}
        folded: dict[str, str] | None = None
        holding: list[tuple[_CompiledRule, str]] = []
        not_holding: list[tuple[int, str]] = []
        for compiled in self._candidates(labels):
            for name, test in compiled.residual:
                if not test(labels.get(name, "")):
                    break
            else:  # every matcher held: now the text and value conditions
                rule = compiled.rule
                words = [compiled.matcher_words] if compiled.matcher_words else []
                if rule.text is not None:
                    if folded is None:
                        folded = _folded_text(alert.annotations)
                    found_in = rule.text.find(alert.annotations, folded)
                    if found_in is None:
                        continue
                    words.append(rule.text.describe(found_in))
                if rule.value is not None:
                    ref = rule.value.ref
                    if ref not in values:
                        values[ref] = alert_value(alert, ref)
                    holds, phrase = rule.value.evaluate(values[ref])
                    if not holds:
                        not_holding.append((compiled.position, f"{rule.name} ({phrase})"))
                        continue
                    words.append(phrase)
                holding.append((compiled, " and ".join(words)))
        holding.sort(key=lambda item: item[0].position)
        missed = [phrase for _, phrase in sorted(not_holding)]

        if holding:
            decider, why = min(holding, key=lambda item: (item[0].rank, item[0].position))
            rule = decider.rule
            others = [f"{c.rule.name} ({c.rule.severity})" for c, _ in holding if c is not decider]
            reason = f"{rule.severity} by rule {rule.name} ({why})"
            if others:
                reason += f"; also matched: {', '.join(others)}"
            if missed:
                reason += f"; did not hold: {', '.join(missed)}"
            group_by = rule.group_by if rule.group_by is not None else self.group_by
            return self._classification(
                alert,
                severity=rule.severity,
                rule=rule,
                matched=tuple(c.rule.name for c, _ in holding),
                key_base=rule.name,
                group_by=group_by,
                reason=reason,
            )

        label = labels.get("severity", "")
        mapped = self.severity_for_label(label) if label else None
        if mapped is not None:
            how = "its name" if mapped.casefold() == label.casefold() else f"an alias of {mapped}"
            reason = f'{mapped} from the label severity="{label}" ({how}); no rule matched'
            key_base = "severity-label"
        else:
            mapped = self.default_severity
            if label:
                why = f'its severity label "{label}" is no known severity or alias'
            else:
                why = "it has no severity label"
            reason = f"{mapped} by default_severity; no rule matched and {why}"
            key_base = "default"
        if missed:
            reason += f"; did not hold: {', '.join(missed)}"
        return self._classification(
            alert,
            severity=mapped,
            rule=None,
            matched=(),
            key_base=key_base,
            group_by=self.group_by,
            reason=reason,
        )

    def _classification(
        self,
        alert: Alert,
        *,
        severity: str,
        rule: Rule | None,
        matched: tuple[str, ...],
        key_base: str,
        group_by: tuple[str, ...],
        reason: str,
    ) -> Classification:
        group_values = {name: alert.labels.get(name, "") for name in group_by}
        return Classification(
            severity=severity,
            rule=rule.name if rule else None,
            matched_rules=matched,
            policy=rule.policy if rule else DEFAULT_POLICY,
            incident_key=incident_key(key_base, group_values),
            group_values=group_values,
            reason=reason,
            runbook=rule.runbook if rule else None,
        )

    # --- the rule index ------------------------------------------------------------------------

    def _build_index(self) -> None:
        # label name -> label value -> rules whose index matcher is that equality.
        self._by_label: dict[str, dict[str, list[_CompiledRule]]] = {}
        self._by_name_regex: list[tuple[Matcher, _CompiledRule]] = []
        self._unindexed: list[_CompiledRule] = []
        self._regex_cache: dict[str, list[_CompiledRule]] = {}
        for position, rule in enumerate(self.rules):
            index_matcher = _index_matcher(rule.matchers)
            compiled = _CompiledRule(
                rule=rule,
                position=position,
                rank=self._ranks[rule.severity],
                residual=tuple((m.name, m.test) for m in rule.matchers if m is not index_matcher),
                matcher_words=" and ".join(str(m) for m in rule.matchers),
            )
            if index_matcher is None:
                self._unindexed.append(compiled)
            elif index_matcher.type is MatchType.EQUAL:
                by_value = self._by_label.setdefault(index_matcher.name, {})
                by_value.setdefault(index_matcher.value, []).append(compiled)
            else:
                self._by_name_regex.append((index_matcher, compiled))
        # Every rule's alert-name regex in one RE2 set: one pass over a new alert name.
        self._name_regexes = compile_set([matcher.value for matcher, _ in self._by_name_regex])

    def _candidates(self, labels: Mapping[str, str]) -> list[_CompiledRule]:
        """The rules whose index matcher holds for `labels`, and those without one."""
        found: list[_CompiledRule] = []
        for label, by_value in self._by_label.items():
            rules = by_value.get(labels.get(label, ""))
            if rules:
                found += rules
        if self._by_name_regex:
            found += self._name_regex_candidates(labels.get("alertname", ""))
        found += self._unindexed
        return found

    def _name_regex_candidates(self, name: str) -> list[_CompiledRule]:
        cached = self._regex_cache.get(name)
        if cached is None:
            cached = [self._by_name_regex[index][1] for index in self._name_regexes(name)]
            if len(self._regex_cache) >= _REGEX_CACHE_SIZE:
                self._regex_cache.clear()
            self._regex_cache[name] = cached
        return cached


def _folded_text(annotations: Mapping[str, str]) -> dict[str, str]:
    return {name: annotations[name].casefold() for name in TEXT_FIELDS if annotations.get(name)}


def _index_matcher(matchers: tuple[Matcher, ...]) -> Matcher | None:
    """The matcher a rule is indexed by: an `alertname=` equality, else any other equality (a dict
    look-up each), else an `alertname=~` regex (matched once per alert name); else None."""
    equalities = [m for m in matchers if m.type is MatchType.EQUAL]
    for matcher in equalities:
        if matcher.name == "alertname":
            return matcher
    if equalities:
        return equalities[0]
    for matcher in matchers:
        if matcher.name == "alertname" and matcher.type is MatchType.REGEX:
            return matcher
    return None


def incident_key(base: str, group_values: Mapping[str, str]) -> str:
    """`base|label=value|...`; longer than MAX_INCIDENT_KEY, the tail is replaced by its hash."""
    key = "|".join([base, *(f"{name}={value}" for name, value in group_values.items())])
    if len(key) <= MAX_INCIDENT_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{key[: MAX_INCIDENT_KEY - len(digest) - 1]}~{digest}"
