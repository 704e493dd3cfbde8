"""Composition root: builds every part from the settings, and owns start and shutdown.

`serve()` is the daemon: it opens the store, listens, and on SIGTERM or SIGINT stops taking webhooks
(they get 503 so that senders retry elsewhere or later), lets the requests in flight finish their
transactions, and closes the store.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from router.errors import ConfigError, StoreError
from router.http import RuntimeState, WebhookReceiver, add_routes, error_middleware
from router.logs import fields
from router.metrics import Metrics
from router.settings import Settings
from router.store import Store, open_store

log = logging.getLogger("router.app")


class RouterService:
    """The running router: store, metrics and the aiohttp application over them."""

    def __init__(
        self, settings: Settings, *, store: Store | None = None, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.store = store if store is not None else open_store(settings.database_url)
        self.metrics = metrics if metrics is not None else Metrics()
        self.state = RuntimeState()

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    async def readiness_problems(self) -> list[str]:
        """Empty when ready to take webhooks; otherwise what stands in the way."""
        problems = []
        if self.state.shutting_down:
            problems.append("shutting down")
        try:
            await self.store.ping()
        except StoreError as exc:
            problems.append(f"database unreachable: {exc}")
        return problems

    def web_app(self) -> web.Application:
        # Bodies over the limit are refused while being read, before they are buffered whole.
        app = web.Application(
            middlewares=[error_middleware], client_max_size=self.settings.max_body_bytes
        )
        receiver = WebhookReceiver(self.settings, self.store, self.metrics, self.state)
        add_routes(app, receiver, self.metrics, self.readiness_problems)
        return app


def check_listen_address(settings: Settings, insecure: bool) -> None:
    """Refuse to expose unauthenticated webhooks beyond this machine unless told to."""
    if settings.webhook_token is None and not settings.listens_on_loopback and not insecure:
        raise ConfigError(
            f"refusing to listen on {settings.host} without ROUTER_WEBHOOK_TOKEN: anyone who can "
            "reach it could page your on-call; set the token, or start with --insecure"
        )


async def serve(settings: Settings, *, insecure: bool = False) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    check_listen_address(settings, insecure)
    if insecure and settings.webhook_token is None:
        log.warning("webhooks are open to anyone who can reach the port (--insecure)")
    service = RouterService(settings)
    await service.start()
    runner = web.AppRunner(
        service.web_app(),
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        log.info(
            "listening",
            extra=fields(url=settings.base_url, database=settings.database_url.split(":", 1)[0]),
        )
        await _wait_for_stop_signal()
        log.info("stopping: refusing new webhooks, finishing requests in flight")
        service.state.shutting_down = True
    finally:
        await runner.cleanup()
        await service.close()
    log.info("stopped")


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
