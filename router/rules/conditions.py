"""The `text` and `value` conditions of a rule, and how an alert's value is found.

Values carry units. Each unit belongs to a family, and only values of one family compare:

| family  | units                                             | base       |
|---------|---------------------------------------------------|------------|
| time    | ms, s, m, h                                       | second     |
| percent | %                                                 | percent    |
| bytes   | B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024) | byte |
| plain   | a number with no unit                             | the number |

A condition and a value of different families do not compare, and the condition does not hold:
`> 10s` says nothing about a value of `12.4` or `35%`.

An alert's value is, in this order (the first one present wins):
1. Grafana's `values`: the entry of the first variable named in `valueString` (Grafana lists its
   variables there in the order of the query), else the first entry of `values`; these are plain
   numbers, since Grafana sends no unit;
2. `valueString` when it is not Grafana's `[ var='A' ... ]` listing;
3. the annotation `value`;
4. the label `value`.
The text found is read as the last number-with-unit in it ("proof generation p95 is 12.4s" is
12.4 s), else its last plain number.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from router.models import Alert

# Unit -> (family, factor to the family's base unit).
_UNITS: dict[str, tuple[str, float]] = {
    "ms": ("time", 0.001),
    "s": ("time", 1.0),
    "m": ("time", 60.0),
    "h": ("time", 3600.0),
    "%": ("percent", 1.0),
    "B": ("bytes", 1.0),
    "KB": ("bytes", 1e3),
    "MB": ("bytes", 1e6),
    "GB": ("bytes", 1e9),
    "TB": ("bytes", 1e12),
    "KiB": ("bytes", 1024.0),
    "MiB": ("bytes", 1024.0**2),
    "GiB": ("bytes", 1024.0**3),
    "TiB": ("bytes", 1024.0**4),
}
# Byte units are also read in any letter case ("8gb", "512mib"); time units are case-sensitive
# because "M" (mega) and "m" (minute) must not be confused.
_UNIT_BY_FOLDED = {unit.lower(): unit for unit, (family, _) in _UNITS.items() if family == "bytes"}
UNIT_NAMES = ", ".join(_UNITS)

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z%]*)\s*$")
# A number inside free text: not glued to a preceding letter or digit ("p95" is no number), with an
# optional unit that is not glued to a following letter ("12 seconds" has no unit "s").
_NUMBER_IN_TEXT = re.compile(rf"(?<![\w.])({_NUMBER})\s?(ms|s|m|h|%|(?i:[kmgt]i?b)|B)?(?![\w%])")
_CONDITION = re.compile(r"^\s*(>=|<=|==|>|<)\s*(.*?)\s*$")
_GRAFANA_VAR = re.compile(r"var='([^']*)'")

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number and its unit (`""` for a plain number), as written."""

    number: float
    unit: str

    @property
    def family(self) -> str:
        return _UNITS[self.unit][0] if self.unit else "plain"

    @property
    def base(self) -> float:
        """The number in the base unit of its family (seconds, percent, bytes)."""
        return self.number * _UNITS[self.unit][1] if self.unit else self.number

    def __str__(self) -> str:
        return f"{self.number:g}{self.unit}"


def parse_quantity(text: str) -> Quantity:
    """`12.4s`, `8 GB`, `35%`, `250` as a Quantity; ValueError naming what is wrong."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f'"{text}" is not a number with an optional unit ({UNIT_NAMES})')
    number, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(number):  # pragma: no cover - the pattern admits only finite numbers
        raise ValueError(f'"{text}" is not a finite number')
    return Quantity(number, _known_unit(unit, text))


def _known_unit(unit: str, text: str) -> str:
    if unit == "" or unit in _UNITS:
        return unit
    folded = _UNIT_BY_FOLDED.get(unit.lower())
    if folded is not None:
        return folded
    raise ValueError(f'unknown unit "{unit}" in "{text}" (known: {UNIT_NAMES})')


def quantity_in_text(text: str) -> Quantity | None:
    """The last number-with-unit in free text, else its last plain number, else None."""
    last_plain: Quantity | None = None
    last_with_unit: Quantity | None = None
    for match in _NUMBER_IN_TEXT.finditer(text):
        number = float(match.group(1))
        if not math.isfinite(number):  # pragma: no cover - the pattern admits only finite numbers
            continue
        unit = match.group(2)
        if unit:
            last_with_unit = Quantity(number, _known_unit(unit, text))
        else:
            last_plain = Quantity(number, "")
    return last_with_unit or last_plain


@dataclass(frozen=True, slots=True)
class AlertValue:
    """An alert's value and where it was found (`values`, `valueString`, `annotation value`...)."""

    quantity: Quantity
    source: str


def alert_value(alert: Alert) -> AlertValue | None:
    """The alert's value, taken as this module's docstring says; None when it has none."""
    if alert.values:
        order = _GRAFANA_VAR.findall(alert.value_string or "")
        name = next((var for var in order if var in alert.values), next(iter(alert.values)))
        return AlertValue(Quantity(alert.values[name], ""), f"values[{name}]")
    candidates = (
        ("valueString", alert.value_string),
        ("annotation value", alert.annotations.get("value")),
        ("label value", alert.labels.get("value")),
    )
    for source, text in candidates:
        if not text or (source == "valueString" and _GRAFANA_VAR.search(text)):
            continue
        quantity = quantity_in_text(text)
        if quantity is not None:
            return AlertValue(quantity, source)
    return None


@dataclass(frozen=True, slots=True)
class ValueCondition:
    """`> 10s`: a comparison of the alert's value with a threshold of the same unit family."""

    operator: str
    threshold: Quantity

    @classmethod
    def parse(cls, text: str) -> ValueCondition:
        match = _CONDITION.match(text)
        if match is None:
            raise ValueError(
                f'"{text}" is not a comparison; write an operator (>, >=, <, <=, ==) and a '
                'number with an optional unit, e.g. "> 10s"'
            )
        return cls(match.group(1), parse_quantity(match.group(2)))

    def evaluate(self, value: AlertValue | None) -> tuple[bool, str]:
        """Whether the condition holds for `value`, and a phrase saying why."""
        if value is None:
            return False, f"the alert has no value to compare with {self}"
        quantity = value.quantity
        if quantity.family != self.threshold.family:
            return False, (
                f"value {quantity} ({_family_words(quantity)}) does not compare with "
                f"{self.threshold} ({_family_words(self.threshold)})"
            )
        holds = _COMPARE[self.operator](quantity.base, self.threshold.base)
        relation = self.operator if holds else f"not {self.operator}"
        return holds, f"value {quantity} {relation} {self.threshold}"

    def __str__(self) -> str:
        return f"{self.operator} {self.threshold}"


def _family_words(quantity: Quantity) -> str:
    return "no unit" if quantity.family == "plain" else quantity.family


# Where a `text` condition looks, in this order: the annotations people write, and Grafana's
# title and message (which the payload parser keeps as annotations).
TEXT_FIELDS = ("summary", "description", "title", "message")


@dataclass(frozen=True, slots=True)
class TextCondition:
    """A case-insensitive substring, or `/regex/` (Python syntax, case-insensitive, unanchored)."""

    source: str
    needle: str | None
    regex: re.Pattern[str] | None

    @classmethod
    def parse(cls, text: str) -> TextCondition:
        if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
            try:
                return cls(text, None, re.compile(text[1:-1], re.IGNORECASE))
            except re.error as exc:
                raise ValueError(f"bad regex {text}: {exc}") from exc
        if not text.strip():
            raise ValueError("empty text; give the words to look for")
        return cls(text, text.casefold(), None)

    def find(
        self, annotations: Mapping[str, str], folded: Mapping[str, str] | None = None
    ) -> str | None:
        """The first field of TEXT_FIELDS that contains the text, or None.

        `folded` may hold the fields already case-folded, when many conditions read one alert.
        """
        for name in TEXT_FIELDS:
            haystack = annotations.get(name)
            if not haystack:
                continue
            if self.needle is not None:
                folded_haystack = folded[name] if folded is not None else haystack.casefold()
                if self.needle in folded_haystack:
                    return name
            elif self.regex is not None and self.regex.search(haystack):
                return name
        return None

    def describe(self, field: str) -> str:
        verb = "contains" if self.needle is not None else "matches"
        shown = f'"{self.source}"' if self.needle is not None else self.source
        return f"{field} {verb} {shown}"
