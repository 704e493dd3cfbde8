"""Heartbeat pings and the heartbeats' state.

- `POST /heartbeats/{name}` (bearer `ROUTER_HEARTBEAT_TOKEN`, or the webhook token when unset,
  also as a basic-auth password): a beat of the heartbeat `name` of the rules; it resolves the
  heartbeat's missed incident. An unknown name is 404 and names those the rules define. The body,
  if any, is not read.
- `GET /api/v1/heartbeats` (bearer `ROUTER_API_TOKEN`): each heartbeat of the rules with its last
  beat, when it falls due, and whether it is missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from router.api.auth import TokenCheck
from router.api.http import RuntimeState
from router.errors import HttpError
from router.incidents.schedule import format_duration
from router.incidents.service import IncidentService
from router.logs import fields
from router.settings import Settings
from router.types import Clock

log = logging.getLogger("router.api.heartbeats")


class HeartbeatApi:
    def __init__(
        self,
        settings: Settings,
        incidents: Callable[[], IncidentService],
        state: RuntimeState,
        clock: Clock,
    ) -> None:
        self._incidents = incidents
        self._state = state
        self._clock = clock
        self._ping_auth = TokenCheck(
            settings.ping_token, basic=True, refusal="missing or wrong heartbeat token"
        )
        self._api_auth = TokenCheck(
            settings.api_token, basic=False, refusal="missing or wrong API token"
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/heartbeats/{name}", self.ping)
        app.router.add_get("/api/v1/heartbeats", self.list_heartbeats)

    async def ping(self, request: web.Request) -> web.Response:
        self._ping_auth.check(request)
        if self._state.shutting_down:
            raise HttpError(503, "shutting_down", "shutting down, retry later")
        name = request.match_info["name"]
        resolved = await self._incidents().beat(name, "POST /heartbeats", self._clock())
        log.info("heartbeat ping", extra=fields(heartbeat=name, resolved_incident=resolved))
        return web.json_response(
            {"status": "accepted", "heartbeat": name, "resolved_incident": resolved}
        )

    async def list_heartbeats(self, request: web.Request) -> web.Response:
        self._api_auth.check(request)
        states = await self._incidents().heartbeat_states(self._clock())
        listed: list[dict[str, Any]] = [
            {
                "name": state.heartbeat.name,
                "matchers": state.heartbeat.describe_matchers() or None,
                "interval": format_duration(state.heartbeat.interval),
                "severity": state.heartbeat.severity,
                "policy": state.heartbeat.policy,
                "state": "missed" if state.missed else "ok",
                "last_beat_at": _iso(state.last_beat_at),
                "last_beat_via": state.last_beat_via,
                "missed_since": _iso(state.missed_since),
                "due_at": _iso(state.due_at),
            }
            for state in states
        ]
        return web.json_response({"heartbeats": listed})


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
