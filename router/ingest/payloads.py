"""Webhook bodies: Alertmanager v4, Grafana unified alerting and legacy Grafana alerting.

Every body goes through `parse_alertmanager` or `parse_grafana`, which return a `Notification` of
normalised `Alert`s or raise `PayloadError` naming the offending field. Fields that newer
versions of the senders add are ignored, so an upgrade of Alertmanager or Grafana does not
break ingestion.

Formats, from the senders' own code:
- Alertmanager: `notify/webhook/webhook.go` (Message, version "4"), `template/template.go` (Alert).
- Grafana unified alerting: the webhook notifier's ExtendedData (version "1": Alertmanager's shape
  plus values, valueString, dashboardURL, panelURL, silenceURL, title, message).
- Grafana legacy alerting: `pkg/services/alerting/notifiers/webhook.go` (ruleName, state, ...).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from router.errors import PayloadError
from router.models import Alert, AlertStatus, Notification, Source

# JSON nested deeper than this is refused before it reaches the parser's recursion limit. Real
# bodies are four levels deep; the margin leaves room for new nested fields.
MAX_JSON_DEPTH = 32

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$",
)
# Go's zero time.Time, which Alertmanager and Grafana send as `endsAt` of a firing alert.
_GO_ZERO_YEAR = 1


@functools.lru_cache(maxsize=4096)
def parse_timestamp(value: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; Go's zero time as None.

    ValueError for anything else, including a time that is within years 1 to 9999 where it was
    written but not in UTC (`9999-12-31T23:59:59-01:00`): the store keeps UTC. Remembered: the
    alerts of a webhook mostly share their start and Go's zero end time.
    """
    if not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 timestamp: {value[:64]!r}")
    # Python keeps microseconds; Go sends up to nanoseconds.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value} is outside years 1 to 9999 in UTC") from None
    if utc.year == _GO_ZERO_YEAR:
        return None
    return utc


# Every string of a body: what the parser accepts, both databases can store. PostgreSQL refuses
# NUL in text and JSON; neither database can encode a lone UTF-16 surrogate (JSON's `\\ud800`
# without its pair). Both are checked inside pydantic-core, without a Python call per string: a
# pattern refuses NUL, and a pattern needs the string as UTF-8, which a lone surrogate is not.
_NO_NUL = "^[^\x00]*$"
Text = Annotated[StrictStr, Field(pattern=_NO_NUL)]
# What pydantic-core says of a body's string that fails those checks, in words a sender acts on.
_STORABLE_MESSAGES = {
    "string_pattern_mismatch": "contains a NUL character",
    "string_unicode": "contains a lone UTF-16 surrogate (\\ud800 to \\udfff)",
}
Timestamp = Annotated[Text, Field(min_length=1)]
Labels = dict[Text, Text]
# Alertmanager's fingerprints are 16 hex digits; the store keeps up to 64 characters.
MAX_FINGERPRINT = 64
Fingerprint = Annotated[Text, Field(max_length=MAX_FINGERPRINT)]
# JSON has no NaN or Infinity, but Python's parser takes them (and 1e999 as Infinity); neither can
# be compared with a threshold, nor stored in PostgreSQL's JSON.
Number = Annotated[float, Field(allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class _TimedAlert(_Body):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: Text | None = Field(default=None, alias="endsAt")
    generator_url: Text | None = Field(default=None, alias="generatorURL")
    fingerprint: Fingerprint | None = None

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _valid_time(cls, value: str | None) -> str | None:
        if value is not None and value != "":
            parse_timestamp(value)
        return value


class AlertmanagerAlert(_TimedAlert):
    pass


class _Envelope(_Body):
    """What Alertmanager's and Grafana's bodies share around their alerts."""

    status: Literal["firing", "resolved"]
    receiver: Text | None = None
    group_key: Text | None = Field(default=None, alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0, le=2**31 - 1)
    external_url: Text | None = Field(default=None, alias="externalURL")


class AlertmanagerBody(_Envelope):
    """Alertmanager's webhook message, version 4."""

    version: Literal["4"]
    alerts: list[AlertmanagerAlert]


class GrafanaAlert(_TimedAlert):
    silence_url: Text | None = Field(default=None, alias="silenceURL")
    dashboard_url: Text | None = Field(default=None, alias="dashboardURL")
    panel_url: Text | None = Field(default=None, alias="panelURL")
    image_url: Text | None = Field(default=None, alias="imageURL")
    values: dict[Text, Number] | None = None
    value_string: Text | None = Field(default=None, alias="valueString")


class GrafanaBody(_Envelope):
    """Grafana unified alerting's webhook body (Alertmanager's shape plus Grafana's fields)."""

    version: Literal["1"] = "1"
    alerts: list[GrafanaAlert]


class LegacyEvalMatch(_Body):
    value: Number | None = None
    metric: Text = ""
    tags: Labels | None = None


class LegacyGrafanaBody(_Body):
    """Grafana's legacy (dashboard) alerting webhook: one rule, no times, no fingerprint."""

    rule_name: Text = Field(alias="ruleName", min_length=1)
    state: Literal["alerting", "ok", "no_data", "paused", "pending"]
    rule_id: int | None = Field(default=None, alias="ruleId")
    rule_url: Text | None = Field(default=None, alias="ruleUrl")
    title: Text = ""
    message: Text = ""
    image_url: Text | None = Field(default=None, alias="imageUrl")
    tags: Labels | None = None
    eval_matches: list[LegacyEvalMatch] | None = Field(default=None, alias="evalMatches")


# --- fingerprints ---------------------------------------------------------------------------

_FNV64_OFFSET = 14695981039346656037
_FNV64_PRIME = 1099511628211
_LABEL_SEPARATOR = 0xFF


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The fingerprint Alertmanager computes for a label set (prometheus/common `model.LabelSet`).

    FNV-1a 64 over the label names in sorted order, each name and value followed by byte 0xff,
    printed as 16 hex digits.
    """
    digest = _FNV64_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                digest = ((digest ^ byte) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
            digest = ((digest ^ _LABEL_SEPARATOR) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


# --- decoding -------------------------------------------------------------------------------


def decode_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or PayloadError saying why not.

    orjson parses it. A body orjson refuses is read again by Python's own decoder: to say why in
    its words (a byte offset, a line and column), or, for what Python reads and orjson does not
    (a lone surrogate escape), to let the field checks name the field.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _python_json(body)
    if not isinstance(document, dict):
        raise PayloadError(f"expected a JSON object, got {_json_type(document)}", "body")
    # Nesting needs an opening bracket per level: a body with few cannot be deep.
    few = body.count(b"{") + body.count(b"[") <= MAX_JSON_DEPTH
    if not few and _deeper_than(document, MAX_JSON_DEPTH):
        raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "body")
    return document


def _python_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not valid UTF-8 at byte {exc.start}", "body") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "body"
        ) from exc
    except RecursionError as exc:
        raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "body") from exc


# The containers of decoded JSON. A tuple: `isinstance` with `dict | list` takes half as long
# again, and this runs on every value of a body.
_CONTAINERS = (dict, list)


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (real bodies nest four)."""
    level: list[Any] = [document]
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, _CONTAINERS)
        ]
        if not level:
            return False
    return True


def _json_type(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# A refused body names every problem up to this many, then how many more: enough to fix a
# generator in one go, while a body of a thousand bad alerts still gets a short answer.
MAX_LISTED_PROBLEMS = 20


def _validation_error(exc: ValidationError) -> PayloadError:
    """Every problem pydantic found, as `field.path: message`, joined with `; `; past
    MAX_LISTED_PROBLEMS, `and N more`. The error's field is the first problem's."""
    problems = [_problem(error) for error in exc.errors(include_url=False)]
    first_field, first_message = problems[0]
    listed = [first_message] + [f"{field}: {message}" for field, message in problems[1:]]
    text = "; ".join(listed[:MAX_LISTED_PROBLEMS])
    more = len(listed) - MAX_LISTED_PROBLEMS
    if more > 0:
        text += f"; and {more} more"
    return PayloadError(text, first_field)


def _problem(error: ErrorDetails) -> tuple[str, str]:
    """(`field.path`, message) of one pydantic error."""
    field = ".".join(_field_part(part) for part in error["loc"]) or "body"
    message = _STORABLE_MESSAGES.get(error["type"], error["msg"])
    if error["type"] == "literal_error" and "input" in error:
        message = f"{message}, got {error['input']!r}"
    return field, message


def _field_part(part: str | int) -> str:
    """A part of a field's path as a log line and a JSON answer can carry it: a label name with
    a NUL or a control character is written with JSON escapes (`bad\\u0000name`); pydantic
    itself replaces lone surrogates with U+FFFD."""
    text = str(part)
    return text if text.isprintable() else json.dumps(text)[1:-1]


def _time(value: str | None) -> datetime | None:
    return parse_timestamp(value) if value else None


def _alert(item: _TimedAlert, source: Source, group_key: str | None, **extra: Any) -> Alert:
    """The Alert of an Alertmanager-shaped alert; `extra` carries what only Grafana sends."""
    return Alert(
        source=source,
        status=AlertStatus(item.status),
        fingerprint=item.fingerprint or label_fingerprint(item.labels),
        labels=item.labels,
        annotations=item.annotations,
        starts_at=_time(item.starts_at),
        ends_at=_time(item.ends_at),
        generator_url=item.generator_url or None,
        group_key=group_key,
        **extra,
    )


def _notification(source: Source, body: _Envelope, alerts: tuple[Alert, ...]) -> Notification:
    return Notification(
        source=source,
        alerts=alerts,
        receiver=body.receiver,
        group_key=body.group_key,
        external_url=body.external_url,
        truncated_alerts=body.truncated_alerts,
    )


def parse_alertmanager(document: dict[str, Any]) -> Notification:
    """An Alertmanager v4 webhook body as a Notification."""
    try:
        body = AlertmanagerBody.model_validate(document)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    alerts = tuple(_alert(item, Source.ALERTMANAGER, body.group_key) for item in body.alerts)
    return _notification(Source.ALERTMANAGER, body, alerts)


def parse_grafana(document: dict[str, Any]) -> Notification:
    """A Grafana webhook body, unified or legacy, as a Notification."""
    if "alerts" not in document and ("ruleName" in document or "evalMatches" in document):
        return _parse_legacy_grafana(document)
    try:
        body = GrafanaBody.model_validate(document)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    alerts = tuple(
        _alert(
            item,
            Source.GRAFANA,
            body.group_key,
            dashboard_url=item.dashboard_url or None,
            panel_url=item.panel_url or None,
            silence_url=item.silence_url or None,
            image_url=item.image_url or None,
            values=item.values or {},
            value_string=item.value_string or None,
        )
        for item in body.alerts
    )
    return _notification(Source.GRAFANA, body, alerts)


def _parse_legacy_grafana(document: dict[str, Any]) -> Notification:
    try:
        body = LegacyGrafanaBody.model_validate(document)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    if body.state in ("paused", "pending"):
        # Neither is a firing or a resolved alert: nothing to page, nothing to resolve.
        return Notification(source=Source.GRAFANA, alerts=())
    labels = {**(body.tags or {}), "alertname": body.rule_name}
    annotations = {
        key: value for key, value in (("title", body.title), ("message", body.message)) if value
    }
    matches = body.eval_matches or []
    values = {m.metric: m.value for m in matches if m.metric and m.value is not None}
    value_string = ", ".join(f"{metric}={value:g}" for metric, value in values.items()) or None
    alert = Alert(
        source=Source.GRAFANA,
        status=AlertStatus.RESOLVED if body.state == "ok" else AlertStatus.FIRING,
        fingerprint=label_fingerprint(labels),
        labels=labels,
        annotations=annotations,
        starts_at=None,
        generator_url=body.rule_url or None,
        image_url=body.image_url or None,
        values=values,
        value_string=value_string,
    )
    return Notification(source=Source.GRAFANA, alerts=(alert,))


PARSERS = {
    Source.ALERTMANAGER: parse_alertmanager,
    Source.GRAFANA: parse_grafana,
}


def parse_body(source: Source, body: bytes) -> Notification:
    """Decode and parse a webhook body from `source`; PayloadError names what is wrong."""
    return PARSERS[source](decode_json(body))
