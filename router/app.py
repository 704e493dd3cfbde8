"""Composition root: builds every part from the settings, and owns start, reload and shutdown.

`serve()` is the daemon: it loads the rules (a bad file stops it with every problem listed) and
listens at once. It then opens the store (retrying while the database cannot be opened or written:
meanwhile webhooks get 503 and /readyz says why) and starts the engine, whose first passes do what
fell due while the daemon was down, in the background (/readyz says it is catching up). SIGHUP
reloads the rules; a bad reload keeps the old rules and logs why. On SIGTERM or SIGINT it keeps
listening but answers 503 to new webhooks while the requests in flight finish, then closes the
listener, stops the engine between transactions, and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import secrets
import signal
from datetime import UTC, datetime, timedelta

from aiohttp import web

from router.api.browsers import BrowserGuard
from router.api.guards import GuardedSite, InFlight, connection_limit
from router.api.heartbeats import HeartbeatApi
from router.api.http import (
    Readiness,
    RuntimeState,
    WebhookReceiver,
    add_routes,
    error_middleware,
)
from router.api.incidents import IncidentApi
from router.api.maintenance import MaintenanceApi
from router.engine import Engine
from router.errors import ConfigError, StoreError
from router.incidents.service import IncidentService
from router.links import AckLinks
from router.logs import fields
from router.maintenance.service import MaintenanceService
from router.metrics import Metrics
from router.models import Notification
from router.outbound import OutboundHeartbeat
from router.outbox.channels import ChannelSet, build_channels, channel_problems
from router.outbox.dispatcher import Dispatcher
from router.outbox.template_checks import check_templates
from router.routing import Routing, load_routing
from router.rules.drop import rule_drop_refusal
from router.settings import Settings, environment
from router.shadow import RecentDisagreements, compare
from router.store import IngestResult, Store, open_store
from router.types import Clock
from router.web.access import WebAccess
from router.web.pages import ConsolePages

log = logging.getLogger("router.app")

# Opening the database is retried this often at most while it fails at start.
OPEN_RETRY_CAP_SECONDS = 30.0
# Readiness waits this long for its test write (the Kubernetes probe's timeout is 2 s).
WRITE_CHECK_SECONDS = 1.5


def system_clock() -> datetime:
    return datetime.now(UTC)


def routing_from(settings: Settings) -> Routing:
    """The rules, runbooks and page templates of `ROUTER_RULES_DIR`; ConfigError lists every
    problem of all three."""
    # `.env` is read again: a reload picks up a secret changed there, as it does the rules.
    routing = load_routing(settings.rules_dir, environment(), strict_secrets=True)
    problems = channel_problems(routing.rules)
    if problems:
        raise ConfigError(f"{len(problems)} channel(s) that cannot page", tuple(problems))
    problems = check_templates(settings.rules_dir / "templates")
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the page templates", tuple(problems))
    return routing


def shadow_routing_from(settings: Settings) -> Routing | None:
    """The rules of `ROUTER_SHADOW_RULES_DIR`, or None when it is unset; ConfigError names the
    setting and lists every problem. Its tiers never page, so their secrets may be unset."""
    if settings.shadow_rules_dir is None:
        return None
    try:
        return load_routing(settings.shadow_rules_dir, environment(), strict_secrets=False)
    except ConfigError as exc:
        raise ConfigError(f"ROUTER_SHADOW_RULES_DIR: {exc}", exc.problems) from exc


class RouterService:
    """The running router: store, routing, incidents, outbox and the HTTP application over them."""

    def __init__(
        self,
        settings: Settings,
        *,
        routing: Routing | None = None,
        store: Store | None = None,
        metrics: Metrics | None = None,
        channels: ChannelSet | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.routing = routing if routing is not None else routing_from(settings)
        self.shadow = shadow_routing_from(settings)
        self.disagreements = RecentDisagreements()
        self.store = store if store is not None else open_store(settings.database_url)
        self.metrics = metrics if metrics is not None else Metrics()
        self.channels = (
            channels
            if channels is not None
            else build_channels(
                settings, settings.rules_dir / "templates", severity_rank=self._severity_rank
            )
        )
        self.clock = clock
        # Read at start: a bad ROUTER_WEB_CONFIG_FILE stops the daemon before it listens.
        self.web_access = WebAccess(settings)
        self.state = RuntimeState()
        self.in_flight = InFlight(settings.body_timeout_seconds)
        self._links: AckLinks | None = None
        self.incidents = IncidentService(
            self.store,
            lambda: self.routing,
            self.metrics,
            self.links,
            settings.base_url,
            on_new_work=self.wake,
        )
        self.dispatcher = Dispatcher(
            self.store,
            self.channels,
            lambda: self.routing,
            self.metrics,
            clock,
            excerpts=lambda runbook: functools.partial(self.routing.excerpt, runbook),
        )
        # Tasks started by a reload, kept so that they are not collected while they run.
        self._background: set[asyncio.Task[None]] = set()
        self.maintenance = MaintenanceService(
            self.store, lambda: self.routing, on_change=self._maintenance_changed
        )
        self.engine = Engine(
            self.incidents,
            self.dispatcher,
            self.store,
            self.metrics,
            clock,
            retention=timedelta(days=settings.retention_days),
            maintenance=self.maintenance,
        )
        self.outbound: OutboundHeartbeat | None = None
        if settings.outbound_heartbeat_url is not None:
            self.outbound = OutboundHeartbeat(
                settings.outbound_heartbeat_url.get_secret_value(),
                settings.outbound_heartbeat_interval_seconds,
                self.metrics,
                self.is_ready,
            )
        self._initialise_metrics()

    def _severity_rank(self, severity: str) -> int | None:
        rank = self.routing.rank(severity)
        return rank if rank < len(self.routing.rules.severities) else None

    def links(self) -> AckLinks:
        if self._links is None:
            # The store is not open yet (retried in the background): the request gets 503.
            raise StoreError("the database is not open yet")
        return self._links

    def wake(self) -> None:
        self.engine.wake()

    async def start(self) -> None:
        await self.store.start()
        if not self.store.shared:
            # The only process on this database: a claim left from before was a dead process's.
            released = await self.store.release_claims()
            if released:
                log.warning(
                    "pages claimed by a process that stopped are due again",
                    extra=fields(pages=released),
                )
        configured = self.settings.secret_key
        if configured is not None:
            key = configured.get_secret_value()
        else:
            # Generated once and kept in the database, so links survive restarts and replicas
            # share it.
            key = await self.store.setting("ack_link_key", secrets.token_urlsafe(32))
        self._links = AckLinks(key.encode())
        # Heartbeats are given a whole interval from now: a router that was down does not page
        # for the beats it could not receive.
        self.incidents.watch_heartbeats(self.clock())

    def _maintenance_changed(self) -> None:
        """A window was made or ended here: webhooks see it at once, and the engine looks at the
        suppressed incidents again."""
        self.incidents.run_time_windows.changed()
        self.wake()

    async def close(self) -> None:
        if self.outbound is not None:
            await self.outbound.stop()
        await self.engine.stop()
        if self._background:
            await asyncio.wait(self._background, timeout=5.0)
        await self.incidents.close()
        await self.channels.close()
        await self.store.close()

    async def ingest(self, notification: Notification, now: datetime) -> IngestResult:
        """Store and route a webhook's alerts; then, with shadow rules, record what they would
        have decided (after the store accepted the alerts: a refused webhook records nothing)."""
        result = await self.incidents.ingest(notification, now)
        shadow = self.shadow
        if shadow is not None:
            for decision in compare(self.routing, shadow, notification.alerts):
                outcome = "differs" if decision.differs else "same"
                self.metrics.shadow_decisions.labels(outcome=outcome).inc()
                if decision.differs:
                    self.disagreements.add(decision, now)
                    log.info(
                        "shadow rules would route differently",
                        extra=fields(**decision.log_fields()),
                    )
        return result

    def reload_rules(self) -> bool:
        """Replace the routing with the rules on disk; keep the old ones if the new are bad, or
        drop more than half of the rules in force (unless ROUTER_ALLOW_RULE_DROP)."""
        try:
            routing = routing_from(self.settings)
        except ConfigError as exc:
            log.error(
                "rules reload failed; keeping the rules in force",
                extra=fields(problems=list(exc.problems)),
            )
            return False
        refusal = rule_drop_refusal(self.routing.rules, routing.rules)
        if refusal is not None and not self.settings.allow_rule_drop:
            log.error(
                "rules reload refused; keeping the rules in force", extra=fields(reason=refusal)
            )
            return False
        self.routing = routing
        self.incidents.watch_heartbeats(self.clock())
        self._recheck_suppressed()
        self._reload_shadow()
        log_tiers(routing)
        self.channels.reload_templates(self.settings.rules_dir / "templates")
        self._initialise_metrics()
        log.info(
            "rules reloaded",
            extra=fields(rules=len(routing.rules.rules), sections=len(routing.runbooks.sections)),
        )
        return True

    def _recheck_suppressed(self) -> None:
        """The rules' maintenance windows may have changed: the engine looks again at every
        suppressed incident (in the background; a failure leaves them due at their window's end
        as it was)."""

        async def recheck() -> None:
            try:
                await self.maintenance.recheck(self.clock())
            except StoreError as exc:
                log.error("suppressed incidents not rechecked", extra=fields(error=str(exc)))

        with contextlib.suppress(RuntimeError):  # no event loop: nothing runs, nothing to tell
            task = asyncio.get_running_loop().create_task(recheck())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _reload_shadow(self) -> None:
        try:
            self.shadow = shadow_routing_from(self.settings)
        except ConfigError as exc:
            log.error(
                "shadow rules reload failed; keeping the shadow rules in force",
                extra=fields(problems=list(exc.problems)),
            )

    def _initialise_metrics(self) -> None:
        self.metrics.initialise_routing_labels(self.routing.rules)
        rules = self.routing.rules
        self.metrics.initialise_channels(
            channel.label for tier in rules.tiers.values() for channel in tier.channels
        )

    async def try_start(self) -> bool:
        """Open the store; False (the problem logged and kept for /readyz) if it fails now."""
        try:
            await self.start()
        except StoreError as exc:
            self.state.start_problem = str(exc)
            log.error(
                "database cannot be opened; answering 503 and retrying",
                extra=fields(error=str(exc)),
            )
            return False
        return True

    async def open_until_ready(self, opened: bool) -> None:
        """Open the store unless `opened`, retrying with backoff while it fails (an unwritable or
        unreachable database), then start the engine. A store that can never be used
        (ConfigError) ends it."""
        delay = 1.0
        while not opened:
            await asyncio.sleep(delay)
            delay = min(delay * 2, OPEN_RETRY_CAP_SECONDS)
            opened = await self.try_start()
        if self.state.start_problem is not None:
            log.warning("database opened", extra=fields(after=self.state.start_problem))
        self.state.start_problem = None
        self.engine.start()
        if self.outbound is not None:
            self.outbound.start()

    async def readiness(self) -> Readiness:
        """Whether to send webhooks here: problems (503), or ready, maybe still catching up."""
        problems = []
        if self.state.shutting_down:
            problems.append("shutting down")
        if self._links is None:
            problems.append(f"database not open: {self.state.start_problem or 'starting'}")
        else:
            # A write, not a read: a database that answers reads may still refuse every webhook.
            try:
                await asyncio.wait_for(self.store.check_writable(self.clock()), WRITE_CHECK_SECONDS)
            except StoreError as exc:
                problems.append(f"database does not accept writes: {exc}")
            except TimeoutError:
                problems.append(f"database did not commit a write within {WRITE_CHECK_SECONDS:g} s")
        if problems or not self.engine.catching_up:
            return Readiness(problems)
        try:
            pending = await self.store.pending_pages()
        except StoreError:
            pending = -1
        return Readiness([], {"pages_pending": pending})

    async def is_ready(self) -> bool:
        """Whether /readyz would answer 200 (the outbound heartbeat pings only then)."""
        return not (await self.readiness()).problems

    def web_app(self) -> web.Application:
        # Bodies over the limit are refused while being read, before they are buffered whole.
        # The browser guard comes first: a request from another web site is refused unread.
        app = web.Application(
            middlewares=[
                self.in_flight.middleware,
                BrowserGuard(self.settings).middleware,
                error_middleware,
            ],
            client_max_size=self.settings.max_body_bytes,
        )
        receiver = WebhookReceiver(self.settings, self.ingest, self.metrics, self.state, self.clock)
        add_routes(app, receiver, self.metrics, self.readiness)
        IncidentApi(
            self.settings,
            self.store,
            lambda: self.incidents,
            self.links,
            self.clock,
            lambda: self.routing,
        ).add_routes(app)
        HeartbeatApi(
            self.settings,
            lambda: self.incidents,
            self.state,
            self.clock,
        ).add_routes(app)
        MaintenanceApi(self.settings, self.maintenance, self.clock).add_routes(app)
        ConsolePages(
            self.settings,
            self.web_access,
            self.store,
            lambda: self.incidents,
            lambda: self.routing,
            self.maintenance,
            self.links,
            self.clock,
            self.disagreements,
        ).add_routes(app)
        return app


def check_listen_address(settings: Settings, insecure: bool) -> None:
    """Refuse to expose unauthenticated webhooks or API beyond this machine unless told to."""
    if settings.listens_on_loopback or insecure:
        return
    missing = [
        variable
        for variable, value in (
            ("ROUTER_WEBHOOK_TOKEN", settings.webhook_token),
            ("ROUTER_API_TOKEN", settings.api_token),
        )
        if value is None
    ]
    if missing:
        # Every missing token in one message: a user fixes them in one go.
        raise ConfigError(
            f"refusing to listen on {settings.host} without {' and '.join(missing)}: anyone who "
            "can reach it could page or silence your on-call; set "
            f"{'it' if len(missing) == 1 else 'them'}, or start with --insecure"
        )


# Connections waiting to be accepted. Alertmanager opens a new connection for most webhooks; in a
# storm a queue of 128 (aiohttp's default) overflows and the kernel drops SYNs, which the sender
# retries after a second or more. The kernel caps this at net.core.somaxconn.
LISTEN_BACKLOG = 4096


class ListenError(Exception):
    """The address cannot be listened on (in use, or not this machine's); the message says which."""


def log_tiers(routing: Routing) -> None:
    """One line per tier: the channels it pages, or that it pages the log because the secrets of
    its channels are unset."""
    for tier in routing.rules.tiers.values():
        channels = ", ".join(channel.label for channel in tier.channels)
        if tier.falls_back_to_log:
            log.warning(
                "tier pages the log only: its channels' secrets are unset",
                extra=fields(tier=tier.name, channels=channels),
            )
        else:
            log.info("tier", extra=fields(tier=tier.name, channels=channels))


# Collect the youngest generation every 10,000 allocations instead of 700, and the older ones
# ten times less often than Python's default; see `tune_garbage_collection`.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_garbage_collection() -> None:
    """Fewer, cheaper garbage collections for a daemon that allocates in bursts.

    Every webhook allocates thousands of short-lived objects (parsed JSON, alerts, rows), so at
    Python's default thresholds the collector runs many times per request and its full passes
    walk everything loaded at start (rules, the runbook index, caches). Freezing what exists once
    the daemon is up keeps those out of every pass; the higher thresholds make passes rarer.
    Memory still returns as usual (most objects are freed by reference counting, not by the
    collector). Measured with `python -m bench bench_webhooks`: about +35 % at 10 alerts per
    request, +15 % at 1 (README, Performance).
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(settings: Settings, *, insecure: bool = False) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    check_listen_address(settings, insecure)
    if insecure and not settings.listens_on_loopback:
        log.warning("listening beyond loopback without both tokens (--insecure)")
    service = RouterService(settings)
    # One attempt before listening, so a healthy start takes webhooks from its first answer; a
    # database that fails is retried in the background while the daemon answers 503.
    opened = await service.try_start()
    runner = web.AppRunner(
        service.web_app(),
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,
        keepalive_timeout=settings.idle_timeout_seconds,
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = {
        signal.SIGHUP: service.reload_rules,
        signal.SIGTERM: stop.set,
        signal.SIGINT: stop.set,
    }
    for signum, handler in signals.items():
        loop.add_signal_handler(signum, handler)
    opening: asyncio.Task[None] | None = None
    try:
        # Listen before catching up: the engine does what fell due while the daemon was down in
        # the background, and /readyz says so.
        site = GuardedSite(
            runner, settings.host, settings.port, limit=connection_limit(), backlog=LISTEN_BACKLOG
        )
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
            ) from exc
        log_tiers(service.routing)
        tune_garbage_collection()
        log.info(
            "listening",
            extra=fields(
                url=settings.base_url,
                database=settings.database_url.split(":", 1)[0],
                rules=len(service.routing.rules.rules),
                event_loop=type(loop).__module__.split(".")[0],
            ),
        )
        opening = asyncio.create_task(service.open_until_ready(opened))
        opening.add_done_callback(lambda task: _stop_on_failure(task, stop))
        await stop.wait()
        if opening.done() and not opening.cancelled():
            opening.result()  # the store can never be opened (ConfigError): stop with its error
        # Keep listening while the requests in flight finish: new webhooks get 503 and
        # Retry-After, and a second signal changes nothing.
        log.info("stopping: answering 503 to new webhooks, finishing requests in flight")
        service.state.shutting_down = True
        if not await service.in_flight.idle(settings.shutdown_timeout_seconds):
            log.warning(
                "requests still in flight at the shutdown timeout",
                extra=fields(requests=service.in_flight.count),
            )
    finally:
        if opening is not None and not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        await runner.cleanup()
        await service.close()
        for signum in signals:
            loop.remove_signal_handler(signum)
    log.info("stopped")


def _stop_on_failure(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    if not task.cancelled() and task.exception() is not None:
        stop.set()
