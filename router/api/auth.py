"""Who may call: one check of a shared secret, for the webhook receivers and the incident API.

A secret is presented as a bearer token (`Authorization: Bearer SECRET`), or, where the caller can
only send basic auth (Alertmanager's and Grafana's older configurations), as its password. No
secret configured: open (the daemon refuses to listen beyond loopback without one unless told).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web
from pydantic import SecretStr

from router.errors import HttpError


class TokenCheck:
    """`check(request)` raises HttpError 401 with `refusal` unless the request holds the secret."""

    def __init__(self, secret: SecretStr | None, *, basic: bool, refusal: str) -> None:
        self._secret = secret.get_secret_value().encode() if secret else None
        self._basic = basic
        self._refusal = refusal

    def check(self, request: web.Request) -> None:
        if self._secret is None:
            return
        presented = _presented(request.headers.get("Authorization", ""), basic=self._basic)
        # compare_digest takes time independent of where the strings differ.
        if presented is None or not hmac.compare_digest(presented, self._secret):
            raise HttpError(401, "unauthorized", self._refusal)


def _presented(header: str, *, basic: bool) -> bytes | None:
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value.encode()
    if basic and scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        _user, separator, password = decoded.partition(b":")
        return password if separator else None
    return None
