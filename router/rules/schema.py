"""Every key a rules file may hold, with its JSON Schema: the loader's key lists and the editors'
schema (`rules/schema.json`) both come from here, so they cannot drift apart.

`make schema` writes `rules/schema.json` with `schema_text()`, and
`tests/test_shipped_rules.py` checks that the committed file is what this module makes. The schema
checks each file's shape; `runbook-router check` checks the whole directory (docs/rules.md).
"""

from __future__ import annotations

import json
from typing import Any

Json = dict[str, Any]

_NAME: Json = {"$ref": "#/definitions/name"}
_CLOCK: Json = {"$ref": "#/definitions/clock"}
# `route` lists every page of the timeline, the repeats included; a policy that repeats more often
# than this is a typo, not an escalation anyone reads.
MAX_REPEAT = 1000
_DURATION = "#/definitions/duration"
_LABEL_NAMES: Json = {"$ref": "#/definitions/labelNames"}
_STRINGS: Json = {"type": "array", "items": {"type": "string"}}

BUSINESS_HOURS: dict[str, Json] = {
    "days": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    },
    "start": _CLOCK,
    "end": _CLOCK,
}

# Flap damping (router/incidents/damping.py), per severity and per rule; a rule's overrides.
PENDING: Json = {
    "description": "Page only if the alert still fires after this long; resolved before, "
    "nobody is paged. 0s turns off a pending period its severity sets.",
    "$ref": _DURATION,
}
FLAPPING: dict[str, Json] = {
    "resolves": {
        "description": "How many times the incident resolves and fires again within `within` "
        "before it is held as flapping (1: at the first re-fire).",
        "type": "integer",
        "minimum": 1,
    },
    "within": {"description": "The window those re-fires are counted in.", "$ref": _DURATION},
    "quiet": {
        "description": "A flapping incident settles after this long with no alert firing or "
        "resolving: resolved, or paged again if still firing.",
        "$ref": _DURATION,
    },
}
_FLAPPING_REF: Json = {"$ref": "#/definitions/flapping"}

SEVERITY: dict[str, Json] = {
    "aliases": {
        "description": "Values of an alert's severity label that mean this severity (any case).",
        **_STRINGS,
    },
    "hours": {
        "description": "business: pages wait for business_hours.",
        "type": "string",
        "enum": ["always", "business"],
    },
    "pending": PENDING,
    "flapping": _FLAPPING_REF,
}

PAGERDUTY: dict[str, Json] = {
    "routing_key": {
        "description": "Events API v2 integration key; empty drops the channel.",
        "type": "string",
    },
}

TIER: dict[str, Json] = {
    "pagerduty": {
        "type": "object",
        "additionalProperties": False,
        "required": ["routing_key"],
        "properties": PAGERDUTY,
    },
    "apprise": {
        "description": "Apprise URLs (SCHEME://...); an empty one is dropped.",
        **_STRINGS,
    },
    "log": {"description": "Also write the tier's pages to the log.", "type": "boolean"},
}

STEP: dict[str, Json] = {
    "notify": {
        "description": "Tiers paged together.",
        "type": "array",
        "minItems": 1,
        "items": {"type": "string"},
    },
    "ack_within": {
        "description": "Time to acknowledge before the next step is paged; needed on every step "
        "but the last.",
        "$ref": _DURATION,
    },
}

SEVERITY_POLICY: dict[str, Json] = {
    "steps": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["notify"],
            "properties": STEP,
        },
    },
    "repeat": {
        "description": f"After the last step, page it again this many times (<= {MAX_REPEAT}).",
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_REPEAT,
    },
    "ack_expires": {
        "description": "An acknowledged incident still firing after this re-triggers.",
        "$ref": _DURATION,
    },
}

# A comparison's parts, as the loader reads them (conditions.py).
_OPERATOR = "(>=|<=|==|>|<)"
_UNIT = "(ms|s|m|h|%|[KMGTkmgt]?[iI]?[Bb])"
_QUANTITY = rf"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*{_UNIT}?"

# `value: {ref: A, op: ">", threshold: 10s}`: a comparison of one of Grafana's values.
VALUE: dict[str, Json] = {
    "ref": {
        "description": "The refId of the Grafana expression whose value is compared (A, B...).",
        "type": "string",
        "minLength": 1,
    },
    "op": {"type": "string", "enum": [">", ">=", "<", "<=", "=="]},
    "threshold": {
        "description": "A number with an optional unit: 10s, 8GB, 20%, 100.",
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": rf"^\s*{_QUANTITY}\s*$"}],
    },
}

RULE: dict[str, Json] = {
    "name": _NAME,
    "matchers": {
        "description": "Alertmanager matchers, all must hold: 'alertname=~\"Foo.*\"', "
        "'service!=\"test\"'.",
        "type": "array",
        "minItems": 1,
        "items": {"type": "string"},
    },
    "text": {
        "description": "Case-insensitive text, or /regex/, searched in summary, description, "
        "title and message.",
        "type": "string",
        "minLength": 1,
    },
    "value": {
        "description": 'A comparison of the alert\'s value: "> 10s", ">= 1s", "> 20%", '
        '"> 8GB", "> 100"; or {ref: A, op: ">", threshold: 10s} for Grafana\'s value A.',
        "anyOf": [
            {"type": "string", "pattern": rf"^\s*{_OPERATOR}\s*{_QUANTITY}\s*$"},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["ref", "op", "threshold"],
                "properties": VALUE,
            },
        ],
    },
    "unit": {
        "description": "The unit of a value sent without one (Grafana's values), when the "
        "metric is not in seconds or bytes: ms, s, m, h, %, B, KB, MB, GB, TB, KiB, MiB, GiB, TiB.",
        "type": "string",
        "pattern": rf"^{_UNIT}$",
    },
    "severity": {"type": "string"},
    "policy": {"type": "string"},
    "runbook": {
        "description": "FILE.md or FILE.md#anchor under runbooks/; the anchor is the GitHub slug "
        "of the heading.",
        "type": "string",
        "pattern": r"^[^#\s]+\.md(#[^#\sA-Z]+)?$",
    },
    "group_by": _LABEL_NAMES,
    "pending": PENDING,
    "flapping": _FLAPPING_REF,
}

HEARTBEAT: dict[str, Json] = {
    "name": {
        "description": "Names the heartbeat: POST /heartbeats/NAME is a beat.",
        **_NAME,
    },
    "matchers": {
        "description": "Alertmanager matchers of the alert that must keep arriving (each firing "
        "delivery is a beat), e.g. 'alertname=\"Watchdog\"'. Without them, only pings beat.",
        "type": "array",
        "minItems": 1,
        "items": {"type": "string"},
    },
    "interval": {
        "description": "With no beat for this long, an incident opens; the next beat resolves it.",
        "$ref": _DURATION,
    },
    "severity": {"description": "Severity of the missed-heartbeat incident.", "type": "string"},
    "policy": {
        "description": "Escalation policy of that incident (default: `default`).",
        "type": "string",
    },
}

# `time_intervals` entries, in the shape of Alertmanager's (router/maintenance/intervals.py).
_TIME_OF_DAY: Json = {
    "type": "string",
    "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
}
TIME_RANGE: dict[str, Json] = {"start_time": _TIME_OF_DAY, "end_time": _TIME_OF_DAY}
_RANGES: Json = {"type": "array", "items": {"type": ["string", "integer"]}}
TIME_INTERVAL: dict[str, Json] = {
    "times": {
        "description": 'Times of day, end exclusive: {start_time: "14:00", end_time: "16:00"}.',
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["start_time", "end_time"],
            "properties": TIME_RANGE,
        },
    },
    "weekdays": {"description": "monday, or a range monday:friday.", **_RANGES},
    "days_of_month": {"description": "1, 1:7, -1 (the last day), -7:-1.", **_RANGES},
    "months": {"description": "january, 1, or a range january:march.", **_RANGES},
    "years": {"description": "2026, or a range 2026:2027.", **_RANGES},
    "location": {
        "description": "IANA time zone (default: the window's location).",
        "type": "string",
    },
}
_INSTANT: Json = {
    "description": "An RFC 3339 time with its offset: 2026-12-01T14:00:00+01:00.",
    "type": "string",
}
MAINTENANCE: dict[str, Json] = {
    "name": _NAME,
    "matchers": {
        "description": "Alertmanager matchers, all must hold, as in rules.",
        "type": "array",
        "minItems": 1,
        "items": {"type": "string"},
    },
    "time_intervals": {
        "description": "When the window recurs, as Alertmanager's time_intervals.",
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": TIME_INTERVAL,
        },
    },
    "location": {
        "description": "IANA time zone of the time_intervals (default UTC).",
        "type": "string",
    },
    "starts_at": _INSTANT,
    "ends_at": _INSTANT,
    "reason": {"description": "Shown on the timeline and in route.", "type": "string"},
    "include_p0": {
        "description": "Also hide alerts of the most severe severity (default false).",
        "type": "boolean",
    },
}

# `storm: {threshold: 20, window: 60s, update_every: 5m}`: when a tier's pages fold into one.
STORM: dict[str, Json] = {
    "threshold": {
        "description": "More than this many incidents paged to one tier within `window` is a "
        "storm (default 20); 0 turns storm pages off.",
        "type": "integer",
        "minimum": 0,
    },
    "window": {
        "description": "How far back openings are counted (default 60s).",
        "$ref": _DURATION,
    },
    "update_every": {
        "description": "At most one updated storm page per tier this often (default 5m).",
        "$ref": _DURATION,
    },
}

# Top-level keys that hold one value, and those that hold named entries merged across files.
SCALARS: dict[str, Json] = {
    "timezone": {
        "description": "IANA time zone of business_hours (default UTC).",
        "type": "string",
        "examples": ["UTC", "Europe/Berlin", "America/New_York"],
    },
    "business_hours": {
        "description": "When pages of severities with `hours: business` are sent (default mon-fri "
        "09:00-18:00).",
        "type": "object",
        "additionalProperties": False,
        "properties": BUSINESS_HOURS,
    },
    "runbook_base_url": {
        "description": "Prefix of runbook links in pages; the runbook file and #anchor are "
        "appended.",
        "type": "string",
    },
    "group_by": {
        "description": "Labels whose values, with the rule name, make the incident key (default "
        "[alertname]).",
        **_LABEL_NAMES,
    },
    "default_severity": {
        "description": "Severity of an alert that no rule classifies and whose severity label "
        "maps to none (default: the least severe).",
        "type": "string",
    },
    "storm": {
        "description": "Alert storms: beyond `threshold` incidents in `window`, a tier's further "
        "pages (not the most severe level's) fold into one storm page, updated at most every "
        "`update_every`.",
        "type": "object",
        "additionalProperties": False,
        "properties": STORM,
    },
}
SECTIONS: dict[str, Json] = {
    "severities": {
        "description": "Severities, most severe first.",
        "type": "object",
        "propertyNames": _NAME,
        "additionalProperties": {
            "anyOf": [
                {"type": "null"},
                {"type": "object", "additionalProperties": False, "properties": SEVERITY},
            ]
        },
    },
    "tiers": {
        "description": "Who is paged, and through which channels. ${NAME} reads a secret from the "
        "environment.",
        "type": "object",
        "propertyNames": _NAME,
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": TIER,
        },
    },
    "policies": {
        "description": "Escalation per severity. Rules use `default` unless they name another.",
        "type": "object",
        "propertyNames": _NAME,
        "additionalProperties": {
            "type": "object",
            "additionalProperties": {"$ref": "#/definitions/severityPolicy"},
        },
    },
}
TOP_LEVEL: dict[str, Json] = {
    **SCALARS,
    **SECTIONS,
    "rules": {
        "description": "Classification rules. Every rule is evaluated; the most severe that holds "
        "decides, the earlier between equals.",
        "type": "array",
        "items": {"$ref": "#/definitions/rule"},
    },
    "heartbeats": {
        "description": "Alerts or pings that must keep arriving (a dead man's switch): when none "
        "arrived for `interval`, an incident opens.",
        "type": "array",
        "items": {"$ref": "#/definitions/heartbeat"},
    },
    "maintenance": {
        "description": "Maintenance windows: alerts they match open suppressed incidents that "
        "page nobody until the window ends. Lists concatenate across files.",
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "matchers"],
            "anyOf": [{"required": ["time_intervals"]}, {"required": ["ends_at"]}],
            "properties": MAINTENANCE,
        },
    },
}


def schema() -> Json:
    """The JSON Schema (draft 07) of one rules file."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "runbook-router rules file",
        "description": "One file of a runbook-router rules directory. Files merge: rules and "
        "heartbeats lists concatenate; severities, tiers and policies merge by name. "
        "`runbook-router check` validates the whole directory, cross-references included. "
        "See docs/rules.md.",
        "type": "object",
        "additionalProperties": False,
        "properties": TOP_LEVEL,
        "definitions": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "clock": {
                "description": 'A time of day, HH:MM (quote it: "18:00").',
                "type": "string",
                "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$",
            },
            "duration": {
                "description": "A duration such as 30s, 5m, 1h30m, 2d.",
                "type": "string",
                "pattern": "^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                "(([0-9]+)s)?(([0-9]+)ms)?$",
            },
            "labelNames": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
            },
            "flapping": {
                "description": "Flap detection: an incident that resolves and fires again "
                "`resolves` times within `within` stays open as flapping, paging nobody, until "
                "it has been quiet for `quiet`.",
                "type": "object",
                "additionalProperties": False,
                "required": list(FLAPPING),
                "properties": FLAPPING,
            },
            "severityPolicy": {
                "type": "object",
                "additionalProperties": False,
                "required": ["steps"],
                "properties": SEVERITY_POLICY,
            },
            "heartbeat": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "interval", "severity"],
                "properties": HEARTBEAT,
            },
            "rule": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "severity"],
                "anyOf": [
                    {"required": ["matchers"]},
                    {"required": ["text"]},
                    {"required": ["value"]},
                ],
                "properties": RULE,
            },
        },
    }


def schema_text() -> str:
    """The schema as `rules/schema.json` holds it."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
