"""The router's own heartbeat: a ping to an outside dead man's switch every interval.

A router that dies pages nobody about it. With `ROUTER_OUTBOUND_HEARTBEAT_URL` set, the daemon
pings that URL every `ROUTER_OUTBOUND_HEARTBEAT_INTERVAL_SECONDS` while it is ready (its database
takes writes and it is not stopping), so that a service such as healthchecks.io, or another
router's `POST /heartbeats/{name}`, notices when the pings stop. An `http://` or `https://` URL is
sent a POST (healthchecks.io, Uptime Kuma and the like take it); any other URL is an Apprise URL,
notified with a short message. A failed ping is logged and counted in
`router_outbound_heartbeats_total{result="failed"}` and tried again at the next interval; nothing
about it can stop the daemon. The URL may hold a token: it is never logged, its scheme names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import apprise

# Imported for its side effect: it loads Apprise's plugins once, with their import warning quieted.
import router.outbox.channels.apprise  # noqa: F401
from router.errors import ConfigError
from router.logs import fields
from router.metrics import Metrics

log = logging.getLogger("router.outbound")

# A ping that takes longer than this failed; the next one comes at the next interval anyway.
PING_TIMEOUT_SECONDS = 10.0
PING_TITLE = "runbook-router heartbeat"
PING_BODY = "runbook-router is running and its database takes writes."


class OutboundHeartbeat:
    """Pings `url` every `interval` seconds while `ready()` says so (see the module)."""

    def __init__(
        self,
        url: str,
        interval: float,
        metrics: Metrics,
        ready: Callable[[], Awaitable[bool]],
        *,
        timeout: float = PING_TIMEOUT_SECONDS,
    ) -> None:
        self._url = url
        self._interval = interval
        self._metrics = metrics
        self._ready = ready
        self._timeout = timeout
        scheme = url.partition("://")[0].lower()
        self._http = scheme in ("http", "https")
        self.label = scheme if self._http else f"apprise:{scheme}"
        if not self._http and apprise.Apprise.instantiate(url) is None:
            raise ConfigError(
                "ROUTER_OUTBOUND_HEARTBEAT_URL: neither an http(s) URL nor an Apprise URL "
                f"Apprise can use (scheme {scheme or 'missing'})"
            )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ping_once(self) -> str:
        """One ping if the router is ready; the result counted: sent, failed or not_ready."""
        try:
            if not await self._ready():
                result = "not_ready"
            else:
                result = "sent" if await self._send() else "failed"
        except Exception as exc:  # a bug here must not end the pings, nor the daemon
            log.exception("outbound heartbeat failed unexpectedly", exc_info=exc)
            result = "failed"
        self._metrics.outbound_heartbeats.labels(result=result).inc()
        return result

    async def _run(self) -> None:
        while True:
            await self.ping_once()
            await asyncio.sleep(self._interval)

    async def _send(self) -> bool:
        if self._http:
            return await self._post()
        notifier = apprise.Apprise()
        notifier.add(self._url)
        try:
            # Apprise answers a boolean (Apprise 2: a result that is truthy on success).
            sent = bool(
                await asyncio.wait_for(
                    notifier.async_notify(body=PING_BODY, title=PING_TITLE), self._timeout
                )
            )
        except TimeoutError:
            sent = False
        if not sent:
            log.warning("outbound heartbeat not delivered", extra=fields(target=self.label))
        return sent

    async def _post(self) -> bool:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self._url, data=PING_BODY.encode()) as answer,
            ):
                if answer.status < 300:
                    return True
                error = f"HTTP {answer.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = type(exc).__name__
        log.warning(
            "outbound heartbeat not delivered", extra=fields(target=self.label, error=error)
        )
        return False
