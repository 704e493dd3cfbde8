"""Reading rules-file values with their places: the typed access every part of the loader uses.

`Reader.error` records a problem as `file:line: path: message`; `mapping`, `string`, `name`,
`items`, `strings`, `label_names`, `duration` and `clock` read one value or record why they cannot.
The constants here are the loader's: keys (from `schema.py`), defaults and name rules.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import TypeVar

from router.incidents.schedule import WEEKDAYS, parse_duration
from router.rules import schema
from router.rules.source import Node, Problems, Where

# Rules files: YAML, with either of the two suffixes people give it.
RULES_FILE_SUFFIXES = (".yaml", ".yml")
RULES_FILE_PATTERN = "*.yaml or *.yml"
RUNBOOKS_DIR = "runbooks"

# The keys each part of a rules file may hold: those of its JSON Schema (rules/schema.py).
SCALAR_KEYS = tuple(schema.SCALARS)
SECTION_KEYS = tuple(schema.SECTIONS)
TOP_LEVEL_KEYS = tuple(schema.TOP_LEVEL)
BUSINESS_HOURS_KEYS = tuple(schema.BUSINESS_HOURS)
STORM_KEYS = tuple(schema.STORM)
SEVERITY_KEYS = tuple(schema.SEVERITY)
TIER_KEYS = tuple(schema.TIER)
PAGERDUTY_KEYS = tuple(schema.PAGERDUTY)
SEVERITY_POLICY_KEYS = tuple(schema.SEVERITY_POLICY)
STEP_KEYS = tuple(schema.STEP)
RULE_KEYS = tuple(schema.RULE)
VALUE_KEYS = tuple(schema.VALUE)
HEARTBEAT_KEYS = tuple(schema.HEARTBEAT)
FLAPPING_KEYS = tuple(schema.FLAPPING)
MAINTENANCE_KEYS = tuple(schema.MAINTENANCE)
TIME_INTERVAL_KEYS = tuple(schema.TIME_INTERVAL)
TIME_RANGE_KEYS = tuple(schema.TIME_RANGE)

DEFAULT_TIMEZONE = "UTC"
DEFAULT_BUSINESS_DAYS = WEEKDAYS[:5]
DEFAULT_BUSINESS_START = time(9, 0)
DEFAULT_BUSINESS_END = time(18, 0)
DEFAULT_GROUP_BY = ("alertname",)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NAME_RULE = "must start with a letter or digit and hold only letters, digits and _ . -"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
CLOCK = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
RUNBOOK_REFERENCE = re.compile(r"^(?P<file>[^#\s]+\.md)(?:#(?P<anchor>[^#\s]+))?$")
SECTION_WORDS = {"severities": "severity", "tiers": "tier", "policies": "policy"}

C = TypeVar("C")


@dataclass
class Merged:
    """The top level of every file, merged: each value with the place of its key."""

    scalars: dict[str, tuple[Node, Where]] = field(default_factory=dict)
    sections: dict[str, dict[str, tuple[Node, Where]]] = field(
        default_factory=lambda: {key: {} for key in SECTION_KEYS}
    )
    # Each rule with its index in its own file, for messages about rules without a usable name.
    rules: list[tuple[Node, int]] = field(default_factory=list)
    heartbeats: list[tuple[Node, int]] = field(default_factory=list)
    # Each maintenance window with its index in its own file, likewise.
    maintenance: list[tuple[Node, int]] = field(default_factory=list)


def describe(node: Node) -> str:
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


def at(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def suggest(word: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f'did you mean "{close[0]}"?'
    return f"known: {', '.join(known)}" if known else "none are defined"


def split_runbook_reference(reference: str) -> tuple[str, str | None]:
    """`zkp-ledger.md#invalid-proofs` as (`zkp-ledger.md`, `invalid-proofs`); ValueError if bad."""
    match = RUNBOOK_REFERENCE.match(reference)
    if match is None:
        raise ValueError(f'"{reference}" is not FILE.md or FILE.md#anchor')
    return match.group("file"), match.group("anchor")


class Reader:
    """Typed access to rules-file values, recording every problem on the way."""

    def __init__(self, problems: Problems, runbooks_dir: Path | None) -> None:
        self.problems = problems
        self.runbooks_dir = runbooks_dir
        # Severities each policy names, valid or not.
        self.declared: dict[str, set[str]] = {}

    def error(self, where: Where, path: str, message: str) -> None:
        self.problems.error(where, at(path, message))

    # --- typed access -----------------------------------------------------------------------

    def mapping(self, node: Node, path: str, what: str = "a mapping") -> dict[str, Node] | None:
        if isinstance(node.value, dict):
            return node.value
        self.error(node.where, path, f"must be {what}, got {describe(node)}")
        return None

    def known_keys(self, node: Node, allowed: tuple[str, ...], path: str) -> None:
        assert isinstance(node.value, dict)
        for key in node.value:
            if key not in allowed:
                self.error(
                    node.key_where(key), path, f'unknown key "{key}" ({suggest(key, allowed)})'
                )

    def string(self, node: Node, path: str, *, empty_ok: bool = False) -> str | None:
        if not isinstance(node.value, str):
            self.error(node.where, path, f"must be a string, got {describe(node)}")
            return None
        if not empty_ok and not node.value.strip():
            self.error(node.where, path, "must not be empty")
            return None
        return node.value

    def name(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is not None and not NAME.match(text):
            self.error(node.where, path, f'"{text}" {NAME_RULE}')
            return None
        return text

    def items(self, node: Node, path: str) -> list[Node] | None:
        if isinstance(node.value, list):
            return node.value
        self.error(node.where, path, f"must be a list, got {describe(node)}")
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
            if LABEL_NAME.match(text):
                names.append(text)
            else:
                self.error(item.where, path, f'"{text}" is not a label name')
        return tuple(names)

    def duration(self, node: Node, path: str) -> timedelta | None:
        if not isinstance(node.value, str):
            self.error(node.where, path, f"must be a duration such as 5m, got {describe(node)}")
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

    def clock(self, node: Node | None, path: str, default: time) -> time:
        if node is None:
            return default
        # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080: use the text as written.
        text = node.raw if isinstance(node.value, int) and node.raw else node.value
        match = CLOCK.match(text) if isinstance(text, str) else None
        if match is None:
            self.error(node.where, path, f'must be a time of day "HH:MM", got {describe(node)}')
            return default
        return time(int(match.group(1)), int(match.group(2)))
