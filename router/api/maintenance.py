"""The maintenance API (bearer `ROUTER_API_TOKEN`, as the incident API):

- `GET /api/v1/maintenance`: every window of the rules, and every run-time window that has not
  ended, with whether it is in force now and until when;
- `POST /api/v1/maintenance`: make a run-time window, `{"matchers": [...], "duration": "2h"}` or
  with `ends_at` (and optionally `starts_at`, `name`, `reason`, `include_p0`, `by`); 201;
- `DELETE /api/v1/maintenance/{name}`: end a run-time window now.

Bad input is 400 naming the field, and changes nothing; a name in use is 409.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from router.api.auth import TokenCheck
from router.errors import PayloadError
from router.incidents.schedule import parse_duration
from router.logs import fields
from router.maintenance.service import MaintenanceService, NewWindow, WindowState
from router.rules.maintenance_section import parse_instant
from router.settings import Settings
from router.types import Clock

log = logging.getLogger("router.api.maintenance")

MAX_TEXT = 500
# A run-time window is for maintenance, not for muting an alert for good: that is a rules change.
LONGEST_WINDOW = timedelta(days=366)
_FIELDS = ("matchers", "duration", "starts_at", "ends_at", "name", "reason", "include_p0", "by")


class MaintenanceApi:
    def __init__(self, settings: Settings, maintenance: MaintenanceService, clock: Clock) -> None:
        self._maintenance = maintenance
        self._clock = clock
        self._auth = TokenCheck(
            settings.api_token, basic=False, refusal="missing or wrong API token"
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/maintenance", self.list_windows)
        app.router.add_post("/api/v1/maintenance", self.add_window)
        app.router.add_delete("/api/v1/maintenance/{name}", self.end_window)

    async def list_windows(self, request: web.Request) -> web.Response:
        self._auth.check(request)
        states = await self._maintenance.windows(self._clock())
        return web.json_response({"windows": [window_json(state) for state in states]})

    async def add_window(self, request: web.Request) -> web.Response:
        self._auth.check(request)
        now = self._clock()
        wanted, by = new_window(await _document(request), now)
        window = await self._maintenance.add(wanted, by, now)
        log.info(
            "maintenance window added",
            extra=fields(window=window.name, by=by, ends_at=_iso(window.ends_at)),
        )
        state = WindowState(window, window.active_until(now))
        return web.json_response({"window": window_json(state)}, status=201)

    async def end_window(self, request: web.Request) -> web.Response:
        self._auth.check(request)
        name = request.match_info["name"]
        window = await self._maintenance.end(name, self._clock())
        log.info("maintenance window ended", extra=fields(window=window.name))
        return web.json_response(
            {"window": window_json(WindowState(window, None)), "message": f"ended {name}"}
        )


def window_json(state: WindowState) -> dict[str, Any]:
    """A window as the API lists it (docs/incidents.md)."""
    window = state.window
    return {
        "name": window.name,
        "matchers": list(window.matcher_texts),
        "reason": window.reason,
        "include_p0": window.include_p0,
        "source": "rules" if window.from_rules else "api",
        "where": window.source if window.from_rules else None,
        "recurring": bool(window.intervals),
        "starts_at": _iso(window.starts_at),
        "ends_at": _iso(window.ends_at),
        "created_by": window.created_by or None,
        "active": state.active,
        "until": _iso(state.until),
    }


def new_window(document: dict[str, Any], now: datetime) -> tuple[NewWindow, str]:
    """The window a POST body asks for, and who asked; PayloadError naming the field if bad."""
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise PayloadError(f"unknown field (known: {', '.join(_FIELDS)})", unknown[0])
    matchers = document.get("matchers")
    if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
        raise PayloadError(
            'must be a list of matchers such as ["service=\\"ledger\\""]', "matchers"
        )
    for matcher in matchers:
        _check_text(matcher, "matchers")
    starts_at = _instant(document, "starts_at")
    ends_at = _instant(document, "ends_at")
    duration = document.get("duration")
    if (duration is None) == (ends_at is None):
        raise PayloadError("give either duration (such as 2h) or ends_at", "duration")
    if duration is not None:
        ends_at = (starts_at or now) + _duration(duration)
    assert ends_at is not None
    include_p0 = document.get("include_p0", False)
    if not isinstance(include_p0, bool):
        raise PayloadError("must be true or false", "include_p0")
    wanted = NewWindow(
        matchers=tuple(matchers),
        starts_at=starts_at,
        ends_at=ends_at,
        name=_optional_text(document, "name", 100),
        reason=_optional_text(document, "reason", MAX_TEXT) or "",
        include_p0=include_p0,
    )
    return wanted, _optional_text(document, "by", 100) or "api"


async def _document(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError("not valid JSON", "body") from exc
    if not isinstance(document, dict):
        raise PayloadError("must be a JSON object", "body")
    return document


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise PayloadError("must be a duration such as 2h or 30m", "duration")
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise PayloadError(str(exc), "duration") from None
    if not timedelta(0) < duration <= LONGEST_WINDOW:
        raise PayloadError("must be longer than 0 and at most 366 days", "duration")
    return duration


def _instant(document: dict[str, Any], name: str) -> datetime | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError("must be a time such as 2026-12-01T14:00:00Z", name)
    _check_text(value, name)
    try:
        at = parse_instant(value)
    except ValueError as exc:
        raise PayloadError(str(exc), name) from None
    # Both databases store microseconds since 1970 in 64 bits; far from now is a typo anyway.
    if not 1970 < at.year < 9999:
        raise PayloadError("must be between the years 1971 and 9998", name)
    return at


def _optional_text(document: dict[str, Any], name: str, limit: int) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise PayloadError(f"must be a text of 1 to {limit} characters", name)
    _check_text(value, name)
    return value.strip()


def _check_text(value: str, name: str) -> None:
    """Refuse what either database cannot store or a log line should not hold: control
    characters (NUL among them) and lone surrogates."""
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise PayloadError("must not hold control characters", name)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


__all__ = ["MaintenanceApi", "window_json"]
