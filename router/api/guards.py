"""Limits that keep the HTTP server answering under slow, idle or too many connections, and the
drain of requests in flight at shutdown.

- A connection gets `ROUTER_IDLE_TIMEOUT_SECONDS` to send a whole request head, from its opening
  or from the end of its previous answer (aiohttp's keep-alive timer, which runs from the
  connection's opening): an idle or slow-loris connection is closed, not held for ever.
- A request gets `ROUTER_BODY_TIMEOUT_SECONDS` to send its whole body, then its connection is
  closed.
- Beyond `connection_limit()` open connections a new one is closed at once, so that descriptors
  are left for the database and the channels (running out of them fails every request).
- `InFlight` counts requests being handled, so shutdown can wait for them to finish while the
  listener still answers (503 to new webhooks) instead of refusing connections.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable

from aiohttp import web

from router.logs import fields

log = logging.getLogger("router.api.guards")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_CONNECTIONS = 10_000
# Descriptors kept back from the connection limit: the database, the channels' connections, logs.
RESERVED_DESCRIPTORS = 256


def connection_limit() -> int:
    """How many connections to hold at once: MAX_CONNECTIONS, or fewer if the process may not
    open that many descriptors (the soft limit is first raised to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, MAX_CONNECTIONS * 2)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(16, min(MAX_CONNECTIONS, soft - RESERVED_DESCRIPTORS))


class InFlight:
    """Requests being handled now; `idle()` waits until there are none."""

    def __init__(self, body_seconds: float) -> None:
        self._body_seconds = body_seconds
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.count += 1
        self._idle.clear()
        timer = _body_timer(request, self._body_seconds)
        try:
            return await handler(request)
        finally:
            if timer is not None:
                timer.cancel()
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def idle(self, seconds: float) -> bool:
        """Wait until no request is in flight, at most `seconds`; True if none is."""
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _body_timer(request: web.Request, seconds: float) -> asyncio.TimerHandle | None:
    """Close the connection if the body is not whole within `seconds`."""
    if not request.body_exists or request.content.is_eof():
        return None

    def expire() -> None:
        if request.content.is_eof() or request.transport is None:
            return
        log.warning(
            "request body not received in time; connection closed",
            extra=fields(path=request.path, seconds=seconds),
        )
        request.transport.close()

    return asyncio.get_running_loop().call_later(seconds, expire)


class _Refused(asyncio.Protocol):
    """A connection over the limit: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class GuardedSite(web.TCPSite):
    """A TCP site that closes connections beyond `limit` at once."""

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, *, limit: int, backlog: int = 128
    ) -> None:
        super().__init__(runner, host, port, backlog=backlog)
        self._limit = limit
        self._refused = 0

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None

        def protocol() -> asyncio.Protocol:
            # `connections` copies the list of every connection: in a storm of new connections
            # that is quadratic. The mapping it copies is counted as it is.
            if len(server._connections) >= self._limit:
                self._refused += 1
                log.warning(
                    "connection limit reached; new connections are closed",
                    extra=fields(limit=self._limit),
                )
                return _Refused()
            return server()

        self._server = await asyncio.get_running_loop().create_server(
            protocol, self._host, self._port, backlog=self._backlog
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
