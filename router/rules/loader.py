"""Loading and strict checking of a rules directory.

Every `*.yaml` and `*.yml` file of the directory is read in file-name order. `rules:` and
`heartbeats:` lists concatenate; `severities`, `tiers` and `policies` merge, and a name defined
twice is an error naming both places; the scalar keys (`timezone`, `business_hours`,
`runbook_base_url`, `group_by`, `default_severity`, `storm`) may be set once. Every problem is
reported as `file:line: message`, all of them in one run: unknown keys, wrong types, unknown tiers,
severities and policies, bad durations, matchers and conditions, policies that miss a severity their
rules or heartbeats produce, duplicate names, runbook references of the wrong form or to missing
files.

Tier channels: a tier's PagerDuty routing key or Apprise URL that is empty after interpolation is
dropped; a tier left with no channel pages to the log, with a warning.

This module reads the files and merges them; the parts are built by `escalation_sections.py`
(severities, business hours, tiers, policies) and `rule_sections.py` (rules), on the typed
access of `reader.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from router.errors import ConfigError
from router.rules.escalation_sections import EscalationSections
from router.rules.heartbeat_sections import HeartbeatSections
from router.rules.maintenance_section import MaintenanceSection
from router.rules.model import (
    RuleSet,
)
from router.rules.reader import (
    DEFAULT_GROUP_BY,
    NAME,
    NAME_RULE,
    RULES_FILE_PATTERN,
    RULES_FILE_SUFFIXES,
    RUNBOOKS_DIR,
    SCALAR_KEYS,
    SECTION_KEYS,
    SECTION_WORDS,
    TOP_LEVEL_KEYS,
    Merged,
)
from router.rules.source import Node, Problem, Problems, Where, read_yaml
from router.rules.storm import StormSection


@dataclass
class CheckReport:
    """What `check` found: the rule set when it loads, every error and warning as
    `file:line: message`, and `lines`, the report as printed (both kinds, in file and line order,
    warnings marked `warning:`)."""

    ruleset: RuleSet | None
    errors: list[str]
    warnings: list[str]
    lines: list[str] = field(default_factory=list)
    # The rules that did load, even with errors elsewhere: their runbook references and channels
    # are checked too, so that one run reports every problem.
    partial: RuleSet | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def load_rules(rules_dir: Path, env: Mapping[str, str], *, strict_secrets: bool) -> RuleSet:
    """The rule set of `rules_dir` (a directory, or one rules file).

    Raises ConfigError whose `problems` are every error as `file:line: message`. With
    `strict_secrets` (the daemon) an unset `${NAME}` is an error; without it a warning, kept in
    `RuleSet.warnings`.
    """
    ruleset, problems = _load(rules_dir, env, strict_secrets=strict_secrets)
    errors = [str(p) for p in problems if p.level == "error"]
    if ruleset is None or errors:
        count = len(errors)
        raise ConfigError(
            f"rules in {rules_dir} are invalid: {count} error{'s' if count != 1 else ''}",
            tuple(errors),
        )
    return ruleset


def check_rules(rules_dir: Path, env: Mapping[str, str]) -> CheckReport:
    """Check `rules_dir` as `runbook-router check` does: unset variables are warnings."""
    ruleset, problems = _load(rules_dir, env, strict_secrets=False)
    errors = [str(p) for p in problems if p.level == "error"]
    return CheckReport(
        ruleset=None if errors else ruleset,
        partial=ruleset,
        errors=errors,
        warnings=[str(p) for p in problems if p.level == "warning"],
        lines=[p.report_line() for p in problems],
    )


def rules_files(rules_dir: Path) -> list[Path]:
    """The rules files of `rules_dir` in reading order (or `rules_dir` itself when a file)."""
    if rules_dir.is_file():
        return [rules_dir]
    return sorted(p for p in rules_dir.iterdir() if p.is_file() and p.suffix in RULES_FILE_SUFFIXES)


def _load(
    rules_dir: Path, env: Mapping[str, str], *, strict_secrets: bool
) -> tuple[RuleSet | None, list[Problem]]:
    problems = Problems()
    files = rules_files(rules_dir) if rules_dir.exists() else []
    if not rules_dir.exists():
        problems.error(Where(str(rules_dir), 0), "no such file or directory")
    elif not files:
        problems.error(Where(str(rules_dir), 0), f"no rules files ({RULES_FILE_PATTERN})")
    documents: list[tuple[str, Node | None]] = []
    for path in files:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.error(Where(name, 0), f"not UTF-8 text (byte {exc.start})")
            continue
        except OSError as exc:
            problems.error(Where(name, 0), f"cannot read: {exc.strerror}")
            continue
        root, missing = read_yaml(text, name, env, problems)
        for variable in missing:
            message = (
                f"environment variable {variable.name} is not set "
                f"(write ${{{variable.name}:-}} to make it optional)"
            )
            if strict_secrets:
                problems.error(variable.where, message)
            else:
                problems.warning(variable.where, message)
        documents.append((name, root))

    ruleset = None
    if files:
        runbooks_dir = (rules_dir if rules_dir.is_dir() else rules_dir.parent) / RUNBOOKS_DIR
        builder = _Builder(problems, runbooks_dir if runbooks_dir.is_dir() else None)
        ruleset = builder.build(documents, first_file=str(files[0]))
    order = {str(path): index for index, path in enumerate(files)}
    return ruleset, problems.sorted(order)


class _Builder(EscalationSections, HeartbeatSections, MaintenanceSection, StormSection):
    """Turns merged Nodes into a RuleSet, recording every problem on the way."""

    # --- the whole ---------------------------------------------------------------------------

    def build(self, documents: list[tuple[str, Node | None]], first_file: str) -> RuleSet | None:
        merged = self.merge(documents)
        severities = self.severities(merged, Where(first_file, 0))
        known_severities = {level.name for level in severities}
        scalars = merged.scalars
        default_severity = self.default_severity(scalars.get("default_severity"), severities)
        timezone_name, zone = self.timezone(scalars.get("timezone"))
        business_hours = self.business_hours(scalars.get("business_hours"), zone)
        runbook_base_url = self.runbook_base_url(scalars.get("runbook_base_url"))
        group_by: tuple[str, ...] = DEFAULT_GROUP_BY
        if "group_by" in scalars:
            group_by = self.label_names(scalars["group_by"][0], "group_by") or ()
        storm = self.storm(scalars.get("storm"))
        tiers = self.tiers(merged.sections["tiers"])
        policies = self.policies(merged.sections["policies"], known_severities, tiers)
        self.default_policy(merged, severities, Where(first_file, 0))
        rules = self.rules(merged.rules, known_severities, policies)
        heartbeats = self.heartbeats(merged.heartbeats, known_severities, policies)
        maintenance = self.maintenance(merged.maintenance)
        if not severities:
            return None
        default_severity = default_severity or severities[-1].name
        if not merged.rules and not self.problems.errors:
            # Valid, but every alert then falls to its severity label or the default: most
            # likely a file left empty or out of the directory. (With errors, those say more.)
            self.problems.warning(
                Where(first_file, 0),
                "no rules: every alert is classified by its severity label alone, else as "
                f"{default_severity} (default_severity)",
            )
        return RuleSet(
            severities=tuple(severities),
            tiers=tiers,
            policies=policies,
            rules=tuple(rules),
            heartbeats=heartbeats,
            business_hours=business_hours,
            timezone=timezone_name,
            runbook_base_url=runbook_base_url,
            group_by=group_by,
            default_severity=default_severity,
            storm=storm,
            warnings=tuple(str(p) for p in self.problems.warnings),
            files=tuple(file for file, _ in documents),
            maintenance=maintenance,
        )

    def merge(self, documents: list[tuple[str, Node | None]]) -> Merged:
        merged = Merged()
        for _file, root in documents:
            if root is None:
                continue
            top = self.mapping(root, "", "a mapping of keys such as rules:, tiers:, policies:")
            if top is None:
                continue
            self.known_keys(root, TOP_LEVEL_KEYS, "")
            for key, node in top.items():
                where = root.key_where(key)
                if key in SCALAR_KEYS:
                    if key in merged.scalars:
                        first = merged.scalars[key][1]
                        self.error(where, "", f"{key} is already set at {first}")
                    else:
                        merged.scalars[key] = (node, where)
                elif key in SECTION_KEYS:
                    self.merge_section(key, node, merged.sections[key])
                elif key == "rules":
                    merged.rules.extend(
                        (rule, index) for index, rule in enumerate(self.items(node, "rules") or [])
                    )
                elif key == "heartbeats":
                    entries = self.items(node, "heartbeats") or []
                    merged.heartbeats.extend((entry, index) for index, entry in enumerate(entries))
                elif key == "maintenance":
                    merged.maintenance.extend(
                        (window, index)
                        for index, window in enumerate(self.items(node, "maintenance") or [])
                    )
        return merged

    def merge_section(self, key: str, node: Node, into: dict[str, tuple[Node, Where]]) -> None:
        word = SECTION_WORDS[key]
        entries = self.mapping(node, key, f"a mapping of {word} names to their settings")
        for name, entry in (entries or {}).items():
            where = node.key_where(name)
            if not NAME.match(name):
                self.error(where, f'{word} "{name}"', f"the name {NAME_RULE}")
            elif name in into:
                self.error(where, "", f'{word} "{name}" is already defined at {into[name][1]}')
            else:
                into[name] = (entry, where)
