"""PagerDuty's webhooks (v3) in: acknowledgements and resolutions made in PagerDuty, verified.

PagerDuty signs every delivery with `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>` (one
or more, comma separated, while a subscription's secret is rotated) and names the incident by the
`incident_key` we sent as `dedup_key`. `read_notice` checks the signature and says what to do; the
incident API (`router/api/incidents.py`) does it, once per event.

Replays: only the body is signed, so an event is known by its own `event.id` (the same in every
delivery attempt), never by the unsigned `X-Webhook-Id` header, which anyone replaying a captured
delivery can change. An event that occurred more than `MAX_EVENT_AGE` ago is refused with a 4xx,
which PagerDuty does not retry: a captured acknowledgement cannot be played back later, once its
incident escalated again, even when its id has been pruned from the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from router.errors import HttpError
from router.outbox.context import incident_id_from_dedup_key

# The longest name of who acted that the timeline keeps.
MAX_NAME = 100
# How old an event may be when it arrives. PagerDuty delivers within seconds and retries a failed
# delivery (5xx, 429, time-out) for up to 48 hours; an acknowledgement that arrives later than this
# is refused, so an outage of the router longer than this drops PagerDuty's acknowledgements and
# resolutions made meanwhile (the incident's escalation goes on until acknowledged again).
MAX_EVENT_AGE = timedelta(minutes=10)
# The longest event id remembered (the store keeps one-time tokens of up to 128 characters).
MAX_EVENT_ID = 128
# The dedup_key the router sends: `rr-<incident number>:<incident key>` (outbox/context.py).
_OUR_DEDUP_KEY = re.compile(r"^rr-([^:]*):")

_ACTIONS: Mapping[str, Literal["acknowledge", "resolve"]] = {
    "incident.acknowledged": "acknowledge",
    "incident.resolved": "resolve",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """What PagerDuty told us: `action` on our incident `incident_id`, by `who`."""

    action: Literal["acknowledge", "resolve"]
    incident_id: int
    who: str
    event_id: str


def signature_valid(secret: bytes, body: bytes, header: str) -> bool:
    """Check `X-PagerDuty-Signature` against the body."""
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    for part in header.split(","):
        version, _, signature = part.strip().partition("=")
        if version == "v1" and hmac.compare_digest(signature.strip().lower(), expected):
            return True
    return False


def read_notice(
    secret: bytes, body: bytes, headers: Mapping[str, str], now: datetime
) -> Notice | None:
    """The notice in a webhook delivery, or None for events we do not act on (other event types,
    incidents that are not ours). HttpError 401 for a bad signature, 400 for a bad body or an
    event older than MAX_EVENT_AGE."""
    if not signature_valid(secret, body, headers.get("X-PagerDuty-Signature", "")):
        raise HttpError(401, "unauthorized", "X-PagerDuty-Signature does not match the body")
    event = _event(body)
    action = _ACTIONS.get(str(event.get("event_type")))
    if action is None:
        return None
    event_id = _event_id(event)
    _check_age(event, now)
    data = _object(event.get("data"))
    incident_id = _incident_id(str(data.get("incident_key") or ""))
    if incident_id is None:
        return None
    agent = _object(event.get("agent"))
    who = str(agent.get("summary") or "PagerDuty")[:MAX_NAME]
    return Notice(action, incident_id, who, event_id)


def _event_id(event: Mapping[str, Any]) -> str:
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID:
        raise HttpError(
            400, "malformed", f"event.id: must be a string of 1 to {MAX_EVENT_ID} characters"
        )
    return event_id


def _check_age(event: Mapping[str, Any], now: datetime) -> None:
    written = event.get("occurred_at")
    try:
        occurred = datetime.fromisoformat(written) if isinstance(written, str) else None
    except ValueError:
        occurred = None
    if occurred is None or occurred.tzinfo is None:
        raise HttpError(400, "malformed", "event.occurred_at: must be an ISO 8601 time with a zone")
    if now - occurred > MAX_EVENT_AGE:
        minutes = int(MAX_EVENT_AGE.total_seconds() // 60)
        raise HttpError(
            400,
            "stale",
            f"event.occurred_at: more than {minutes} minutes ago; refused as a possible replay",
        )


def _incident_id(dedup_key: str) -> int | None:
    """Our incident named by `dedup_key`; None for another sender's key; HttpError 400 for a key
    of our form whose number no incident can have (not ASCII digits, or out of range)."""
    incident_id = incident_id_from_dedup_key(dedup_key)
    if incident_id is None and _OUR_DEDUP_KEY.match(dedup_key):
        raise HttpError(
            400, "malformed", "data.incident_key: the incident number is not one this router gives"
        )
    return incident_id


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _event(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise HttpError(400, "malformed", "body: not valid JSON") from exc
    event = document.get("event") if isinstance(document, dict) else None
    if not isinstance(event, dict):
        raise HttpError(400, "malformed", "event: expected an object")
    return event
