"""Which metrics and labels a PromQL query names, checked against what the router exports.

Dashboards and alert rules are only as good as the series they read: a renamed metric or a label
value nobody emits gives an empty panel or an alert that can never fire, silently. `Exports` reads
the series, labels and pre-initialised label values from a real `router.metrics.Metrics` registry;
`query_problems` lists every name in a query that is not among them.

The reader is deliberately small: it knows selectors, matchers, grouping clauses, range
selectors and function calls, which is all the queries under deploy/ use.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from router.metrics import Metrics
from router.rules import load_rules

SHIPPED_RULES = Path(__file__).resolve().parent.parent / "rules"

# Labels that Prometheus adds to every scraped series, and series that it makes itself.
TARGET_LABELS = frozenset({"job", "instance"})
PROMETHEUS_SERIES = frozenset({"up"})
# Labels whose values the router fixes in code (the others come from the rules: tier, rule...).
FIXED_VALUE_LABELS = frozenset({"source", "status", "reason", "method", "outcome", "state"})
# Grafana's own variables, replaced by a duration before the query reaches Prometheus.
GRAFANA_DURATIONS = ("$__rate_interval", "$__interval", "$__range")

_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_BRACES = re.compile(r"\{([^{}]*)\}")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\(|\s*\x00(\d+)\x00)?")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


@dataclass(frozen=True)
class Selector:
    """One series selector: `metric{label op "value", ...}`."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]


@dataclass
class Query:
    """What a query reads: its selectors, the labels it groups by, the functions it calls."""

    selectors: list[Selector] = field(default_factory=list)
    grouping: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)


def read_query(expr: str) -> Query:
    """The selectors, grouping labels and functions of a PromQL (or Grafana) query."""
    text = expr
    for variable in GRAFANA_DURATIONS:
        text = text.replace(variable, "5m")
    # Matchers first, kept aside under a placeholder, so that strings inside them stay intact.
    matcher_lists: list[str] = []

    def keep(match: re.Match[str]) -> str:
        matcher_lists.append(match.group(1))
        return f"\x00{len(matcher_lists) - 1}\x00"

    text = _BRACES.sub(keep, text)
    text = _STRING.sub('""', text)
    text = _RANGE.sub("", text)
    query = Query()
    for match in _GROUPING.finditer(text):
        query.grouping.extend(label.strip() for label in match.group(2).split(",") if label.strip())
    text = _GROUPING.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        name, follower, index = match.group(1), match.group(2) or "", match.group(3)
        if follower.strip().startswith("("):
            query.functions.append(name)
        elif name.lower() not in _KEYWORDS:
            matchers = _matchers(matcher_lists[int(index)]) if index is not None else ()
            query.selectors.append(Selector(name, matchers))
    return query


def _matchers(text: str) -> tuple[tuple[str, str, str], ...]:
    found = []
    for part in _split_matchers(text):
        match = _MATCHER.fullmatch(part)
        if match is None:
            raise ValueError(f"cannot read the matcher {part.strip()!r}")
        found.append((match.group(1), match.group(2), match.group(3)))
    return tuple(found)


def _split_matchers(text: str) -> list[str]:
    parts, current, quoted, escaped = [], "", False, False
    for char in text:
        if char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
    parts.append(current)
    return [part for part in parts if part.strip()]


@dataclass
class Exports:
    """The series the router exports, with their label names and fixed label values."""

    labels: dict[str, frozenset[str]]
    values: dict[str, dict[str, frozenset[str]]]
    histograms: frozenset[str]
    family: dict[str, str]

    @classmethod
    def from_metrics(cls, metrics: Metrics) -> Exports:
        # Zero the routing series of the shipped rules too, so that their label names show up.
        metrics.initialise_routing_labels(load_rules(SHIPPED_RULES, {}, strict_secrets=False))
        metrics.initialise_channels(["pagerduty"])
        # A series that exists only after its first event (a heartbeat's first beat).
        metrics.heartbeat_last_beat.labels(heartbeat="watchdog").set(0)
        return cls.from_registry(metrics.registry)

    @classmethod
    def from_registry(cls, registry: CollectorRegistry) -> Exports:
        labels: dict[str, set[str]] = {}
        values: dict[str, dict[str, set[str]]] = {}
        histograms: set[str] = set()
        family_of: dict[str, str] = {}
        for family in registry.collect():
            if family.type == "counter":
                series = [f"{family.name}_total"]
            elif family.type == "histogram":
                series = [f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"]
                histograms.add(f"{family.name}_bucket")
            elif family.type == "info":
                series = [f"{family.name}_info"]
            else:
                series = [family.name]
            for name in series:
                family_of[name] = family.name
                labels.setdefault(name, set())
                values.setdefault(name, defaultdict(set))
            for sample in family.samples:
                if sample.name not in labels:
                    continue  # samples of no series above (`_created`, were it on): not for queries
                for label, value in sample.labels.items():
                    if label == "le" and sample.name not in histograms:
                        continue
                    labels[sample.name].add(label)
                    values[sample.name][label].add(value)
        return cls(
            labels={name: frozenset(found) for name, found in labels.items()},
            values={
                name: {label: frozenset(seen) for label, seen in by_label.items()}
                for name, by_label in values.items()
            },
            histograms=frozenset(histograms),
            family=family_of,
        )


def query_problems(expr: str, exports: Exports) -> list[str]:
    """Every metric, label and fixed label value in `expr` that the router does not export."""
    try:
        query = read_query(expr)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    if not query.selectors:
        problems.append("reads no metric")
    known_labels: set[str] = set(TARGET_LABELS)
    for selector in query.selectors:
        if selector.metric in PROMETHEUS_SERIES:
            continue
        if selector.metric not in exports.labels:
            problems.append(_unknown_metric(selector.metric, exports))
            continue
        labels = exports.labels[selector.metric]
        known_labels |= labels
        for label, operator, value in selector.matchers:
            if label in TARGET_LABELS:
                continue
            if label not in labels:
                names = ", ".join(sorted(labels)) or "none"
                problems.append(f"{selector.metric} has no label {label} (labels: {names})")
            elif label in FIXED_VALUE_LABELS and operator in ("=", "=~"):
                problems.extend(_value_problems(selector.metric, label, operator, value, exports))
    for label in query.grouping:
        if label not in known_labels:
            problems.append(f"groups by {label}, which none of its metrics has")
    if "histogram_quantile" in query.functions:
        if "le" not in query.grouping:
            problems.append("histogram_quantile without `le` in its aggregation")
        if not any(selector.metric in exports.histograms for selector in query.selectors):
            problems.append("histogram_quantile over no _bucket series")
    return problems


def _unknown_metric(name: str, exports: Exports) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count", ""):
        family = name.removesuffix(suffix) if suffix else name
        offered = sorted(series for series, of in exports.family.items() if of == family)
        if offered:
            return f"{name} is not a series the router exports; {family} has {', '.join(offered)}"
    return f"{name} is not a metric the router exports"


def _value_problems(
    metric: str, label: str, operator: str, value: str, exports: Exports
) -> list[str]:
    seen = exports.values[metric].get(label, frozenset())
    if operator == "=~":
        if not re.fullmatch(r"[\w|]+", value):
            return []  # a real regular expression: not checked
        wanted = value.split("|")
    else:
        wanted = [value]
    known = ", ".join(sorted(seen))
    return [
        f'{metric} label {label} has no value "{one}" (values: {known})'
        for one in wanted
        if one not in seen
    ]
