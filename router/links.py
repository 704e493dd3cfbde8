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

from router.errors import InvalidLink

# How long a link in a page stays valid. Every escalation sends fresh links.
ACK_LINK_TTL = timedelta(hours=24)

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
