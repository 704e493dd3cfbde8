"""Loading the classification half of the rules: rules with matchers, conditions and runbooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from router.errors import MatcherError
from router.rules.conditions import TextCondition, ValueCondition, known_unit
from router.rules.damping_sections import DampingSections
from router.rules.matchers import Matcher, parse_matchers_checked
from router.rules.model import (
    DEFAULT_POLICY,
    Policy,
    Rule,
)
from router.rules.reader import (
    RULE_KEYS,
    RUNBOOKS_DIR,
    VALUE_KEYS,
    C,
    describe,
    split_runbook_reference,
    suggest,
)
from router.rules.source import Node, Where


class RuleSections(DampingSections):
    """`rules:`: each rule's name, matchers, `text` and `value` conditions, severity, policy,
    `group_by` and runbook reference, checked against the severities and policies."""

    # --- rules ---------------------------------------------------------------------------------

    def rules(
        self, nodes: list[tuple[Node, int]], severities: set[str], policies: Mapping[str, Policy]
    ) -> list[Rule]:
        rules = []
        seen: dict[str, Where] = {}
        for node, index in nodes:
            settings = self.mapping(node, f"rules[{index}]")
            if settings is None:
                continue
            name_node = settings.get("name")
            name = None
            if name_node is None:
                self.error(node.where, f"rules[{index}]", "name: is missing")
            else:
                name = self.name(name_node, f"rules[{index}]: name")
            path = f"rule {name}" if name else f"rules[{index}]"
            if name is not None:
                if name in seen:
                    assert name_node is not None
                    self.error(name_node.where, path, f"the name is already used at {seen[name]}")
                else:
                    seen[name] = node.where
            rule = self.rule(node, settings, path, name, severities, policies)
            if rule is not None:
                rules.append(rule)
        return rules

    def rule(
        self,
        node: Node,
        settings: dict[str, Node],
        path: str,
        name: str | None,
        severities: set[str],
        policies: Mapping[str, Policy],
    ) -> Rule | None:
        self.known_keys(node, RULE_KEYS, path)
        errors_before = len(self.problems.errors)

        severity = self.severity(settings.get("severity"), node.where, path, severities)

        policy = self.policy(settings.get("policy"), path, severity, severities, policies)

        matchers = self.matchers(settings.get("matchers"), f"{path}: matchers")
        text = self.condition(settings.get("text"), f"{path}: text", TextCondition.parse)
        value = self.value_condition(settings, path)
        if not any(key in settings for key in ("matchers", "text", "value")):
            self.error(node.where, path, "no condition; give matchers, text or value")

        runbook = None
        if "runbook" in settings:
            runbook = self.runbook(settings["runbook"], f"{path}: runbook")
        group_by = None
        if "group_by" in settings:
            group_by = self.label_names(settings["group_by"], f"{path}: group_by")
        damping = self.damping(settings, path)

        if name is None or severity is None or len(self.problems.errors) > errors_before:
            return None
        return Rule(
            name=name,
            severity=severity,
            policy=policy,
            runbook=runbook,
            group_by=group_by,
            source=str(node.where),
            matchers=tuple(matchers),
            text=text,
            value=value,
            damping=damping,
        )

    def policy(
        self,
        node: Node | None,
        path: str,
        severity: str | None,
        severities: set[str],
        policies: Mapping[str, Policy],
        kind: str = "rule",
    ) -> str:
        """The policy a rule (or heartbeat) names, `default` when none: it must exist and have
        steps for the severity given."""
        if node is None:
            return DEFAULT_POLICY
        policy = self.string(node, f"{path}: policy") or DEFAULT_POLICY
        if policy not in policies:
            self.error(
                node.where,
                f"{path}: policy",
                f'unknown policy "{policy}" ({suggest(policy, policies)})',
            )
        elif severity in severities and severity not in self.declared.get(policy, set()):
            self.error(
                node.where,
                f"{path}: policy",
                f"policy {policy} has no {severity} steps, and this {kind} gives {severity}",
            )
        return policy

    def severity(
        self, node: Node | None, where: Where, path: str, severities: set[str]
    ) -> str | None:
        """The severity a rule (or heartbeat) gives; it must be one of `severities`."""
        if node is None:
            self.error(where, path, "severity: is missing")
            return None
        severity = self.string(node, f"{path}: severity")
        if severity is not None and severity not in severities:
            self.error(
                node.where,
                f"{path}: severity",
                f'unknown severity "{severity}" ({suggest(severity, sorted(severities))})',
            )
        return severity

    def matchers(self, node: Node | None, path: str) -> list[Matcher]:
        if node is None:
            return []
        found: list[Matcher] = []
        entries = self.strings(node, path)
        if not entries and isinstance(node.value, list):
            self.error(node.where, path, "must list at least one matcher")
        for index, (text, item) in enumerate(entries):
            try:
                parsed = parse_matchers_checked(text)
            except MatcherError as exc:
                self.error(item.where, f"{path}[{index}]", str(exc))
                continue
            for warning in parsed.warnings:
                self.problems.warning(item.where, f"{path}[{index}]: {warning}")
            if not parsed.matchers:
                self.problems.warning(
                    item.where, f"{path}[{index}]: holds no matcher, so it holds for every alert"
                )
            found += parsed.matchers
        return found

    def condition(self, node: Node | None, path: str, parse: Callable[[str], C]) -> C | None:
        if node is None:
            return None
        text = self.string(node, path)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.error(node.where, path, str(exc))
            return None

    def value_condition(self, settings: dict[str, Node], path: str) -> ValueCondition | None:
        """`value: "> 10s"` or `value: {ref: A, op: ">", threshold: 10s}`, with the rule's `unit`;
        a warning when no value without a unit can ever compare with the threshold."""
        node = settings.get("value")
        unit_node = settings.get("unit")
        unit = None
        if unit_node is not None:
            if node is None:
                self.error(unit_node.where, f"{path}: unit", "is only read with value:")
                return None
            unit = self.string(unit_node, f"{path}: unit")
            try:
                unit = None if unit is None else known_unit(unit)
            except ValueError as exc:
                self.error(unit_node.where, f"{path}: unit", str(exc))
                return None
        if node is None:
            return None
        try:
            if isinstance(node.value, dict):
                condition = self.value_mapping(node, f"{path}: value", unit)
            else:
                text = self.string(node, f"{path}: value")
                condition = None if text is None else ValueCondition.parse(text, unit=unit)
        except ValueError as exc:
            self.error(node.where, f"{path}: value", str(exc))
            return None
        why_not = condition.never_compares() if condition is not None else None
        if why_not is not None:
            self.problems.warning(node.where, f"{path}: value: never holds: {why_not}")
        return condition

    def value_mapping(self, node: Node, path: str, unit: str | None) -> ValueCondition | None:
        self.known_keys(node, VALUE_KEYS, path)
        assert isinstance(node.value, dict)
        parts: dict[str, str] = {}
        for key in VALUE_KEYS:
            part = node.value.get(key)
            if part is None:
                self.error(node.where, path, f"{key}: is missing")
                continue
            # A YAML number (threshold: 10) is its text, as the short form reads it.
            text = part.raw if isinstance(part.value, int | float) and part.raw else part.value
            if not isinstance(text, str) or not text.strip():
                self.error(part.where, f"{path}: {key}", f"must be a string, got {describe(part)}")
                continue
            parts[key] = text.strip()
        if len(parts) < len(VALUE_KEYS):
            return None
        return ValueCondition.create(parts["op"], parts["threshold"], ref=parts["ref"], unit=unit)

    def runbook(self, node: Node, path: str) -> str | None:
        reference = self.string(node, path)
        if reference is None:
            return None
        try:
            file, anchor = split_runbook_reference(reference)
        except ValueError as exc:
            self.error(node.where, path, str(exc))
            return None
        if file.startswith("/") or ".." in Path(file).parts:
            self.error(node.where, path, f'"{file}" must be a path inside {RUNBOOKS_DIR}/')
            return None
        if anchor is not None and anchor != anchor.lower():
            self.error(
                node.where,
                path,
                f'anchor "{anchor}" must be the lowercase GitHub slug of the heading '
                f'(e.g. "{anchor.lower()}")',
            )
            return None
        # The runbooks may be written separately; files are checked only where they are present.
        if self.runbooks_dir is not None and not (self.runbooks_dir / file).is_file():
            self.error(node.where, path, f"no file {file} in {self.runbooks_dir}")
            return None
        return reference
