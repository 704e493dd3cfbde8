"""Reading rules files: YAML with the line of every value, `${NAME}` secrets, and problems.

A rules file becomes a tree of `Node`s. Each node knows where it was written (`file:line`), so
every problem found later can be reported as `file:line: message`. `Problems` collects them all,
errors and warnings, so that one run of `check` reports everything at once.

Secrets: in every string value, `${NAME}` is replaced by the environment variable NAME and
`${NAME:-default}` by NAME, or `default` when NAME is unset or empty (as in a shell). `$${` writes
a literal `${`. A variable that is unset and has no default is recorded; the loader decides
whether that is a warning (`check`) or an error (`serve`).

No problem shows a value read from the environment: `Problems` writes each such value (of
`MIN_HIDDEN` characters or more) as the `${NAME}` it came from, in every message recorded, so a
routing key or an Apprise URL's password written in the wrong place never reaches `check`'s output
or the log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a rules file; `line` is 1-based."""

    file: str
    line: int

    def __str__(self) -> str:
        # Line 0 stands for the file or directory as a whole.
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Problem:
    where: Where
    message: str
    level: Literal["error", "warning"]

    def __str__(self) -> str:
        """`file:line: message`, as errors and warnings are kept and logged."""
        return f"{self.where}: {self.message}"

    def report_line(self) -> str:
        """The line `check` prints: warnings say so after the place."""
        marker = "warning: " if self.level == "warning" else ""
        return f"{self.where}: {marker}{self.message}"


# Values shorter than this are not hidden: no secret is that short, and hiding "1" or "on" would
# garble every message that holds them.
MIN_HIDDEN = 4


@dataclass
class Problems:
    """Every error and warning found while loading, in the order found."""

    items: list[Problem] = field(default_factory=list)
    # Each value read from the environment, and the reference it is written as instead.
    hidden: dict[str, str] = field(default_factory=dict)

    def hide(self, value: str, reference: str) -> None:
        """Write `value` as `reference` in every message recorded from now on."""
        if len(value) >= MIN_HIDDEN:
            self.hidden[value] = reference

    def error(self, where: Where, message: str) -> None:
        self.items.append(Problem(where, self._redacted(message), "error"))

    def warning(self, where: Where, message: str) -> None:
        self.items.append(Problem(where, self._redacted(message), "warning"))

    def _redacted(self, message: str) -> str:
        # Longest first: a value that contains another is replaced whole.
        for value in sorted(self.hidden, key=len, reverse=True):
            message = message.replace(value, self.hidden[value])
        return message

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.level == "warning"]

    def sorted(self, file_order: Mapping[str, int]) -> list[Problem]:
        """Problems by file (in reading order), then line; equal places keep the order found."""
        return sorted(self.items, key=lambda p: (file_order.get(p.where.file, -1), p.where.line))


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML value and where it was written.

    `value` is a scalar, a `list[Node]` or a `dict[str, Node]`; for mappings `key_places` holds the
    place of each key. `raw` is a scalar as written, before YAML typed it: `end: 18:00` is the
    integer 1080 to YAML 1.1 (a base-60 number), and the time 18:00 to a person.
    """

    value: object
    where: Where
    key_places: Mapping[str, Where] = field(default_factory=dict)
    raw: str | None = None

    def key_where(self, key: str) -> Where:
        return self.key_places.get(key, self.where)


@dataclass(frozen=True, slots=True)
class MissingVariable:
    name: str
    where: Where


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, used only to build nodes and to type scalars."""


def read_yaml(
    text: str, file: str, env: Mapping[str, str], problems: Problems
) -> tuple[Node | None, list[MissingVariable]]:
    """The document in `text` as Nodes, with secrets interpolated; None when empty or unreadable.

    YAML errors, duplicate keys and bad `${...}` references are recorded in `problems`; unset
    variables without a default are returned, for the caller to judge.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        converter = _Converter(loader, file, env, problems)
        return converter.convert(root), converter.missing
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = exc.problem or exc.context or "unreadable"
        lines = text.splitlines()
        hint = ""
        if line <= len(lines) and _UNQUOTED_CONDITION.match(lines[line - 1]):
            hint = ' (quote the condition: value: "> 10s"; an unquoted ">" starts a YAML block)'
        problems.error(Where(file, line), f"YAML error: {message}{hint}")
        return None, []
    except yaml.YAMLError as exc:
        problems.error(Where(file, 1), f"YAML error: {exc}")
        return None, []
    finally:
        loader.dispose()


class _Converter:
    def __init__(self, loader: _Loader, file: str, env: Mapping[str, str], problems: Problems):
        self.loader = loader
        self.file = file
        self.env = env
        self.problems = problems
        self.missing: list[MissingVariable] = []

    def where(self, node: yaml.Node) -> Where:
        return Where(self.file, node.start_mark.line + 1)

    def convert(self, node: yaml.Node) -> Node:
        where = self.where(node)
        if isinstance(node, MappingNode):
            return self.mapping(node, where)
        if isinstance(node, SequenceNode):
            return Node([self.convert(item) for item in node.value], where)
        assert isinstance(node, ScalarNode)
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str):
            value = self.interpolate(value, where)
        elif not isinstance(value, int | float | bool | type(None)):
            value = str(node.value)  # dates and binary stay as written
        return Node(value, where, raw=node.value)

    def mapping(self, node: MappingNode, where: Where) -> Node:
        # `<<: *anchor` merges are resolved as PyYAML's own constructor resolves them: the merged
        # pairs come first, and the mapping's own keys may override them.
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.loader.flatten_mapping(node)
        merged = len(node.value) - own
        values: dict[str, Node] = {}
        places: dict[str, Where] = {}
        overridable: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key_where = self.where(key_node)
            if not isinstance(key_node, ScalarNode):
                self.problems.error(key_where, "a key must be a plain word, not a list or mapping")
                continue
            key = str(key_node.value)
            if index < merged:
                overridable.add(key)
            elif key in overridable:
                overridable.discard(key)
                del values[key]
            if key in values:
                self.problems.error(
                    key_where, f'duplicate key "{key}" (first at line {places[key].line})'
                )
                continue
            values[key] = self.convert(value_node)
            places[key] = key_where
        return Node(values, where, places)

    def interpolate(self, text: str, where: Where) -> str:
        if "$" not in text:
            return text
        return _REFERENCE.sub(lambda match: self._substitute(match, where), text)

    def _substitute(self, match: re.Match[str], where: Where) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group(1)
        if body is None:
            self.problems.error(where, 'unterminated variable reference "${" (write ${NAME})')
            return match.group(0)
        reference = _BODY.match(body)
        if reference is None:
            self.problems.error(
                where,
                f'bad variable reference "${{{body}}}" (write ${{NAME}} or ${{NAME:-default}})',
            )
            return match.group(0)  # left as written: the file is invalid anyway
        name, default = reference.group(1), reference.group(2)
        value = self.env.get(name)
        if value:
            self.problems.hide(value, f"${{{name}}}")
        if default is not None:
            return value if value else default
        if value is None:
            self.missing.append(MissingVariable(name, where))
            return ""
        return value


_MERGE_TAG = "tag:yaml.org,2002:merge"
_UNQUOTED_CONDITION = re.compile(r"^\s*(-\s+)?value:\s*>")
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
