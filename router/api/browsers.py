"""What a web browser may make the router do: requests from other web sites are refused.

Without tokens (the loopback default) anything that reaches the port may call the API, and a web
page the on-call engineer opens can reach it too, in two ways:

- DNS rebinding: a page on `evil.example` makes its own name resolve to 127.0.0.1, and then reads
  and posts to the router as if it were `evil.example`. The browser still sends `Host:
  evil.example`, so a request whose Host names neither the listen address, nor
  `ROUTER_PUBLIC_URL`, nor (on loopback) `localhost` is refused with 403.
- Cross-site requests: a page posts a form, or a `no-cors` fetch, to `http://127.0.0.1:9099/...`.
  The browser says where it comes from (`Origin`, `Sec-Fetch-Site`), so a state-changing request
  (any method but GET, HEAD and OPTIONS) that comes from another origin is refused with 403.

Alertmanager, Grafana, PagerDuty and curl send no `Origin` nor `Sec-Fetch-Site`, and name the host
they were told: they are not affected. The Host check applies only while a token is unset (with
both tokens set, a browser page cannot present them) and when the router knows its names (a
wildcard listen address such as 0.0.0.0 without `ROUTER_PUBLIC_URL` has none to check against).
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from aiohttp import web

from router.api.http import Handler
from router.logs import fields
from router.settings import Settings

log = logging.getLogger("router.api.browsers")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# `none`: the user's own action (a bookmark, the address bar), not another site's.
_SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def host_name(authority: str) -> str | None:
    """The host name of `HOST[:PORT]`, lower case, without IPv6 brackets; None if unreadable."""
    try:
        return urlsplit(f"//{authority}").hostname
    except ValueError:
        return None


def allowed_host_names(settings: Settings) -> frozenset[str] | None:
    """The names a request's Host may carry; None when the Host is not checked."""
    if settings.webhook_token is not None and settings.api_token is not None:
        return None
    names: set[str] = set()
    if settings.public_url:
        names.add(urlsplit(settings.public_url).hostname or "")
    try:
        wildcard = ipaddress.ip_address(settings.host).is_unspecified
    except ValueError:
        wildcard = False  # a host name
    if not wildcard:
        names.add(settings.host.lower().strip("[]"))
    if settings.listens_on_loopback:
        names |= LOOPBACK_NAMES
    names.discard("")
    return frozenset(names) or None


class BrowserGuard:
    """An aiohttp middleware refusing requests made by other web sites (see the module's doc)."""

    def __init__(self, settings: Settings) -> None:
        self._host_names = allowed_host_names(settings)
        self._public_origin = _origin_of(settings.public_url) if settings.public_url else None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        checked = self._host_names is not None and host is not None
        if checked and host_name(host or "") not in (self._host_names or ()):
            return _refuse(request, "the Host header names another site", host=host or "")
        if request.method not in _SAFE_METHODS and self._cross_site(request, host):
            return _refuse(request, "a request from another web site may not change anything")
        return await handler(request)

    def _cross_site(self, request: web.Request, host: str | None) -> bool:
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site not in _SAME_SITE_FETCHES:
            return True
        origin = request.headers.get("Origin")
        if origin is None:
            return False  # not a browser, or one that says nothing: the Host check stands
        own = {f"{request.scheme}://{host}".lower()} if host else set()
        if self._public_origin:
            own.add(self._public_origin)
        return origin.lower() not in own


def page_headers(style_src: str) -> dict[str, str]:
    """The headers of every HTML page the router serves. Its pages run no script, load nothing
    but their style (`style_src`), post only to the router, are never framed (clickjacking), and
    their address, which may hold a signed link, goes in a Referer to no other site.

    `same-origin` rather than `no-referrer`: under the latter a browser posts a page's form with
    `Origin: null`, which the guard above refuses as another site's."""
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src {style_src}; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _refuse(request: web.Request, message: str, **extra: str) -> web.Response:
    log.warning(
        "request refused",
        extra=fields(
            path=request.path,
            reason=message,
            origin=request.headers.get("Origin"),
            **extra,
        ),
    )
    return web.json_response({"error": message}, status=403)
