"""The `text` and `value` conditions of a rule, and how an alert's value is found.

Values carry units. Each unit belongs to a family, and only values of one family compare:

| family  | units                                             | base       |
|---------|---------------------------------------------------|------------|
| time    | ms, s, m, h                                       | second     |
| percent | %                                                 | percent    |
| bytes   | B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024) | byte |
| plain   | a number with no unit                             | the number |

A condition and a value of different families do not compare, and the condition does not hold:
`> 10s` says nothing about a value of `35%`. A value without a unit is read, as Prometheus
writes metrics, in the base unit of the threshold's family: seconds for a time, bytes for a size
(`12.4` is `12.4s` against `> 10s`). A rule's `unit:` says otherwise for metrics exported in
another unit (`unit: ms`: `12400` is `12400ms`); it applies to values without a unit only.

An alert's value is, in this order (the first one present wins):
1. Grafana's `values`, one entry per reduce, math, threshold or classic-condition expression of
   the rule (its refId): the one the rule names (`ref:`), else the measured one. A threshold or
   condition expression is 1 when it fires and 0 when not, so an entry that is exactly 0 or 1
   beside entries that are not is a condition, not a measurement; among the others, the first
   variable named in `valueString` (Grafana lists them in the order of the query), else the first
   entry. These are plain numbers, since Grafana sends no unit;
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

# The label a value condition reads when the alert carries no value of its own.
VALUE_LABEL = "value"


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
    return Quantity(number, known_unit(unit, text))


def known_unit(unit: str, text: str | None = None) -> str:
    """`unit` as this module spells it (`gb` is `GB`); ValueError for a unit it does not know."""
    if unit == "" or unit in _UNITS:
        return unit
    folded = _UNIT_BY_FOLDED.get(unit.lower())
    if folded is not None:
        return folded
    written = f' in "{text}"' if text is not None else ""
    raise ValueError(f'unknown unit "{unit}"{written} (known: {UNIT_NAMES})')


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
            last_with_unit = Quantity(number, known_unit(unit, text))
        else:
            last_plain = Quantity(number, "")
    return last_with_unit or last_plain


@dataclass(frozen=True, slots=True)
class AlertValue:
    """An alert's value and where it was found (`values[B]`, `valueString`, ...)."""

    quantity: Quantity
    source: str


def alert_value(alert: Alert, ref: str | None = None) -> AlertValue | None:
    """The alert's value, taken as this module's docstring says; None when it has none.

    With `ref`, only Grafana's `values[ref]` counts.
    """
    if ref is not None:
        number = alert.values.get(ref)
        return None if number is None else AlertValue(Quantity(number, ""), f"values[{ref}]")
    if alert.values:
        name = measured_ref(alert.values, alert.value_string)
        return AlertValue(Quantity(alert.values[name], ""), f"values[{name}]")
    candidates = (
        ("valueString", alert.value_string),
        ("annotation value", alert.annotations.get("value")),
        ("label value", alert.labels.get(VALUE_LABEL)),
    )
    for source, text in candidates:
        if not text or (source == "valueString" and _GRAFANA_VAR.search(text)):
            continue
        quantity = quantity_in_text(text)
        if quantity is not None:
            return AlertValue(quantity, source)
    return None


def measured_ref(values: Mapping[str, float], value_string: str | None) -> str:
    """The refId of Grafana's `values` that holds the measurement, not a condition's 0 or 1."""
    listed: list[str] = [
        name for name in _GRAFANA_VAR.findall(value_string or "") if name in values
    ]
    order = listed + [name for name in values if name not in listed]
    measured = [name for name in order if values[name] not in (0.0, 1.0)]
    return (measured or order)[0]


# The unit a value without one is read in, per family of the threshold (Prometheus' base units).
_BASE_UNITS = {"time": "s", "bytes": "B"}


@dataclass(frozen=True, slots=True)
class ValueCondition:
    """`> 10s`: a comparison of the alert's value with a threshold of the same unit family.

    `ref` names the Grafana value to compare (None: the alert's value); `unit` is the unit of a
    value sent without one (None: the base unit of the threshold's family).
    """

    operator: str
    threshold: Quantity
    ref: str | None = None
    unit: str | None = None

    @classmethod
    def parse(cls, text: str, *, ref: str | None = None, unit: str | None = None) -> ValueCondition:
        """`> 10s`; ValueError naming what is wrong."""
        match = _CONDITION.match(text)
        if match is None:
            raise ValueError(
                f'"{text}" is not a comparison; write an operator (>, >=, <, <=, ==) and a '
                'number with an optional unit, e.g. "> 10s"'
            )
        return cls.create(match.group(1), match.group(2), ref=ref, unit=unit)

    @classmethod
    def create(
        cls, operator: str, threshold: str, *, ref: str | None = None, unit: str | None = None
    ) -> ValueCondition:
        if operator not in _COMPARE:
            raise ValueError(f'unknown operator "{operator}" (known: {", ".join(_COMPARE)})')
        if unit is not None:
            unit = known_unit(unit)
        return cls(operator, parse_quantity(threshold), ref, unit)

    def never_compares(self) -> str | None:
        """Why no value without a unit can ever compare with the threshold, or None."""
        read_as = self.unit or _BASE_UNITS.get(self.threshold.family)
        family = Quantity(0, read_as).family if read_as else "plain"
        if family == self.threshold.family:
            return None
        if self.unit is not None:
            return (
                f"unit {self.unit} ({family}) never compares with the threshold "
                f"{self.threshold} ({_family_words(self.threshold)})"
            )
        if self.ref is not None:
            return (
                f"Grafana's values[{self.ref}] has no unit and never compares with "
                f"{self.threshold} ({_family_words(self.threshold)}); say the metric's unit "
                f'with unit: (e.g. unit: "{self.threshold.unit}")'
            )
        return None

    def read(self, quantity: Quantity) -> tuple[Quantity, str]:
        """The value as compared, and how a value without a unit was read ("" when as written)."""
        if quantity.unit:
            return quantity, ""
        if self.unit is not None:
            return Quantity(quantity.number, self.unit), f"unit {self.unit} from the rule"
        base = _BASE_UNITS.get(self.threshold.family)
        if base is None:
            return quantity, ""
        return Quantity(quantity.number, base), "no unit: read in " + (
            "seconds" if base == "s" else "bytes"
        )

    def evaluate(self, value: AlertValue | None) -> tuple[bool, str]:
        """Whether the condition holds for `value`, and a phrase saying which value was compared,
        from where, how it was read, and why it holds or not."""
        if value is None:
            missing = "no value" if self.ref is None else f"no Grafana value {self.ref}"
            return False, f"the alert has {missing} to compare with {self}"
        quantity, how = self.read(value.quantity)
        shown = f"value {quantity} ({value.source}{', ' + how if how else ''})"
        if quantity.family != self.threshold.family:
            return False, (
                f"{shown} is {_family_words(quantity)} and does not compare with "
                f"{self.threshold} ({_family_words(self.threshold)})"
            )
        holds = _COMPARE[self.operator](quantity.base, self.threshold.base)
        relation = self.operator if holds else f"not {self.operator}"
        return holds, f"{shown} {relation} {self.threshold}"

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
