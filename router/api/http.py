"""The HTTP surface: webhook receivers, health, readiness and metrics routes.

Status codes follow what the senders do with them (README, "HTTP"): Alertmanager retries 5xx and
gives up on 4xx, so a body that can never be accepted is a 4xx and a failure that may clear (the
database) is a 503. One middleware turns every error into a JSON `{"error": ...}` body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from router.api.auth import TokenCheck
from router.errors import (
    ConfigError,
    DeliveryError,
    HeartbeatNotFound,
    HttpError,
    IncidentNotFound,
    InvalidLink,
    MatcherError,
    PayloadError,
    RouterError,
    StoreError,
    WindowConflict,
    WindowNotFound,
)
from router.ingest.payloads import parse_body
from router.logs import fields, log_frequent
from router.metrics import Metrics
from router.models import AlertStatus, Notification, Source
from router.outbox.context import PageContextError
from router.settings import Settings
from router.store import IngestResult

log = logging.getLogger("router.api.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What a 503 asks the sender to wait: a restart or a database hiccup takes seconds.
RETRY_AFTER_SECONDS = 5


# How each error a request can meet reaches the sender: (status, metric reason, message). A
# store failure is logged in full where it is caught; the sender only learns to retry.
HTTP_ERRORS: dict[type[RouterError], tuple[int, str, str | None]] = {
    PayloadError: (400, "malformed", None),
    IncidentNotFound: (404, "not_found", "no such incident"),
    HeartbeatNotFound: (404, "not_found", None),
    WindowNotFound: (404, "not_found", None),
    WindowConflict: (409, "conflict", None),
    InvalidLink: (403, "invalid_link", None),
    StoreError: (503, "store_unavailable", "storage unavailable, retry later"),
}
# Errors that no request handler lets through: each is handled where it is raised (rules at
# start and reload, deliveries in the dispatcher). Met in a request, they are a bug: 500.
NOT_IN_REQUESTS: frozenset[type[RouterError]] = frozenset(
    {ConfigError, DeliveryError, MatcherError, PageContextError}
)


def as_http_error(exc: Exception) -> HttpError:
    """The status, reason and message for an error raised while handling a request."""
    if isinstance(exc, HttpError):
        return exc
    for kind, (status, reason, message) in HTTP_ERRORS.items():
        if isinstance(exc, kind):
            return HttpError(status, reason, message or str(exc))
    return HttpError(500, "internal", "internal error")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except ConnectionResetError:
        if not _client_gone(request):
            raise
        # The client went away before its request was whole (aiohttp fails the body's read):
        # nothing was done, and the answer below is never sent, for there is no one to read it.
        log.info(
            "client disconnected before its request was whole", extra=fields(path=request.path)
        )
        return web.Response(status=400)
    except Exception as exc:
        error = as_http_error(exc)
        if error.status >= 500 and not isinstance(exc, HttpError):
            log.error("request failed", exc_info=exc, extra=fields(path=request.path))
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if error.status == 503 else None
        response = web.json_response({"error": error.message}, status=error.status, headers=headers)
        if error.reason == "shutting_down":
            response.force_close()  # the connection ends with this answer
        return response


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@dataclass
class RuntimeState:
    """What the HTTP layer needs to know about the daemon's life cycle."""

    shutting_down: bool = False
    # Why the store could not be opened yet (retried in the background), None once open.
    start_problem: str | None = None


@dataclass(frozen=True)
class Readiness:
    """What /readyz answers: 503 with `problems`, or 200, with what is still being caught up on
    after a start (`{"pages_pending": N}`)."""

    problems: list[str]
    catching_up: dict[str, int] | None = None


class WebhookReceiver:
    """Receives webhooks: authenticate, check, parse, store, answer."""

    def __init__(
        self,
        settings: Settings,
        ingest: Callable[[Notification, datetime], Awaitable[IngestResult]],
        metrics: Metrics,
        state: RuntimeState,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._ingest = ingest
        self._metrics = metrics
        self._state = state
        self._clock = clock
        self._auth = TokenCheck(
            settings.webhook_token, basic=True, refusal="missing or wrong credentials"
        )

    def handler(self, source: Source) -> Handler:
        async def receive(request: web.Request) -> web.Response:
            return await self._receive(request, source)

        return receive

    async def _receive(self, request: web.Request, source: Source) -> web.Response:
        started = time.perf_counter()
        alerts = 0
        try:
            self._auth.check(request)
            if self._state.shutting_down:
                raise HttpError(503, "shutting_down", "shutting down, retry later")
            _require_json(request)
            body = await _read_body(request, self._settings.max_body_bytes)
            notification = parse_body(source, body)
            alerts = len(notification.alerts)
            result = await self._ingest(notification, self._clock())
        except ConnectionResetError:
            raise  # the client went away mid-body: error_middleware says so, nobody to answer
        except Exception as exc:
            error = as_http_error(exc)
            if error.reason != "internal":
                self._metrics.webhook_rejected.labels(
                    source=source.value, reason=error.reason
                ).inc()
            elapsed = self._observe(source, started)
            level = logging.ERROR if error.status >= 500 else logging.WARNING
            log.log(
                level,
                "webhook refused",
                exc_info=exc if isinstance(exc, StoreError) or error.reason == "internal" else None,
                extra=fields(
                    source=source.value,
                    alerts=alerts,
                    outcome=error.reason,
                    status=error.status,
                    error=error.message,
                    duration_ms=round(elapsed * 1000, 2),
                ),
            )
            raise error from exc
        firing = sum(alert.firing for alert in notification.alerts)
        for status, count in (
            (AlertStatus.FIRING, firing),
            (AlertStatus.RESOLVED, alerts - firing),
        ):
            if count:
                self._metrics.received(source, status).inc(count)
        elapsed = self._observe(source, started)
        log_frequent(
            log,
            logging.INFO,
            "webhook accepted",
            source=source.value,
            alerts=alerts,
            new=result.new,
            updated=result.updated,
            duplicate=result.duplicate,
            # Alerts the sender left out (Alertmanager's max_alerts): they were never seen.
            truncated=notification.truncated_alerts or None,
            outcome="accepted",
            status=200,
            duration_ms=round(elapsed * 1000, 2),
        )
        # orjson: the answer of every webhook, in a storm thousands a second.
        accepted = {
            "status": "accepted",
            "alerts": alerts,
            "new": result.new,
            "updated": result.updated,
            "duplicate": result.duplicate,
        }
        return web.Response(body=orjson.dumps(accepted), content_type="application/json")

    def _observe(self, source: Source, started: float) -> float:
        elapsed = time.perf_counter() - started
        self._metrics.webhook_seconds(source).observe(elapsed)
        return elapsed


def _require_json(request: web.Request) -> None:
    # A sender that names no content type is taken at its word that the body is JSON.
    if "Content-Type" not in request.headers:
        return
    mime = request.content_type
    if mime != "application/json" and not mime.endswith("+json"):
        raise HttpError(
            415, "unsupported_media_type", f"content type must be application/json, got {mime}"
        )


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(413, "too_large", f"body larger than {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise HttpError(413, "too_large", f"body larger than {limit} bytes") from exc


def add_routes(
    app: web.Application,
    receiver: WebhookReceiver,
    metrics: Metrics,
    readiness: Callable[[], Awaitable[Readiness]],
) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        ready = await readiness()
        if ready.problems:
            return web.json_response(
                {"status": "not ready", "problems": ready.problems}, status=503
            )
        if ready.catching_up is not None:
            # Still 200: new webhooks are stored and paged while the backlog is sent.
            return web.json_response({"status": "ready", "catching_up": ready.catching_up})
        return web.json_response({"status": "ready"})

    app.router.add_post("/webhooks/alertmanager", receiver.handler(Source.ALERTMANAGER))
    app.router.add_post("/webhooks/grafana", receiver.handler(Source.GRAFANA))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
