"""The web pages' routes: what each request may see (router/web/access.py), and the pages.

| path | page |
|---|---|
| `GET /`, `GET /incidents` | incidents, newest first, 200 a `page`; `state`, `q` ... filter |
| `GET /incidents/{id}` | one incident: alerts, runbook section, timeline, deliveries, buttons |
| `POST /incidents/{id}/ack`, `/resolve` | the buttons: `IncidentService.acknowledge` / `resolve` |
| `GET /routing`, `POST /routing` | the `route` dry run of a pasted webhook body |
| `GET /rules` | severities, tiers, channels, policies, rules, heartbeats, maintenance windows |
| `POST /rules/replay` | the `replay` of the stored history through a rules directory on disk |
| `GET /static/console.css` | the style sheet |

Every page is HTML without script; forms post only to the router. A form that acts carries a
signed form token (router/links.py), so a post must come from a page the router served.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import markupsafe
from aiohttp import web

from router.api.browsers import page_headers
from router.api.views import next_escalation
from router.dryrun import AlertRoute, parse_payload, route_notification
from router.errors import ConfigError, IncidentNotFound, InvalidLink, PayloadError, StoreError
from router.incidents.escalation import STATE_FILTERS
from router.incidents.schedule import format_duration, parse_duration
from router.incidents.service import IncidentService
from router.links import AckLinks
from router.logs import fields
from router.maintenance.service import MaintenanceService
from router.maintenance.windows import Window
from router.outbox.render import Renderer
from router.replay import minute
from router.routing import Routing, format_evidence, percent
from router.settings import Settings
from router.shadow import RecentDisagreements
from router.store import Store
from router.store.base import IncidentFilter
from router.types import Clock
from router.web import views
from router.web.access import REALM, OtherSite, Refused, Viewer, WebAccess
from router.web.markdown import section_html
from router.web.replays import MAX_PERIOD, ReplayBusy, Replays

log = logging.getLogger("router.web")

HERE = Path(__file__).resolve().parent
STYLE_SHEET = (HERE / "static" / "console.css").read_bytes()

# The style sheet is the router's own (`/static/console.css`): nothing else is loaded.
HEADERS = page_headers("'self'")

# "all" first: the list's default.
STATES = {"all": STATE_FILTERS["all"], **STATE_FILTERS}
LIST_LIMIT = 200
# Deep enough for a year of a busy router's incidents; an offset deeper than that is a typo.
MAX_PAGE = 10_000
DEFAULT_REPLAY_PERIOD = "7d"
MAX_FIELD = 100
_NUMBER = re.compile(r"^[0-9]{1,18}$")


class BadRequest(Exception):
    """A query or form value the page cannot use: a 400 page that says which."""


class ConsolePages:
    def __init__(
        self,
        settings: Settings,
        access: WebAccess,
        store: Store,
        incidents: Callable[[], IncidentService],
        routing: Callable[[], Routing],
        maintenance: MaintenanceService,
        links: Callable[[], AckLinks],
        clock: Clock,
        disagreements: RecentDisagreements | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._incidents = incidents
        self._routing = routing
        self._maintenance = maintenance
        self._links = links
        self._clock = clock
        self._access = access
        self._replays = Replays(settings)
        self._disagreements = disagreements or RecentDisagreements()
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters["when"] = _when
        self._templates.filters["percent"] = percent
        self._templates.filters["duration"] = format_duration
        # markdown-it escapes the runbook's raw HTML itself (router/web/markdown.py).
        self._templates.filters["markdown"] = lambda text: markupsafe.Markup(section_html(text))  # noqa: S704
        self._templates.filters["evidence"] = format_evidence

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.incident_list)
        app.router.add_get("/incidents", self.incident_list)
        app.router.add_get("/incidents/{id}", self.incident_page)
        app.router.add_post("/incidents/{id}/ack", self.acknowledge)
        app.router.add_post("/incidents/{id}/resolve", self.resolve)
        app.router.add_get("/routing", self.routing_page)
        app.router.add_post("/routing", self.routing_page)
        app.router.add_get("/rules", self.rules_page)
        app.router.add_post("/rules/replay", self.replay_page)
        app.router.add_get("/static/console.css", self.style_sheet)

    # --- rendering -----------------------------------------------------------------------------

    def _page(self, template: str, status: int = 200, **values: Any) -> web.Response:
        text = self._templates.get_template(template).render(now=self._clock(), **values)
        return web.Response(text=text, content_type="text/html", status=status, headers=HEADERS)

    def _message(self, title: str, message: str, status: int) -> web.Response:
        response = self._page("message.html.j2", status, title=title, message=message, nav=False)
        if status == 401 and self._access.basic_auth:
            response.headers["WWW-Authenticate"] = REALM
        return response

    def _refused(self, exc: Refused) -> web.Response:
        if isinstance(exc, OtherSite):
            return self._message("Another site", str(exc), 403)
        return self._message("Sign in", str(exc), 401)

    def _viewer(self, request: web.Request) -> Viewer:
        return self._access.viewer(request)

    # --- pages ---------------------------------------------------------------------------------

    async def style_sheet(self, request: web.Request) -> web.Response:
        return web.Response(body=STYLE_SHEET, content_type="text/css", headers=HEADERS)

    async def incident_list(self, request: web.Request) -> web.Response:
        try:
            viewer = self._viewer(request)
            where, chosen = self._filter(request)
        except Refused as exc:
            return self._refused(exc)
        except BadRequest as exc:
            return self._message("Bad filter", str(exc), 400)
        number = int(chosen.pop("page"))
        # One more than a page: whether an older page exists, without counting them all.
        records = await self._store.search_incidents(
            where, LIST_LIMIT + 1, (number - 1) * LIST_LIMIT
        )
        rows = views.incident_rows(self._routing(), records[:LIST_LIMIT], self._clock())
        filters = {name: value for name, value in chosen.items() if value and value != "all"}
        return self._page(
            "incidents.html.j2",
            title="Incidents",
            viewer=viewer,
            rows=rows,
            chosen=chosen,
            states=list(STATES),
            severities=[level.name for level in self._routing().rules.severities],
            limit=LIST_LIMIT,
            page=number,
            newer=_page_link(filters, number - 1) if number > 1 else None,
            older=_page_link(filters, number + 1) if len(records) > LIST_LIMIT else None,
        )

    def _filter(self, request: web.Request) -> tuple[IncidentFilter, dict[str, str]]:
        query = request.query
        chosen = {
            name: query.get(name, "").strip() for name in ("state", "severity", "service", "q")
        }
        for name, value in chosen.items():
            _check_field(name, value)
        state = chosen["state"] or "all"
        if state not in STATES:
            raise BadRequest(f"state: one of {', '.join(STATES)}, not {state!r}")
        known = [level.name for level in self._routing().rules.severities]
        if chosen["severity"] and chosen["severity"] not in known:
            raise BadRequest(f"severity: one of {', '.join(known)}, not {chosen['severity']!r}")
        where = IncidentFilter(
            states=STATES[state],
            severity=chosen["severity"] or None,
            service=chosen["service"] or None,
            text=chosen["q"] or None,
        )
        page = query.get("page", "1").strip() or "1"
        if not _NUMBER.match(page) or not 1 <= int(page) <= MAX_PAGE:
            raise BadRequest(f"page: a number from 1 to {MAX_PAGE}, not {page[:20]!r}")
        return where, {**chosen, "state": state, "page": page}

    async def incident_page(self, request: web.Request) -> web.Response:
        incident_id = _incident_id(request)
        view = request.query.get("view", "")
        try:
            viewer = self._incident_viewer(request, incident_id, view)
        except Refused as exc:
            return self._refused(exc)
        except InvalidLink as exc:
            return self._message("Link not valid", f"{exc}.", 403)
        detail = await self._store.incident_detail(incident_id) if incident_id else None
        if detail is None:
            return self._message("Unknown incident", "This incident does not exist.", 404)
        routing = self._routing()
        incident = detail.incident
        return self._page(
            "incident.html.j2",
            title=f"Incident {incident.id}",
            viewer=viewer,
            incident=incident,
            age=views.age(incident.opened_at, self._clock()),
            next=next_escalation(routing, incident),
            alerts=[views.alert_view(alert) for alert in detail.alerts],
            runbook=views.runbook_view(routing, incident.runbook),
            candidates=incident.classification.get("runbook_candidates", []),
            events=detail.events,
            deliveries=views.delivery_views(detail.pages),
            form_token=self._links().issue_form(_form_viewer(viewer, incident_id), self._clock()),
            view=view,
            # A viewer through a link or an open router says who they are in the form.
            ask_name=viewer.name is None or viewer.name.startswith("link:"),
        )

    def _incident_viewer(self, request: web.Request, incident_id: int, view: str) -> Viewer:
        """The signed link of a page opens its incident without a login; else the usual check."""
        if view:
            self._links().verify_view(incident_id, view, self._clock())
            return Viewer(f"link:{incident_id}")
        return self._viewer(request)

    async def acknowledge(self, request: web.Request) -> web.Response:
        return await self._act(request, "acknowledge")

    async def resolve(self, request: web.Request) -> web.Response:
        return await self._act(request, "resolve")

    async def _act(self, request: web.Request, action: str) -> web.Response:
        incident_id = _incident_id(request)
        form = await request.post()
        view = str(form.get("view", ""))
        try:
            viewer = self._incident_viewer(request, incident_id, view)
        except Refused as exc:
            return self._refused(exc)
        except InvalidLink as exc:
            return self._message("Link not valid", f"{exc}.", 403)
        token = str(form.get("form_token", ""))
        if not self._links().verify_form(_form_viewer(viewer, incident_id), token, self._clock()):
            return self._message(
                "Form expired", "This form is too old or not ours: reload the page and retry.", 403
            )
        typed = str(form.get("by", "")).strip()
        try:
            _check_field("by", typed)
        except BadRequest as exc:
            return self._message("Bad name", str(exc), 400)
        who = viewer.name if viewer.name and not viewer.name.startswith("link:") else None
        who = who or typed or "the web page"
        service = self._incidents()
        method = service.acknowledge if action == "acknowledge" else service.resolve
        try:
            outcome = await method(incident_id, who, "web", self._clock())
        except IncidentNotFound:
            return self._message("Unknown incident", "This incident does not exist.", 404)
        log.info(
            f"{action} request",
            extra=fields(incident=incident_id, by=who, via="web", changed=outcome.changed),
        )
        # Post, then redirect: reloading the incident page does not post again.
        target = f"/incidents/{incident_id}"
        if view:
            target += "?" + urlencode({"view": view})
        raise web.HTTPSeeOther(target, headers=HEADERS)

    async def routing_page(self, request: web.Request) -> web.Response:
        try:
            viewer = self._viewer(request)
        except Refused as exc:
            return self._refused(exc)
        payload, routes, problem = "", None, None
        at = self._clock()
        if request.method == "POST":
            form = await request.post()
            payload = str(form.get("payload", ""))
            try:
                windows = await self._store.list_maintenance_windows(at)
            except StoreError:
                windows = []  # the rules' windows are still shown
            routes, problem = self._dry_run(payload, at, windows)
        return self._page(
            "routing.html.j2",
            400 if problem else 200,
            title="Routing",
            viewer=viewer,
            payload=payload,
            routes=routes,
            problem=problem,
            at=at,
            zone=self._routing().rules.business_hours.tz,
        )

    def _dry_run(
        self, payload: str, at: datetime, windows: list[Window]
    ) -> tuple[list[AlertRoute] | None, str | None]:
        # The dry run of `runbook-router route`, on the rules and templates in force.
        if not payload.strip():
            return None, "paste an Alertmanager or Grafana webhook body"
        try:
            notification = parse_payload(payload.encode())
        except PayloadError as exc:
            return None, str(exc)
        templates = self._settings.rules_dir / "templates"
        renderer = Renderer(templates if templates.is_dir() else None)
        return route_notification(self._routing(), notification, at, renderer, windows), None

    async def rules_page(self, request: web.Request) -> web.Response:
        try:
            viewer = self._viewer(request)
        except Refused as exc:
            return self._refused(exc)
        routing = self._routing()
        now = self._clock()
        heartbeats = await self._incidents().heartbeat_states(now)
        windows = await self._maintenance.windows(now)
        return self._page(
            "rules.html.j2",
            title="Rules",
            viewer=viewer,
            rules=routing.rules,
            heartbeats=heartbeats,
            windows=windows,
            policies=views.policy_rows(routing.rules),
            rule_rows=views.rule_rows(routing),
            choices=self._replays.choices(),
            since=DEFAULT_REPLAY_PERIOD,
            shadow=self._settings.shadow_rules_dir,
            disagreements=self._disagreements.newest_first(),
        )

    async def replay_page(self, request: web.Request) -> web.Response:
        """The stored history of a period through a rules directory the Rules page offers."""
        try:
            viewer = self._viewer(request)
        except Refused as exc:
            return self._refused(exc)
        form = await request.post()
        chosen, since_text = str(form.get("rules", "")), str(form.get("since", "")).strip()
        choice = next((c for c in self._replays.choices() if str(c.path) == chosen), None)
        if choice is None:
            return self._message(
                "Unknown rules directory",
                "Choose one of the rules directories the Rules page offers.",
                400,
            )
        try:
            _check_field("since", since_text)
            period = _replay_period(since_text or DEFAULT_REPLAY_PERIOD)
        except BadRequest as exc:
            return self._message("Bad period", str(exc), 400)
        until = self._clock()
        try:
            report = await self._replays.run(self._routing(), choice.path, until - period, until)
        except ReplayBusy as exc:
            return self._message("Replay running", f"{exc}.", 429)
        except ConfigError as exc:
            return self._page(
                "replay.html.j2",
                400,
                title="Replay",
                viewer=viewer,
                choice=choice,
                report=None,
                problems=[str(exc), *exc.problems],
            )
        except StoreError as exc:
            return self._message("History not readable", f"{exc}.", 503)
        log.info(
            "replay from the web page",
            extra=fields(rules=str(choice.path), since=since_text, differences=len(report.diffs)),
        )
        return self._page(
            "replay.html.j2",
            title="Replay",
            viewer=viewer,
            choice=choice,
            report=report,
            problems=[],
            minute=minute,
        )


def _check_field(name: str, value: str) -> None:
    """A filter or a name: short, and without control characters (PostgreSQL stores no NUL, and
    no name needs a line break)."""
    if len(value) > MAX_FIELD:
        raise BadRequest(f"{name}: at most {MAX_FIELD} characters")
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise BadRequest(f"{name}: no control characters")
    if any(0xD800 <= ord(character) <= 0xDFFF for character in value):
        raise BadRequest(f"{name}: not valid text")


def _replay_period(text: str) -> timedelta:
    """A replay's period from the form: a duration such as 7d, longer than 0 and at most a year."""
    try:
        period = parse_duration(text)
    except ValueError as exc:
        raise BadRequest(f"since: {exc}") from exc
    if not timedelta(0) < period <= MAX_PERIOD:
        raise BadRequest(f"since: longer than 0 and at most {format_duration(MAX_PERIOD)}")
    return period


def _page_link(filters: dict[str, str], number: int) -> str:
    """The incidents list with the same filters, at page `number` (1 is the newest)."""
    query = {**filters, "page": str(number)} if number > 1 else filters
    return "/incidents" + ("?" + urlencode(query) if query else "")


def _incident_id(request: web.Request) -> int:
    """The incident of the path; 0 (no incident) for anything but a plain number."""
    raw = request.match_info["id"]
    return int(raw) if _NUMBER.match(raw) else 0


def _form_viewer(viewer: Viewer, incident_id: int) -> str:
    """Whom a form token is for: the user, or the incident a link opened (`link:ID`)."""
    return viewer.name or f"open:{incident_id}"


def _when(value: datetime | None, zone: tzinfo = UTC) -> str:
    """A time as the pages show it: to the second, in UTC unless a zone is given."""
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")
