"""The PagerDuty channel: Events API v2 through pdpyras, one session per routing key.

A trigger or an escalation is an Events API `trigger` with the incident's `dedup_key`; a tier's
storm page is a `trigger` with the storm's own `dedup_key` (`rr-storm-<id>:<tier>`), so that its
updates fold into one PagerDuty alert; an acknowledgement and a resolution are `acknowledge` and
`resolve` with the incident's key (PagerDuty applies them to the alert that the same routing key
opened: "Send an Alert Event", Alert De-Duplication). A repeated trigger with that key only adds a
log entry to the open alert, which is what makes at-least-once delivery harmless here.

pdpyras is synchronous, so each call runs in a worker thread; its own retries (which sleep in that
thread) are turned off, because the outbox owns retries, backoff and deadlines. Failures become
`DeliveryError`: 429, 5xx, time-outs and network errors are retryable, other 4xx are not ("Events
API v2 Overview", Response Codes & Retry Logic). A token bucket per routing key keeps under
PagerDuty's rate limit. The routing key is a secret: it is never logged nor put in an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeGuard

import requests

from router.errors import DeliveryError, FailureReason
from router.models import PageEvent
from router.outbox.budgets import PAGERDUTY_BUDGET
from router.outbox.channels.base import Delivery, Sent
from router.outbox.channels.ratelimit import RateLimit, TokenBucket
from router.outbox.context import PageAlert, PageContext
from router.outbox.render import PAGERDUTY_FORMAT, Renderer
from router.outbox.view import STATUS, page_zone, shorten, when
from router.runbooks.excerpt import cut_at_word

# pdpyras 5.4.1, its last release, warns at import that it is deprecated in favour of the
# `pagerduty` package. The design names pdpyras and the warning says nothing we can act on here,
# so that one warning (and only it) is silenced; tests run with warnings as errors.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message='The package "pdpyras" is deprecated', category=UserWarning
    )
    import pdpyras

# PagerDuty's Events API v2 takes "approximately 120 calls/minute per integration key", counted
# over a 60-second window looking back from now ("Events API Rate Limits", developer-docs
# events-API-v2/05-Rate-Limits). A bucket of 20 refilled at 1.5/s lets at most 20 + 90 = 110
# events through in any 60 seconds: under the limit with room for clock skew.
EVENTS_API_RATE_LIMIT = RateLimit(per_second=1.5, burst=20, max_wait=10.0)
# An Events API call that takes longer than this is abandoned and retried by the outbox.
EVENTS_API_TIMEOUT = 10.0
# PagerDuty's severities, most severe first (Events API v2: `payload.severity`).
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
_STANDARD_RANKS = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}
CLIENT_NAME = "runbook-router"
# Labels and annotations are copied into custom_details; bounded so that a huge annotation cannot
# push the event over PagerDuty's 512 KB limit and turn a page into a permanent 400.
_MAX_DETAIL_ITEMS = 64
_MAX_DETAIL_VALUE = 2_000
# Labels that name the affected machine, for `payload.source` ("preferably a hostname or FQDN").
_SOURCE_LABELS = ("instance", "host", "hostname", "pod", "node", "service", "job")

# pdpyras logs about its own retries, which are off here ("exceeded maximum number of attempts
# (-1)" on every failure); the outbox logs each outcome instead, so pdpyras is kept quiet.
_PDPYRAS_LOG = logging.getLogger("router.outbox.channels.pdpyras")
_PDPYRAS_LOG.setLevel(logging.CRITICAL)

SeverityRank = Callable[[str], int | None]
Sleep = Callable[[float], Awaitable[None]]


def pagerduty_severity(severity: str, rank: int | None = None) -> str:
    """P0..P3 as critical, error, warning, info; another severity by its rank in the rules."""
    index = _STANDARD_RANKS.get(severity.upper())
    if index is None:
        index = rank if rank is not None else 0  # unknown: page as the most severe
    return PAGERDUTY_SEVERITIES[min(max(index, 0), len(PAGERDUTY_SEVERITIES) - 1)]


class PagerDutyChannel:
    kind = "pagerduty"

    def __init__(
        self,
        events_url: str,
        renderer: Renderer,
        *,
        severity_rank: SeverityRank = lambda _severity: None,
        timeout: float = EVENTS_API_TIMEOUT,
        rate_limit: RateLimit = EVENTS_API_RATE_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._events_url = events_url.rstrip("/")
        self._renderer = renderer
        self._severity_rank = severity_rank
        self._timeout = timeout
        self._rate_limit = rate_limit
        self._monotonic = monotonic
        self._sleep = sleep
        # Sessions per routing key that no call is using. Normally one per key; more only while
        # calls for one key overlap, as a requests session is not made to be shared by threads.
        self._idle: dict[str, list[pdpyras.EventsAPISession]] = {}
        self._sessions: list[pdpyras.EventsAPISession] = []
        self._buckets: dict[str, TokenBucket] = {}

    async def send(self, delivery: Delivery) -> Sent:
        routing_key = delivery.target.target
        dedup_key = delivery.context.dedup_key
        if not dedup_key:
            raise DeliveryError(
                "the page has no dedup_key", retryable=False, reason=FailureReason.INVALID_PAGE
            )
        if delivery.event in (PageEvent.TRIGGER, PageEvent.ESCALATE, PageEvent.STORM):
            event = self.trigger_event(delivery)
        elif delivery.event in (PageEvent.ACKNOWLEDGE, PageEvent.RESOLVE):
            event = {"event_action": delivery.event, "dedup_key": dedup_key}
        else:
            raise DeliveryError(
                f"no Events API action for {delivery.event!r}",
                retryable=False,
                reason=FailureReason.INVALID_PAGE,
            )
        await self._wait_for_room(routing_key)
        session = self._checkout(routing_key)
        try:
            await asyncio.to_thread(_send_event, session, event)
        finally:
            self._idle.setdefault(routing_key, []).append(session)
        payload = event.get("payload")
        title = str(payload["summary"]) if isinstance(payload, dict) else delivery.event
        return Sent(title, json.dumps(event, ensure_ascii=False))

    def trigger_event(self, delivery: Delivery) -> dict[str, Any]:
        """The Events API v2 `trigger` event for a page, without its routing key."""
        context = delivery.context
        alert = context.alert
        severity = context.severity
        rank = context.severity_rank
        if rank is None:
            rank = self._severity_rank(severity)
        page = self._renderer.render(
            PAGERDUTY_FORMAT, delivery.event, context, timezone=delivery.timezone
        )
        # PagerDuty refuses an event without a summary: a template that gives none falls back.
        summary = page.title or shorten(context.title or "alert", 1024)
        payload: dict[str, Any] = {
            "summary": summary,
            "source": _source(alert),
            "severity": pagerduty_severity(severity, rank),
        }
        if alert.starts_at:
            payload["timestamp"] = alert.starts_at
        if alert.name:
            payload["class"] = alert.name
        group = alert.labels.get("service") or alert.labels.get("job")
        if group:
            payload["group"] = group
        payload["custom_details"] = self._details(delivery, severity)
        event: dict[str, Any] = {
            "event_action": "trigger",
            "dedup_key": context.dedup_key,
            "payload": payload,
            "links": _links(context),
            "client": CLIENT_NAME,
        }
        if _is_http(context.incident_url):
            event["client_url"] = context.incident_url
        return event

    def _details(self, delivery: Delivery, severity: str) -> dict[str, Any]:
        context = delivery.context
        if context.storm is not None:
            storm = context.storm
            return {
                "storm": storm.headline,
                "tier": delivery.tier,
                "incidents": storm.incidents,
                "by_severity": dict(storm.by_severity),
                "top_services": dict(storm.top_services),
                "incident_list": storm.list_url,
                "status": "storm over" if storm.ended else "storm",
            }
        alert = context.alert
        runbook = context.runbook
        excerpt = delivery.excerpt(PAGERDUTY_BUDGET, "text") if runbook else ""
        if not excerpt and runbook:
            excerpt = f"{runbook.heading or runbook.anchor}: {runbook.link}"
        elif not excerpt:
            excerpt = _possible_sections(context) or "no runbook section matched this alert"
        next_escalation = context.next_escalation
        return {
            "severity": severity,
            "status": STATUS.get(delivery.event, delivery.event),
            "tier": delivery.tier,
            "step": context.step,
            "runbook": excerpt,
            "runbook_found_by": runbook.method if runbook else "none",
            "alert": alert.name,
            "labels": _bounded(alert.labels),
            "annotations": _bounded(alert.annotations),
            "value": alert.value,
            "matched_rules": list(context.matched_rules),
            "reason": context.reason,
            "ack_link": context.ack_url,
            "incident_url": context.incident_url,
            "next_escalation": (
                f"{', '.join(next_escalation.tiers)} at "
                f"{when(next_escalation.at, page_zone(delivery.timezone))} unless acknowledged"
                if next_escalation
                else None
            ),
        }

    async def _wait_for_room(self, routing_key: str) -> None:
        now = self._monotonic()
        bucket = self._buckets.get(routing_key)
        if bucket is None:
            bucket = self._buckets[routing_key] = TokenBucket(self._rate_limit, now)
        wait = bucket.reserve(now)
        if wait is None:
            raise DeliveryError(
                f"over the Events API rate limit for this routing key for more than "
                f"{self._rate_limit.max_wait:g}s",
                retryable=True,
                reason=FailureReason.RATE_LIMITED,
            )
        if wait > 0:
            await self._sleep(wait)

    def _checkout(self, routing_key: str) -> pdpyras.EventsAPISession:
        idle = self._idle.get(routing_key)
        if idle:
            return idle.pop()
        session = pdpyras.EventsAPISession(routing_key)
        session.url = self._events_url
        session.log = _PDPYRAS_LOG
        session.timeout = self._timeout
        # pdpyras retries by itself, sleeping in its thread: 429 without end, 500-504 a few
        # times, network errors three times. The outbox owns retries, so all are turned off:
        # a status listed in `retry` is returned at once because the attempts made (0)
        # already exceed max_http_attempts (-1), and a network error raises on the first try.
        session.retry = {status: 1 for status in (429, 500, 502, 503, 504)}
        session.max_http_attempts = -1
        session.max_network_attempts = 0
        self._sessions.append(session)
        return session

    async def close(self) -> None:
        sessions, self._sessions, self._idle = self._sessions, [], {}
        for session in sessions:
            session.close()


def _send_event(session: pdpyras.EventsAPISession, event: dict[str, Any]) -> None:
    """Send one event (in a worker thread); DeliveryError on any failure."""
    body = dict(event)
    action = body.pop("event_action")
    dedup_key = body.pop("dedup_key")
    try:
        session.send_event(action, dedup_key=dedup_key, **body)
    except pdpyras.PDClientError as exc:
        raise _delivery_error(exc) from exc
    except ValueError as exc:  # pdpyras refused the event before sending it
        raise DeliveryError(
            f"invalid event: {exc}", retryable=False, reason=FailureReason.INVALID_PAGE
        ) from exc


def _delivery_error(exc: pdpyras.PDClientError) -> DeliveryError:
    response = exc.response
    if response is not None and response.status_code:
        status = int(response.status_code)
        answer = shorten(response.text or "", 200)
        if 200 <= status < 300:  # accepted, but not the answer pdpyras expects
            return DeliveryError(
                f"PagerDuty answered HTTP {status} with an unexpected body: {answer}",
                retryable=True,
                reason=FailureReason.BAD_RESPONSE,
            )
        retryable = status == 429 or status >= 500
        return DeliveryError(
            f"PagerDuty answered HTTP {status}: {answer}",
            retryable=retryable,
            reason=FailureReason.for_status(status),
        )
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.Timeout):
        return DeliveryError(
            f"PagerDuty did not answer in time ({type(cause).__name__})",
            retryable=True,
            reason=FailureReason.TIMEOUT,
        )
    what = type(cause).__name__ if cause is not None else "error"
    return DeliveryError(
        f"PagerDuty unreachable ({what})", retryable=True, reason=FailureReason.NETWORK
    )


def _possible_sections(context: PageContext) -> str:
    """The best candidates of a page without a section, one per line with their confidence."""
    lines = [
        f"- {p.heading} ({min(p.confidence, 0.99):.0%} confidence): {p.link}"
        for p in context.possible_sections
    ]
    if not lines:
        return ""
    return "possible runbook sections (not sure enough to attach one):\n" + "\n".join(lines)


def _links(context: PageContext) -> list[dict[str, str]]:
    """Events API `links`: the runbook section, the acknowledgement link, the alert's sources."""
    runbook = context.runbook
    alert = context.alert
    candidates: list[tuple[str | None, str]] = []
    if runbook is not None:
        candidates.append((runbook.link, f"Runbook: {runbook.heading or runbook.anchor}"))
    candidates += [
        (p.link, f"Possible runbook section: {p.heading}") for p in context.possible_sections
    ]
    candidates += [
        (context.ack_url, "Acknowledge in runbook-router"),
        (alert.generator_url, "Alert source"),
        (alert.dashboard_url, "Dashboard"),
        (alert.panel_url, "Dashboard panel"),
        (alert.silence_url, "Silence this alert"),
    ]
    return [{"href": href, "text": text} for href, text in candidates if _is_http(href)]


def _source(alert: PageAlert) -> str:
    for name in _SOURCE_LABELS:
        if alert.labels.get(name):
            return alert.labels[name]
    return alert.source or CLIENT_NAME


def _bounded(values: Mapping[str, Any]) -> dict[str, str]:
    items = sorted(values.items())[:_MAX_DETAIL_ITEMS]
    return {str(k): cut_at_word(str(v), _MAX_DETAIL_VALUE) for k, v in items}


def _is_http(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith(("http://", "https://"))
