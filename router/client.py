"""The terminal's view of a running daemon: `incidents`, `ack ID`, `resolve ID` and
`maintenance list|add|end` over its API.

The daemon is `ROUTER_URL` (default http://127.0.0.1:9099) and the API's bearer token
`ROUTER_API_TOKEN`, the same variable the daemon reads. Only the standard library: the command
must work wherever the package is installed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from router.incidents.schedule import format_duration

DEFAULT_URL = "http://127.0.0.1:9099"
TIMEOUT_SECONDS = 10.0


class ClientError(Exception):
    """The daemon could not be reached, or refused; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Api:
    url: str
    token: str | None

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Api:
        url = (env.get("ROUTER_URL") or DEFAULT_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ClientError(f"ROUTER_URL must be an http:// or https:// URL, got {url!r}")
        return cls(url, env.get("ROUTER_API_TOKEN") or None)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            with error:
                raise ClientError(f"{self.url} answered {error.code}: {_error(error)}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach {self.url} (ROUTER_URL): {reason}") from None


def _error(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("error", error.reason))
    except (ValueError, AttributeError):
        return str(error.reason)


def incident_table(incidents: list[dict[str, Any]], now: datetime) -> str:
    """Incidents as aligned columns, newest first as the API lists them."""
    if not incidents:
        return "no incidents\n"
    header = ("ID", "SEV", "STATE", "AGE", "ACKNOWLEDGED BY", "NEXT ESCALATION", "TITLE")
    rows = [header]
    for incident in incidents:
        opened = datetime.fromisoformat(incident["opened_at"])
        due = incident.get("next_action_at")
        escalates = incident.get("next_action") == "escalate" and isinstance(due, str)
        rows.append(
            (
                str(incident["id"]),
                incident["severity"],
                incident["state"],
                format_duration(max(now - opened, timedelta(0))),
                incident.get("acknowledged_by") or "-",
                _next_escalation(str(due), incident.get("next_tiers")) if escalates else "-",
                incident["title"],
            )
        )
    return _columns(rows)


def _next_escalation(due: str, tiers: Any) -> str:
    """`team-lead at 12-07 03:25 UTC`; the time alone from a daemon that does not say the tiers."""
    at = datetime.fromisoformat(due).astimezone(UTC).strftime("%m-%d %H:%M UTC")
    return f"{', '.join(tiers)} at {at}" if isinstance(tiers, list) and tiers else at


def window_table(windows: list[dict[str, Any]]) -> str:
    """Maintenance windows as aligned columns: the rules' first, then those made at run time."""
    if not windows:
        return "no maintenance windows\n"
    header = ("NAME", "SOURCE", "IN FORCE", "MATCHERS", "REASON")
    rows = [header]
    for window in windows:
        until = window.get("until")
        if isinstance(until, str):
            in_force = "until " + datetime.fromisoformat(until).astimezone(UTC).strftime(
                "%m-%d %H:%M UTC"
            )
        elif window.get("recurring"):
            in_force = "not now (recurring)"
        else:
            starts = window.get("starts_at")
            in_force = (
                "from " + datetime.fromisoformat(starts).astimezone(UTC).strftime("%m-%d %H:%M UTC")
                if isinstance(starts, str)
                else "no"
            )
        rows.append(
            (
                str(window["name"]),
                str(window["source"]),
                in_force,
                ", ".join(window["matchers"]),
                str(window.get("reason") or "-"),
            )
        )
    return _columns(rows)


def _columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns; the last column is not padded, so a long title or reason does
    not widen the others."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]]
        )
        for row in rows
    ]
    return "\n".join(lines) + "\n"
