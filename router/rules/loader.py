"""Loading and strict checking of a rules directory.

Every `*.yaml` file of the directory is read in file-name order. `rules:` lists concatenate;
`severities`, `tiers` and `policies` merge, and a name defined twice is an error naming both places;
the scalar keys (`timezone`, `business_hours`, `runbook_base_url`, `group_by`, `default_severity`)
may be set once. Every problem is reported as `file:line: message`, all of them in one run:
unknown keys, wrong types, unknown tiers, severities and policies, bad durations, matchers and
conditions, policies that miss a severity their rules produce, duplicate names, runbook references
of the wrong form or to missing files.

Tier channels: a tier's PagerDuty routing key or Apprise URL that is empty after interpolation is
dropped; a tier left with no channel pages to the log, with a warning.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Literal, TypeVar

from router.errors import ConfigError, MatcherError
from router.incidents.schedule import WEEKDAYS, BusinessHours, parse_duration
from router.rules import schema
from router.rules.conditions import TextCondition, ValueCondition
from router.rules.matchers import Matcher, parse_matchers
from router.rules.model import (
    DEFAULT_POLICY,
    ChannelTarget,
    Policy,
    Rule,
    RuleSet,
    SeverityLevel,
    SeverityPolicy,
    Step,
    Tier,
)
from router.rules.source import Node, Problem, Problems, Where, read_yaml

RULES_FILE_PATTERN = "*.yaml"
RUNBOOKS_DIR = "runbooks"

# The keys each part of a rules file may hold: those of its JSON Schema (rules/schema.py).
SCALAR_KEYS = tuple(schema.SCALARS)
SECTION_KEYS = tuple(schema.SECTIONS)
TOP_LEVEL_KEYS = tuple(schema.TOP_LEVEL)
BUSINESS_HOURS_KEYS = tuple(schema.BUSINESS_HOURS)
SEVERITY_KEYS = tuple(schema.SEVERITY)
TIER_KEYS = tuple(schema.TIER)
PAGERDUTY_KEYS = tuple(schema.PAGERDUTY)
SEVERITY_POLICY_KEYS = tuple(schema.SEVERITY_POLICY)
STEP_KEYS = tuple(schema.STEP)
RULE_KEYS = tuple(schema.RULE)

DEFAULT_TIMEZONE = "UTC"
DEFAULT_BUSINESS_DAYS = WEEKDAYS[:5]
DEFAULT_BUSINESS_START = time(9, 0)
DEFAULT_BUSINESS_END = time(18, 0)
DEFAULT_GROUP_BY = ("alertname",)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NAME_RULE = "must start with a letter or digit and hold only letters, digits and _ . -"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_CLOCK = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_RUNBOOK_REFERENCE = re.compile(r"^(?P<file>[^#\s]+\.md)(?:#(?P<anchor>[^#\s]+))?$")
_SECTION_WORDS = {"severities": "severity", "tiers": "tier", "policies": "policy"}

C = TypeVar("C")


@dataclass
class CheckReport:
    """What `check` found: the rule set when it loads, every error and warning as
    `file:line: message`, and `lines`, the report as printed (both kinds, in file and line order,
    warnings marked `warning:`)."""

    ruleset: RuleSet | None
    errors: list[str]
    warnings: list[str]
    lines: list[str] = field(default_factory=list)

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
        errors=errors,
        warnings=[str(p) for p in problems if p.level == "warning"],
        lines=[p.report_line() for p in problems],
    )


def split_runbook_reference(reference: str) -> tuple[str, str | None]:
    """`zkp-ledger.md#invalid-proofs` as (`zkp-ledger.md`, `invalid-proofs`); ValueError if bad."""
    match = _RUNBOOK_REFERENCE.match(reference)
    if match is None:
        raise ValueError(f'"{reference}" is not FILE.md or FILE.md#anchor')
    return match.group("file"), match.group("anchor")


def rules_files(rules_dir: Path) -> list[Path]:
    """The rules files of `rules_dir` in reading order (or `rules_dir` itself when a file)."""
    if rules_dir.is_file():
        return [rules_dir]
    return sorted(p for p in rules_dir.glob(RULES_FILE_PATTERN) if p.is_file())


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


@dataclass
class _Merged:
    """The top level of every file, merged: each value with the place of its key."""

    scalars: dict[str, tuple[Node, Where]] = field(default_factory=dict)
    sections: dict[str, dict[str, tuple[Node, Where]]] = field(
        default_factory=lambda: {key: {} for key in SECTION_KEYS}
    )
    # Each rule with its index in its own file, for messages about rules without a usable name.
    rules: list[tuple[Node, int]] = field(default_factory=list)


def _describe(node: Node) -> str:
    value = node.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f'"{value}"'


def _at(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def _suggest(word: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f'did you mean "{close[0]}"?'
    return f"known: {', '.join(known)}" if known else "none are defined"


class _Builder:
    """Turns merged Nodes into a RuleSet, recording every problem on the way."""

    def __init__(self, problems: Problems, runbooks_dir: Path | None) -> None:
        self.problems = problems
        self.runbooks_dir = runbooks_dir
        # Severities each policy names, valid or not.
        self.declared: dict[str, set[str]] = {}

    def error(self, where: Where, path: str, message: str) -> None:
        self.problems.error(where, _at(path, message))

    # --- typed access -----------------------------------------------------------------------

    def mapping(self, node: Node, path: str, what: str = "a mapping") -> dict[str, Node] | None:
        if isinstance(node.value, dict):
            return node.value
        self.error(node.where, path, f"must be {what}, got {_describe(node)}")
        return None

    def known_keys(self, node: Node, allowed: tuple[str, ...], path: str) -> None:
        assert isinstance(node.value, dict)
        for key in node.value:
            if key not in allowed:
                self.error(
                    node.key_where(key), path, f'unknown key "{key}" ({_suggest(key, allowed)})'
                )

    def string(self, node: Node, path: str, *, empty_ok: bool = False) -> str | None:
        if not isinstance(node.value, str):
            self.error(node.where, path, f"must be a string, got {_describe(node)}")
            return None
        if not empty_ok and not node.value.strip():
            self.error(node.where, path, "must not be empty")
            return None
        return node.value

    def name(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is not None and not _NAME.match(text):
            self.error(node.where, path, f'"{text}" {NAME_RULE}')
            return None
        return text

    def items(self, node: Node, path: str) -> list[Node] | None:
        if isinstance(node.value, list):
            return node.value
        self.error(node.where, path, f"must be a list, got {_describe(node)}")
        return None

    def strings(self, node: Node, path: str) -> list[tuple[str, Node]]:
        found = []
        for index, item in enumerate(self.items(node, path) or []):
            text = self.string(item, f"{path}[{index}]", empty_ok=True)
            if text is not None:
                found.append((text, item))
        return found

    def label_names(self, node: Node, path: str) -> tuple[str, ...] | None:
        if self.items(node, path) is None:
            return None
        names = []
        for text, item in self.strings(node, path):
            if _LABEL_NAME.match(text):
                names.append(text)
            else:
                self.error(item.where, path, f'"{text}" is not a label name')
        return tuple(names)

    def duration(self, node: Node, path: str) -> timedelta | None:
        if not isinstance(node.value, str):
            self.error(node.where, path, f"must be a duration such as 5m, got {_describe(node)}")
            return None
        try:
            value = parse_duration(node.value)
        except ValueError as exc:
            self.error(node.where, path, str(exc))
            return None
        if value <= timedelta(0):
            self.error(node.where, path, "must be longer than 0")
            return None
        return value

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
        tiers = self.tiers(merged.sections["tiers"])
        policies = self.policies(merged.sections["policies"], known_severities, tiers)
        self.default_policy(merged, severities, Where(first_file, 0))
        rules = self.rules(merged.rules, known_severities, policies)
        if not severities:
            return None
        return RuleSet(
            severities=tuple(severities),
            tiers=tiers,
            policies=policies,
            rules=tuple(rules),
            business_hours=business_hours,
            timezone=timezone_name,
            runbook_base_url=runbook_base_url,
            group_by=group_by,
            default_severity=default_severity or severities[-1].name,
            warnings=tuple(str(p) for p in self.problems.warnings),
            files=tuple(file for file, _ in documents),
        )

    def merge(self, documents: list[tuple[str, Node | None]]) -> _Merged:
        merged = _Merged()
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
        return merged

    def merge_section(self, key: str, node: Node, into: dict[str, tuple[Node, Where]]) -> None:
        word = _SECTION_WORDS[key]
        entries = self.mapping(node, key, f"a mapping of {word} names to their settings")
        for name, entry in (entries or {}).items():
            where = node.key_where(name)
            if not _NAME.match(name):
                self.error(where, f'{word} "{name}"', f"the name {NAME_RULE}")
            elif name in into:
                self.error(where, "", f'{word} "{name}" is already defined at {into[name][1]}')
            else:
                into[name] = (entry, where)

    # --- severities, time ----------------------------------------------------------------------

    def severities(self, merged: _Merged, nowhere: Where) -> list[SeverityLevel]:
        entries = merged.sections["severities"]
        if not entries:
            self.error(nowhere, "", "no severities defined; add severities: (most severe first)")
        levels = []
        alias_places: dict[str, tuple[str, Where]] = {}
        for name, (node, where) in entries.items():
            path = f"severity {name}"
            aliases: list[str] = []
            hours: Literal["always", "business"] = "always"
            settings = {} if node.value is None else self.mapping(node, path)
            if settings:
                self.known_keys(node, SEVERITY_KEYS, path)
                if "aliases" in settings:
                    aliases = [a for a, _ in self.strings(settings["aliases"], f"{path}: aliases")]
                if "hours" in settings:
                    hours_node = settings["hours"]
                    if hours_node.value == "business":
                        hours = "business"
                    elif hours_node.value != "always":
                        self.error(
                            hours_node.where,
                            f"{path}: hours",
                            f"must be always or business, got {_describe(hours_node)}",
                        )
            for word in [name, *aliases]:
                folded = word.casefold()
                if folded in alias_places and alias_places[folded][0] != name:
                    other, other_where = alias_places[folded]
                    self.error(
                        where,
                        path,
                        f'"{word}" already means {other} (at {other_where})',
                    )
                alias_places.setdefault(folded, (name, where))
            levels.append(SeverityLevel(name, tuple(aliases), hours))
        return levels

    def default_severity(
        self, entry: tuple[Node, Where] | None, severities: list[SeverityLevel]
    ) -> str | None:
        if entry is None:
            return None
        node = entry[0]
        name = self.string(node, "default_severity")
        known = [level.name for level in severities]
        if name is not None and name not in known:
            self.error(
                node.where,
                "default_severity",
                f'unknown severity "{name}" ({_suggest(name, known)})',
            )
            return None
        return name

    def timezone(self, entry: tuple[Node, Where] | None) -> tuple[str, zoneinfo.ZoneInfo]:
        utc = (DEFAULT_TIMEZONE, zoneinfo.ZoneInfo(DEFAULT_TIMEZONE))
        if entry is None:
            return utc
        node = entry[0]
        name = self.string(node, "timezone")
        if name is None:
            return utc
        try:
            return name, zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            self.error(
                node.where, "timezone", f'unknown time zone "{name}" (e.g. UTC, Europe/Berlin)'
            )
            return utc

    def business_hours(
        self, entry: tuple[Node, Where] | None, zone: zoneinfo.ZoneInfo
    ) -> BusinessHours:
        default = BusinessHours.from_names(
            DEFAULT_BUSINESS_DAYS, DEFAULT_BUSINESS_START, DEFAULT_BUSINESS_END, zone
        )
        if entry is None:
            return default
        node = entry[0]
        settings = self.mapping(node, "business_hours")
        if settings is None:
            return default
        self.known_keys(node, BUSINESS_HOURS_KEYS, "business_hours")
        days: list[str] = list(DEFAULT_BUSINESS_DAYS)
        if "days" in settings:
            days = []
            for index, (day, item) in enumerate(
                self.strings(settings["days"], "business_hours: days")
            ):
                if day.lower() in WEEKDAYS:
                    days.append(day.lower())
                else:
                    self.error(
                        item.where,
                        f"business_hours: days[{index}]",
                        f'unknown day "{day}" ({_suggest(day.lower(), WEEKDAYS)})',
                    )
        start = self.clock(settings.get("start"), "business_hours: start", DEFAULT_BUSINESS_START)
        end = self.clock(settings.get("end"), "business_hours: end", DEFAULT_BUSINESS_END)
        if not days:
            self.error(node.where, "business_hours: days", "must name at least one day")
            return default
        if end <= start:
            self.error(
                node.where, "business_hours", f"end {end:%H:%M} must be after start {start:%H:%M}"
            )
            return default
        return BusinessHours.from_names(days, start, end, zone)

    def clock(self, node: Node | None, path: str, default: time) -> time:
        if node is None:
            return default
        # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080: use the text as written.
        text = node.raw if isinstance(node.value, int) and node.raw else node.value
        match = _CLOCK.match(text) if isinstance(text, str) else None
        if match is None:
            self.error(node.where, path, f'must be a time of day "HH:MM", got {_describe(node)}')
            return default
        return time(int(match.group(1)), int(match.group(2)))

    def runbook_base_url(self, entry: tuple[Node, Where] | None) -> str:
        if entry is None:
            return ""
        node = entry[0]
        url = self.string(node, "runbook_base_url", empty_ok=True)
        if not url:
            return ""
        if not url.startswith(("http://", "https://")):
            self.error(node.where, "runbook_base_url", f'"{url}" is not an http:// or https:// URL')
            return ""
        # It is a prefix: the runbook file name is appended to it.
        return url if url.endswith("/") else url + "/"

    # --- tiers ---------------------------------------------------------------------------------

    def tiers(self, entries: dict[str, tuple[Node, Where]]) -> dict[str, Tier]:
        tiers = {}
        for name, (node, where) in entries.items():
            path = f"tier {name}"
            settings = self.mapping(node, path)
            if settings is None:
                continue
            errors_before = len(self.problems.errors)
            self.known_keys(node, TIER_KEYS, path)
            channels: list[ChannelTarget] = []
            configured = 0
            if "pagerduty" in settings:
                configured += 1
                channels += self.pagerduty(settings["pagerduty"], f"{path}: pagerduty")
            if "apprise" in settings:
                urls = self.strings(settings["apprise"], f"{path}: apprise")
                configured += len(urls)
                channels += self.apprise(urls, f"{path}: apprise")
            log_node = settings.get("log")
            if log_node is not None:
                if not isinstance(log_node.value, bool):
                    self.error(
                        log_node.where,
                        f"{path}: log",
                        f"must be true or false, got {_describe(log_node)}",
                    )
                elif log_node.value:
                    configured += 1
                    channels.append(ChannelTarget("log", "", "log"))
            fallback = not channels
            if fallback:
                channels.append(ChannelTarget("log", "", "log"))
            if fallback and len(self.problems.errors) == errors_before:
                # A tier with a mistake of its own is reported for that mistake alone.
                reason = (
                    "its routing keys and URLs are empty or unset"
                    if configured
                    else "it names no channel"
                )
                self.problems.warning(
                    where, f"tier {name} has no channel left ({reason}); its pages go to the log"
                )
            tiers[name] = Tier(name, tuple(channels), falls_back_to_log=fallback)
        return tiers

    def pagerduty(self, node: Node, path: str) -> list[ChannelTarget]:
        settings = self.mapping(node, path, "a mapping with routing_key")
        if settings is None:
            return []
        self.known_keys(node, PAGERDUTY_KEYS, path)
        key_node = settings.get("routing_key")
        if key_node is None:
            self.error(node.where, path, "routing_key is missing")
            return []
        key = self.string(key_node, f"{path}: routing_key", empty_ok=True)
        if not key or not key.strip():
            return []
        return [ChannelTarget("pagerduty", key.strip(), "pagerduty")]

    def apprise(self, urls: list[tuple[str, Node]], path: str) -> list[ChannelTarget]:
        channels = []
        for index, (url, item) in enumerate(urls):
            url = url.strip()
            if not url:
                continue
            scheme, separator, _rest = url.partition("://")
            if not separator or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", scheme):
                # The URL is not printed: it may hold a token.
                self.error(item.where, f"{path}[{index}]", "not an Apprise URL (SCHEME://...)")
                continue
            channels.append(ChannelTarget("apprise", url, f"apprise:{scheme.lower()}"))
        return channels

    # --- policies --------------------------------------------------------------------------------

    def policies(
        self,
        entries: dict[str, tuple[Node, Where]],
        severities: set[str],
        tiers: Mapping[str, Tier],
    ) -> dict[str, Policy]:
        policies = {}
        for name, (node, _where) in entries.items():
            path = f"policy {name}"
            if isinstance(node.value, dict):
                # Rules are checked against what the policy names, even where its steps are bad,
                # so that one mistake is reported once.
                self.declared[name] = set(node.value)
            settings = self.mapping(node, path, "a mapping of severities to their escalation")
            if settings is None:
                continue
            by_severity = {}
            for severity, severity_node in settings.items():
                severity_path = f"{path}: {severity}"
                if severity not in severities:
                    self.error(
                        node.key_where(severity),
                        path,
                        f'unknown severity "{severity}" ({_suggest(severity, sorted(severities))})',
                    )
                    continue
                built = self.severity_policy(severity_node, severity_path, tiers)
                if built is not None:
                    by_severity[severity] = built
            policies[name] = Policy(name, by_severity)
        return policies

    def severity_policy(
        self, node: Node, path: str, tiers: Mapping[str, Tier]
    ) -> SeverityPolicy | None:
        settings = self.mapping(node, path, "a mapping with steps:")
        if settings is None:
            return None
        self.known_keys(node, SEVERITY_POLICY_KEYS, path)
        errors_before = len(self.problems.errors)
        steps_node = settings.get("steps")
        if steps_node is None:
            self.error(node.where, path, "steps: is missing")
            return None
        step_nodes = self.items(steps_node, f"{path}: steps")
        if step_nodes is None:
            return None
        if not step_nodes:
            self.error(steps_node.where, f"{path}: steps", "must list at least one step")
            return None
        steps = []
        for index, step_node in enumerate(step_nodes):
            step = self.step(step_node, f"{path}: steps[{index}]", tiers)
            if step is None:
                continue
            if step.ack_within is None and index < len(step_nodes) - 1:
                self.error(
                    step_node.where,
                    f"{path}: steps[{index}]",
                    "ack_within is needed on every step but the last (it says when the next "
                    "step is paged)",
                )
            steps.append(step)
        repeat = 0
        if "repeat" in settings:
            repeat_node = settings["repeat"]
            value = repeat_node.value
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.error(
                    repeat_node.where,
                    f"{path}: repeat",
                    f"must be a whole number 0 or more, got {_describe(repeat_node)}",
                )
            else:
                repeat = value
                if steps and steps[-1].ack_within is None and repeat:
                    self.error(
                        repeat_node.where,
                        f"{path}: repeat",
                        "the last step needs ack_within to be repeated",
                    )
        ack_expires = None
        if "ack_expires" in settings:
            ack_expires = self.duration(settings["ack_expires"], f"{path}: ack_expires")
        if len(self.problems.errors) > errors_before:
            return None
        return SeverityPolicy(tuple(steps), repeat, ack_expires)

    def step(self, node: Node, path: str, tiers: Mapping[str, Tier]) -> Step | None:
        settings = self.mapping(node, path, "a mapping with notify: and ack_within:")
        if settings is None:
            return None
        self.known_keys(node, STEP_KEYS, path)
        notify_node = settings.get("notify")
        if notify_node is None:
            self.error(node.where, path, "notify: is missing (the tiers to page)")
            return None
        errors_before = len(self.problems.errors)
        names = self.strings(notify_node, f"{path}: notify")
        if notify_node.value == []:
            self.error(notify_node.where, f"{path}: notify", "must name at least one tier")
        for tier, item in names:
            if tier not in tiers:
                self.error(
                    item.where,
                    f"{path}: notify",
                    f'unknown tier "{tier}" ({_suggest(tier, tiers)})',
                )
        ack_within = None
        if "ack_within" in settings:
            ack_within = self.duration(settings["ack_within"], f"{path}: ack_within")
        if len(self.problems.errors) > errors_before:
            return None
        return Step(tuple(tier for tier, _ in names), ack_within)

    def default_policy(
        self, merged: _Merged, severities: list[SeverityLevel], nowhere: Where
    ) -> None:
        entry = merged.sections["policies"].get(DEFAULT_POLICY)
        if entry is None:
            self.error(
                nowhere,
                "",
                f'no "{DEFAULT_POLICY}" policy; alerts that no rule classifies, and rules that '
                "name no policy, use it",
            )
            return
        declared = self.declared.get(DEFAULT_POLICY)
        if declared is None:
            return  # not a mapping: reported already
        for level in severities:
            if level.name not in declared:
                self.error(
                    entry[1],
                    f"policy {DEFAULT_POLICY}",
                    f"has no {level.name}; it must cover every severity, since alerts that no "
                    "rule classifies may get any",
                )

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

        severity = None
        severity_node = settings.get("severity")
        if severity_node is None:
            self.error(node.where, path, "severity: is missing")
        else:
            severity = self.string(severity_node, f"{path}: severity")
            if severity is not None and severity not in severities:
                self.error(
                    severity_node.where,
                    f"{path}: severity",
                    f'unknown severity "{severity}" ({_suggest(severity, sorted(severities))})',
                )

        policy = DEFAULT_POLICY
        policy_node = settings.get("policy")
        if policy_node is not None:
            policy = self.string(policy_node, f"{path}: policy") or DEFAULT_POLICY
            if policy not in policies:
                self.error(
                    policy_node.where,
                    f"{path}: policy",
                    f'unknown policy "{policy}" ({_suggest(policy, policies)})',
                )
            elif severity in severities and severity not in self.declared.get(policy, set()):
                self.error(
                    policy_node.where,
                    f"{path}: policy",
                    f"policy {policy} has no {severity} steps, and this rule gives {severity}",
                )

        matchers = self.matchers(settings.get("matchers"), f"{path}: matchers")
        text = self.condition(settings.get("text"), f"{path}: text", TextCondition.parse)
        value = self.condition(settings.get("value"), f"{path}: value", ValueCondition.parse)
        if not any(key in settings for key in ("matchers", "text", "value")):
            self.error(node.where, path, "no condition; give matchers, text or value")

        runbook = None
        if "runbook" in settings:
            runbook = self.runbook(settings["runbook"], f"{path}: runbook")
        group_by = None
        if "group_by" in settings:
            group_by = self.label_names(settings["group_by"], f"{path}: group_by")

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
        )

    def matchers(self, node: Node | None, path: str) -> list[Matcher]:
        if node is None:
            return []
        found: list[Matcher] = []
        entries = self.strings(node, path)
        if not entries and isinstance(node.value, list):
            self.error(node.where, path, "must list at least one matcher")
        for index, (text, item) in enumerate(entries):
            try:
                found += parse_matchers(text)
            except MatcherError as exc:
                self.error(item.where, f"{path}[{index}]", str(exc))
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
