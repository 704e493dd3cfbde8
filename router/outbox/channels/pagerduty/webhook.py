"""PagerDuty's webhooks (v3) in: acknowledgements and resolutions made in PagerDuty, verified.

PagerDuty signs every delivery with `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>` (one
or more, comma separated, while a subscription's secret is rotated) and names the incident by the
`incident_key` we sent as `dedup_key`. `read_notice` checks the signature and says what to do; the
incident API (`router/api/incidents.py`) does it, once per `X-Webhook-Id`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from router.errors import HttpError
from router.outbox.context import incident_id_from_dedup_key

# The longest name of who acted that the timeline keeps.
MAX_NAME = 100

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
    webhook_id: str | None


def signature_valid(secret: bytes, body: bytes, header: str) -> bool:
    """Check `X-PagerDuty-Signature` against the body."""
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    for part in header.split(","):
        version, _, signature = part.strip().partition("=")
        if version == "v1" and hmac.compare_digest(signature.strip().lower(), expected):
            return True
    return False


def read_notice(secret: bytes, body: bytes, headers: Mapping[str, str]) -> Notice | None:
    """The notice in a webhook delivery, or None for events we do not act on (other event types,
    incidents that are not ours). HttpError 401 for a bad signature, 400 for a bad body."""
    if not signature_valid(secret, body, headers.get("X-PagerDuty-Signature", "")):
        raise HttpError(401, "unauthorized", "X-PagerDuty-Signature does not match the body")
    event = _event(body)
    data = _object(event.get("data"))
    incident_id = incident_id_from_dedup_key(str(data.get("incident_key") or ""))
    action = _ACTIONS.get(str(event.get("event_type")))
    if action is None or incident_id is None:
        return None
    agent = _object(event.get("agent"))
    who = str(agent.get("summary") or "PagerDuty")[:MAX_NAME]
    webhook_id = headers.get("X-Webhook-Id") or str(event.get("id") or "") or None
    return Notice(action, incident_id, who, webhook_id)


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
