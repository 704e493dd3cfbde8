"""The rules engine: loading and checking rules files, and classifying alerts with them.

    load_rules(rules_dir, env, *, strict_secrets) -> RuleSet      (ConfigError with every problem)
    check_rules(rules_dir, env) -> CheckReport                    (what `runbook-router check` says)
    RuleSet.classify(alert) -> Classification

The modules: `source` reads YAML with line numbers and `${NAME}` secrets; `matchers` is
Alertmanager's matcher syntax; `conditions` the `text` and `value` conditions; `model` the loaded
objects and classification; `loader` the strict checks that build a RuleSet, with `reader` (typed
access to values and their places), `escalation_sections` and `rule_sections` (the two halves of a
rules file), `schema` (every key and its JSON Schema) and `drop` (whether a reload may drop most
of the rules in force).
"""

from router.errors import MatcherError
from router.rules.conditions import Quantity, TextCondition, ValueCondition, alert_value
from router.rules.loader import CheckReport, check_rules, load_rules, rules_files
from router.rules.matchers import Matcher, MatchType, parse_matcher, parse_matchers
from router.rules.model import (
    DEFAULT_POLICY,
    ChannelTarget,
    Classification,
    Policy,
    Rule,
    RuleSet,
    SeverityLevel,
    SeverityPolicy,
    Step,
    Tier,
    incident_key,
)
from router.rules.reader import split_runbook_reference

__all__ = [
    "DEFAULT_POLICY",
    "ChannelTarget",
    "CheckReport",
    "Classification",
    "MatchType",
    "Matcher",
    "MatcherError",
    "Policy",
    "Quantity",
    "Rule",
    "RuleSet",
    "SeverityLevel",
    "SeverityPolicy",
    "Step",
    "TextCondition",
    "Tier",
    "ValueCondition",
    "alert_value",
    "check_rules",
    "incident_key",
    "load_rules",
    "parse_matcher",
    "parse_matchers",
    "rules_files",
    "split_runbook_reference",
]
