"""Who may open the web pages.

In order:

- `ROUTER_WEB_TRUSTED_USER_HEADER` set: an authenticating proxy in front of the router names the
  user in that header; a request without it is refused (401). The proxy must remove the header
  from what clients send.
- `ROUTER_WEB_CONFIG_FILE` set: HTTP basic auth against its `basic_auth_users` (name: bcrypt hash),
  the shape of the Prometheus exporter-toolkit's `web-config.yml`.
- Neither, on a loopback address: open, as the API is without a token, to requests whose Host
  names the router (loopback, the listen address, `ROUTER_PUBLIC_URL`): the browser guard stops
  checking Host once both tokens are set, and an open page must still refuse a DNS-rebinding site
  (router/api/browsers.py).
- Neither, beyond loopback: every page answers 401, saying which setting to make.

An incident page opened through the signed link of a page (`?view=TOKEN`) needs none of these:
the link itself grants that one incident (router/links.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import bcrypt
import yaml
from aiohttp import web

from router.api.browsers import LOOPBACK_NAMES, host_name
from router.errors import ConfigError
from router.settings import Settings

REALM = 'Basic realm="runbook-router", charset="UTF-8"'


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a user name, or None when the pages are open (loopback, no users)."""

    name: str | None


class Refused(Exception):
    """The request may not see the pages; the message says why (shown on the 401 page)."""


class OtherSite(Refused):
    """The request names another site in its Host: 403."""


def read_web_config(path: Path) -> dict[str, bytes]:
    """`basic_auth_users` of a web-config.yml: {name: bcrypt hash}; ConfigError if unusable."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"ROUTER_WEB_CONFIG_FILE: cannot read {path}: {exc}") from exc
    users = document.get("basic_auth_users") if isinstance(document, dict) else None
    if not isinstance(users, dict) or not users:
        raise ConfigError(f"ROUTER_WEB_CONFIG_FILE: {path} has no basic_auth_users")
    hashes: dict[str, bytes] = {}
    for name, hashed in users.items():
        if not isinstance(name, str) or not isinstance(hashed, str):
            raise ConfigError(
                f"ROUTER_WEB_CONFIG_FILE: {path}: basic_auth_users maps names to hashes"
            )
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"ROUTER_WEB_CONFIG_FILE: {path}: user {name!r} has no bcrypt hash")
        hashes[name] = hashed.encode()
    return hashes


class WebAccess:
    """`viewer(request)` names who is looking, or raises Refused."""

    def __init__(self, settings: Settings) -> None:
        self._header = settings.web_trusted_user_header
        self._users = (
            read_web_config(settings.web_config_file) if settings.web_config_file else None
        )
        self._open = self._header is None and self._users is None and settings.listens_on_loopback
        own = {settings.host.lower().strip("[]"), *LOOPBACK_NAMES}
        if settings.public_url:
            own.add(urlsplit(settings.public_url).hostname or "")
        self._own_names = frozenset(own)
        # bcrypt takes tens of milliseconds on purpose; a browser sends the same credentials
        # with every request, so a pair once verified is remembered (by its SHA-256, not itself).
        self._verified: set[bytes] = set()

    @property
    def basic_auth(self) -> bool:
        return self._users is not None

    def viewer(self, request: web.Request) -> Viewer:
        if self._header is not None:
            name = request.headers.get(self._header, "").strip()
            if not name:
                raise Refused(f"no user in {self._header}: open the pages through the proxy")
            return Viewer(name[:100])
        if self._users is not None:
            return Viewer(self._basic_user(request.headers.get("Authorization", "")))
        if self._open:
            host = host_name(request.headers.get("Host", ""))
            if host not in self._own_names:
                raise OtherSite("the Host header names another site")
            return Viewer(None)
        raise Refused(
            "the web pages need ROUTER_WEB_CONFIG_FILE or ROUTER_WEB_TRUSTED_USER_HEADER when the "
            "router listens beyond loopback"
        )

    def _basic_user(self, header: str) -> str:
        assert self._users is not None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value.strip():
            raise Refused("sign in with a user of ROUTER_WEB_CONFIG_FILE")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            raise Refused("unreadable credentials") from None
        name, separator, password = decoded.partition(":")
        hashed = self._users.get(name)
        if not separator or hashed is None:
            raise Refused("unknown user or wrong password")
        key = hashlib.sha256(b"\0".join((name.encode(), password.encode(), hashed))).digest()
        if key in self._verified:
            return name
        if not bcrypt.checkpw(password.encode(), hashed):
            raise Refused("unknown user or wrong password")
        self._verified.add(key)
        return name
