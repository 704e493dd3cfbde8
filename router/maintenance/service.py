"""Maintenance windows at run time: list the windows in force, make one, end one.

The rules' windows come from the routing in force; those made at run time (the API, the CLI) are
rows of the store, shared by every replica and kept across restarts. Ending a window makes every
suppressed incident due at once, so that the engine looks at its windows again and pages those
that nothing hides any more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from router.errors import MatcherError, PayloadError, WindowConflict, WindowNotFound
from router.maintenance.windows import Window, run_time_window
from router.routing import Routing
from router.rules.reader import NAME, NAME_RULE
from router.store import Store
from router.store.base import Transaction

# Adding windows takes this advisory lock (PostgreSQL), so that two replicas never give the same
# name to two windows at once. SQLite has one writer anyway.
_NAMES_LOCK = "maintenance windows"
MAX_REASON = 500
MAX_MATCHERS = 20


@dataclass(frozen=True, slots=True)
class WindowState:
    """A window as listed: `until` is when it stops hiding alerts, when it is in force now."""

    window: Window
    until: datetime | None

    @property
    def active(self) -> bool:
        return self.until is not None


@dataclass(frozen=True, slots=True)
class NewWindow:
    """What a person asks for: the name may be left to the router."""

    matchers: tuple[str, ...]
    ends_at: datetime
    starts_at: datetime | None = None
    name: str | None = None
    reason: str = ""
    include_p0: bool = False


class MaintenanceService:
    def __init__(
        self,
        store: Store,
        routing: Callable[[], Routing],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._routing = routing
        self._on_change = on_change

    async def windows(self, now: datetime) -> list[WindowState]:
        """Every window of the rules, then every run-time window that has not ended."""
        stored = await self._store.list_maintenance_windows(now)
        return [
            WindowState(window, window.active_until(now))
            for window in (*self._routing().rules.maintenance, *stored)
        ]

    async def count_active(self, now: datetime) -> int:
        return sum(1 for state in await self.windows(now) if state.active)

    async def add(self, wanted: NewWindow, by: str, now: datetime) -> Window:
        """Store a new run-time window; PayloadError if bad, WindowConflict if the name is
        taken by a window that has not ended (or by one of the rules)."""
        if wanted.name is not None and not NAME.match(wanted.name):
            raise PayloadError(f'"{wanted.name}" {NAME_RULE}', "name")
        if not wanted.matchers or len(wanted.matchers) > MAX_MATCHERS:
            raise PayloadError(
                f"give 1 to {MAX_MATCHERS} matchers: a window names what it hides", "matchers"
            )
        if len(wanted.reason) > MAX_REASON:
            raise PayloadError(f"at most {MAX_REASON} characters", "reason")
        starts_at = wanted.starts_at or now
        if wanted.ends_at <= max(starts_at, now):
            raise PayloadError("the window must end after it starts, and in the future", "ends_at")
        try:
            draft = run_time_window(
                name=wanted.name or "draft",
                matchers=wanted.matchers,
                starts_at=starts_at,
                ends_at=wanted.ends_at,
                reason=wanted.reason,
                include_p0=wanted.include_p0,
                created_by=by,
            )
        except MatcherError as exc:
            raise PayloadError(str(exc), "matchers") from None
        rules_names = {window.name for window in self._routing().rules.maintenance}

        def add(tx: Transaction) -> Window:
            tx.lock_incident_keys([_NAMES_LOCK])
            taken = rules_names | {window.name for window in tx.maintenance_windows(now)}
            name = wanted.name or _free_name(f"window-{now:%Y%m%d-%H%M}", taken)
            if name in taken:
                raise WindowConflict(f'a maintenance window named "{name}" is in force already')
            window = _named(draft, name)
            tx.add_maintenance_window(window, now)
            return window

        window = await self._store.write("add maintenance window", add)
        self._on_change()
        return window

    async def end(self, name: str, now: datetime) -> Window:
        """End the run-time window `name` now; WindowNotFound if none by that name is on,
        WindowConflict if it is one of the rules (edit the rules to end it)."""
        if any(window.name == name for window in self._routing().rules.maintenance):
            raise WindowConflict(
                f'maintenance window "{name}" is declared in the rules: remove it there and reload'
            )

        def end(tx: Transaction) -> Window:
            ended = tx.end_maintenance_window(name, now)
            if ended is None:
                raise WindowNotFound(f'no maintenance window "{name}" is in force or planned')
            tx.wake_suppressed(now)
            return ended

        window = await self._store.write("end maintenance window", end)
        self._on_change()
        return window

    async def recheck(self, now: datetime) -> int:
        """Make every suppressed incident due now (the rules' windows changed); how many."""
        woken = await self._store.write(
            "recheck suppressed incidents", lambda tx: tx.wake_suppressed(now)
        )
        if woken:
            self._on_change()
        return woken


def _free_name(base: str, taken: set[str]) -> str:
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    return name


def _named(window: Window, name: str) -> Window:
    return replace(window, name=name)
