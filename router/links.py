"""Signed acknowledgement links: the router's own HMAC over what a link in a page may do.

An acknowledgement link carries `INCIDENT.EXPIRES.NONCE.SIGNATURE`, where the signature is
HMAC-SHA256 over the first three parts with the router's secret key. It acknowledges one incident,
until it expires, once: the nonce is remembered when used, so a replayed link changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from router.errors import InvalidLink

# How long a link in a page stays valid. Every escalation sends fresh links.
ACK_LINK_TTL = timedelta(hours=24)

# How long the incident link in a page opens the incident's web page without a login, counted from
# the incident's latest change when the page was made.
VIEW_LINK_TTL = timedelta(days=30)

# ASCII digits only: `\d` alone also matches other scripts' digits, which int() reads.
_TOKEN = re.compile(
    r"^(\d{1,18})\.(\d{1,12})\.([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{43})$", re.ASCII
)


@dataclass(frozen=True, slots=True)
class AckClaim:
    incident_id: int
    expires_at: datetime
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_VIEW_TOKEN = re.compile(r"^(\d{1,12})\.([A-Za-z0-9_-]{43})$", re.ASCII)


class DatedIncident(Protocol):
    """What a view link needs of an incident: its id and the times it changed."""

    @property
    def id(self) -> int: ...
    @property
    def opened_at(self) -> datetime: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...


class AckLinks:
    """Issues and verifies acknowledgement tokens with one secret key."""

    def __init__(self, secret_key: bytes, ttl: timedelta = ACK_LINK_TTL) -> None:
        if len(secret_key) < 16:
            raise ValueError("the link-signing key must be at least 16 bytes")
        self._key = secret_key
        self._ttl = ttl

    def _sign(self, message: str) -> str:
        return _b64(hmac.new(self._key, f"ack:{message}".encode(), hashlib.sha256).digest())

    def issue(self, incident_id: int, now: datetime) -> str:
        expires = int((now + self._ttl).timestamp())
        message = f"{incident_id}.{expires}.{_b64(secrets.token_bytes(16))}"
        return f"{message}.{self._sign(message)}"

    def verify(self, token: str, now: datetime) -> AckClaim:
        match = _TOKEN.match(token)
        if match is None:
            raise InvalidLink("this link is malformed")
        incident, expires, nonce, signature = match.groups()
        expected = self._sign(f"{incident}.{expires}.{nonce}")
        if not hmac.compare_digest(signature, expected):
            raise InvalidLink("this link's signature is not valid")
        expires_at = datetime.fromtimestamp(int(expires), UTC)
        if now >= expires_at:
            raise InvalidLink(f"this link expired at {expires_at.isoformat()}")
        return AckClaim(int(incident), expires_at, nonce)

    # --- view links: the incident link of a page ----------------------------------------------
    # `EXPIRES.SIGNATURE` over the incident and the expiry, with its own prefix so that no view
    # token is ever an acknowledgement token or the reverse. Not one-time: a page is read often.

    def _view_signature(self, incident_id: int, expires: int) -> str:
        message = f"view:{incident_id}.{expires}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue_view(self, incident_id: int, issued_at: datetime) -> str:
        expires = int((issued_at + VIEW_LINK_TTL).timestamp())
        return f"{expires}.{self._view_signature(incident_id, expires)}"

    def verify_view(self, incident_id: int, token: str, now: datetime) -> None:
        """Returns when `token` opens incident `incident_id` at `now`; InvalidLink if not."""
        match = _VIEW_TOKEN.match(token)
        if match is None:
            raise InvalidLink("this link is malformed")
        expires, signature = match.groups()
        if not hmac.compare_digest(signature, self._view_signature(incident_id, int(expires))):
            raise InvalidLink("this link's signature is not valid")
        expires_at = datetime.fromtimestamp(int(expires), UTC)
        if now >= expires_at:
            raise InvalidLink(f"this link expired at {expires_at.isoformat()}")

    # --- form tokens: a page's forms carry one, so a post proves it came from a page we served --

    def issue_form(self, viewer: str, now: datetime) -> str:
        expires = int((now + FORM_TOKEN_TTL).timestamp())
        message = f"form:{viewer}.{expires}".encode()
        return f"{expires}.{_b64(hmac.new(self._key, message, hashlib.sha256).digest())}"

    def verify_form(self, viewer: str, token: str, now: datetime) -> bool:
        match = _VIEW_TOKEN.match(token)
        if match is None:
            return False
        expires, signature = match.groups()
        message = f"form:{viewer}.{expires}".encode()
        expected = _b64(hmac.new(self._key, message, hashlib.sha256).digest())
        return hmac.compare_digest(signature, expected) and now < datetime.fromtimestamp(
            int(expires), UTC
        )


# A page left open this long must be reloaded before its buttons act.
FORM_TOKEN_TTL = timedelta(hours=12)


def incident_view_url(base_url: str, links: AckLinks, incident: DatedIncident) -> str:
    """The incident link of a page: the incident's web page, signed so that it opens without a
    login for VIEW_LINK_TTL after the incident's latest change (opening, acknowledgement,
    resolution) at the time the page is made."""
    changed = [incident.opened_at, incident.acknowledged_at, incident.resolved_at]
    latest = max(when for when in changed if when is not None)
    token = links.issue_view(incident.id, latest)
    return f"{base_url.rstrip('/')}/incidents/{incident.id}?view={token}"
