"""The incident API, the acknowledgement link pages, and PagerDuty's webhooks.

- `/api/v1/incidents...` (bearer `ROUTER_API_TOKEN`): list, read with alerts and timeline,
  acknowledge, resolve.
- `/ack/{token}`: GET shows a small confirmation page and changes nothing (a chat client's link
  preview must not acknowledge); POST acknowledges.
- `/webhooks/pagerduty`: PagerDuty webhooks v3, signature checked against
  `ROUTER_PAGERDUTY_WEBHOOK_SECRET`; `incident.acknowledged` and `incident.resolved` act on the
  incident whose dedup_key PagerDuty carries back as `incident_key`; each signed `event.id` once,
  and only within `pagerduty.MAX_EVENT_AGE` of when it occurred.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from router.api.auth import TokenCheck
from router.api.browsers import page_headers
from router.api.views import detail_json, incident_json
from router.errors import HttpError, IncidentNotFound, InvalidLink
from router.incidents.escalation import STATE_FILTERS, IncidentState
from router.incidents.service import AckOutcome, AckResult, IncidentService
from router.links import AckLinks
from router.logs import fields
from router.outbox.channels import pagerduty
from router.routing import Routing
from router.settings import Settings
from router.store import Store
from router.types import Clock

log = logging.getLogger("router.api.incidents")


MAX_LIST = 500
MAX_NAME = 100


class IncidentApi:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        incidents: Callable[[], IncidentService],
        links: Callable[[], AckLinks],
        clock: Clock,
        routing: Callable[[], Routing],
    ) -> None:
        self._store = store
        self._routing = routing
        self._incidents = incidents
        self._links = links
        self._clock = clock
        self._auth = TokenCheck(
            settings.api_token, basic=False, refusal="missing or wrong API token"
        )
        pd_secret = settings.pagerduty_webhook_secret
        self._pd_secret = pd_secret.get_secret_value().encode() if pd_secret else None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/incidents", self.list_incidents)
        app.router.add_get("/api/v1/incidents/{id}", self.get_incident)
        app.router.add_post("/api/v1/incidents/{id}/ack", self.ack_incident)
        app.router.add_post("/api/v1/incidents/{id}/resolve", self.resolve_incident)
        app.router.add_get("/ack/{token}", self.ack_page)
        app.router.add_post("/ack/{token}", self.ack_by_link)
        app.router.add_post("/webhooks/pagerduty", self.pagerduty_webhook)

    # --- /api/v1 ---------------------------------------------------------------------------

    async def list_incidents(self, request: web.Request) -> web.Response:
        self._auth.check(request)
        state = request.query.get("state", "open")
        if state not in STATE_FILTERS:
            allowed = ", ".join(STATE_FILTERS)
            raise HttpError(400, "malformed", f"state: must be one of {allowed}, got {state!r}")
        limit = _int_query(request, "limit", 100, 1, MAX_LIST)
        records = await self._store.list_incidents(STATE_FILTERS[state], limit)
        return web.json_response(
            {"incidents": [incident_json(record, self._routing()) for record in records]}
        )

    async def get_incident(self, request: web.Request) -> web.Response:
        self._auth.check(request)
        detail = await self._store.incident_detail(_incident_id(request))
        if detail is None:
            raise HttpError(404, "not_found", "no such incident")
        return web.json_response(detail_json(detail, self._routing()))

    async def ack_incident(self, request: web.Request) -> web.Response:
        self._auth.check(request)
        who = await _who(request)
        outcome = await self._act(self._incidents().acknowledge, _incident_id(request), who, "api")
        return _outcome_json(outcome, self._routing())

    async def resolve_incident(self, request: web.Request) -> web.Response:
        self._auth.check(request)
        who = await _who(request)
        outcome = await self._act(self._incidents().resolve, _incident_id(request), who, "api")
        return _outcome_json(outcome, self._routing())

    async def _act(
        self, action: Callable[..., Any], incident_id: int, who: str, via: str, **kw: Any
    ) -> AckOutcome:
        try:
            outcome: AckOutcome = await action(incident_id, who, via, self._clock(), **kw)
        except IncidentNotFound:
            raise HttpError(404, "not_found", "no such incident") from None
        log.info(
            f"{action.__name__} request",
            extra=fields(incident=incident_id, by=who, via=via, changed=outcome.changed),
        )
        return outcome

    # --- acknowledgement links -------------------------------------------------------------

    async def ack_page(self, request: web.Request) -> web.Response:
        """The confirmation page: shows the incident, acknowledges nothing."""
        token = request.match_info["token"]
        try:
            claim = self._links().verify(token, self._clock())
        except InvalidLink as exc:
            return _html_page("Link not valid", f"<p>{html.escape(str(exc))}.</p>", status=403)
        detail = await self._store.incident_detail(claim.incident_id)
        if detail is None:
            return _html_page("Unknown incident", "<p>This incident does not exist.</p>", 404)
        incident = detail.incident
        heading = (incident.runbook or {}).get("heading") or "no runbook section"
        body = (
            f"<p><strong>{html.escape(incident.severity)}</strong> · "
            f"{html.escape(incident.title)}</p>"
            f"<p>State: {html.escape(incident.state.value)} · "
            f"opened {html.escape(incident.opened_at.isoformat())}</p>"
            f"<p>Runbook: {html.escape(heading)}</p>"
        )
        if incident.state not in (IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED):
            body += (
                f'<form method="post" action="/ack/{html.escape(token)}">'
                '<label>Your name <input name="by" maxlength="100" autocomplete="name"></label> '
                '<button type="submit">Acknowledge</button></form>'
            )
        return _html_page(f"Incident {incident.id}", body)

    async def ack_by_link(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        try:
            claim = self._links().verify(token, self._clock())
        except InvalidLink as exc:
            return _html_page("Link not valid", f"<p>{html.escape(str(exc))}.</p>", status=403)
        form = await request.post()
        name = str(form.get("by", "")).strip()[:MAX_NAME] or "the page's link"
        outcome = await self._act(
            self._incidents().acknowledge, claim.incident_id, name, "link", once=claim.nonce
        )
        if outcome.result is AckResult.ALREADY_USED:
            return _html_page("Link already used", "<p>This link was used before.</p>", 409)
        title = "Acknowledged" if outcome.changed else "Nothing to do"
        return _html_page(title, f"<p>{html.escape(outcome.message)}.</p>")

    # --- PagerDuty webhooks v3 -------------------------------------------------------------

    async def pagerduty_webhook(self, request: web.Request) -> web.Response:
        if self._pd_secret is None:
            raise HttpError(
                403,
                "unauthorized",
                "PagerDuty webhooks are disabled: set ROUTER_PAGERDUTY_WEBHOOK_SECRET",
            )
        notice = pagerduty.read_notice(
            self._pd_secret, await request.read(), request.headers, self._clock()
        )
        if notice is None:
            return web.json_response({"status": "ignored"})
        incidents = self._incidents()
        action = incidents.acknowledge if notice.action == "acknowledge" else incidents.resolve
        try:
            outcome = await self._act(
                action, notice.incident_id, notice.who, "pagerduty", once=notice.event_id
            )
        except HttpError:
            return web.json_response({"status": "ignored"})  # not an incident of ours (any more)
        status = "duplicate" if outcome.result is AckResult.ALREADY_USED else "accepted"
        return web.json_response({"status": status, "changed": outcome.changed})


# A number in a path or query: ASCII digits only (str.isdigit and int() also take "²" and "٣"),
# and few enough that int() never meets its 4300-digit limit nor the store its BIGINT.
_NUMBER = re.compile(r"^[0-9]{1,18}$")


def _incident_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not _NUMBER.match(raw):
        raise HttpError(404, "not_found", "no such incident")
    return int(raw)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _NUMBER.match(raw) or not low <= int(raw) <= high:
        raise HttpError(400, "malformed", f"{name}: must be a whole number from {low} to {high}")
    return int(raw)


async def _who(request: web.Request) -> str:
    """The `by` of a JSON body `{"by": "name"}`; an empty body means "api"."""
    raw = await request.read()
    if not raw.strip():
        return "api"
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise HttpError(400, "malformed", "body: not valid JSON") from exc
    by = document.get("by") if isinstance(document, dict) else None
    if by is None:
        return "api"
    if not isinstance(by, str) or not by.strip() or len(by) > MAX_NAME:
        raise HttpError(400, "malformed", f"by: must be a name of 1 to {MAX_NAME} characters")
    return by.strip()


def _outcome_json(outcome: AckOutcome, routing: Routing) -> web.Response:
    return web.json_response(
        {
            "incident": incident_json(outcome.incident, routing),
            "changed": outcome.changed,
            "message": outcome.message,
        }
    )


_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:2em auto;padding:0 1em}"
    "button{font-size:1.1em;padding:.5em 1.5em}"
)
# The link pages carry a token in their URL and a button that acts (browsers.page_headers); their
# one style is inline, allowed by its hash.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HTML_HEADERS = page_headers(f"'sha256-{_STYLE_HASH}'")


def _html_page(title: str, body: str, status: int = 200) -> web.Response:
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='robots' content='noindex'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=page, content_type="text/html", status=status, headers=HTML_HEADERS)
