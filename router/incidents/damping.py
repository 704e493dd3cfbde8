"""Flap damping settings: a pending period before the first page, and flap detection.

Both are declared per severity and per rule in the rules (docs/rules.md, "Flap damping"); a rule's
value overrides its severity's. They are plain values here: the decisions they lead to are made by
`router.incidents.escalation` (`start`, `when_due`, `reopen`, `alerts_resolved`), so that the
daemon, the dry run and the replay read them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from router.incidents.schedule import format_duration


@dataclass(frozen=True, slots=True)
class Flapping:
    """An incident that resolved and fired again `resolves` times within `within` is flapping:
    it stays open, its re-fires page nobody, until it has been `quiet` (no alert fired or
    resolved) that long."""

    resolves: int
    within: timedelta
    quiet: timedelta

    def describe(self) -> str:
        return (
            f"flapping after {self.resolves} re-fire{'s' if self.resolves != 1 else ''} within "
            f"{format_duration(self.within)}, settles after {format_duration(self.quiet)} quiet"
        )


@dataclass(frozen=True, slots=True)
class Damping:
    """What holds an incident's pages back: `pending` (page only if still firing after it) and
    `flapping`; None for either means it is off."""

    pending: timedelta | None = None
    flapping: Flapping | None = None

    def over(self, fallback: Damping) -> Damping:
        """These settings, each one not given taken from `fallback` (a rule over its severity).
        A pending of 0s is given: it turns the fallback's off."""
        return Damping(
            pending=self.pending if self.pending is not None else fallback.pending,
            flapping=self.flapping if self.flapping is not None else fallback.flapping,
        )

    @property
    def pending_period(self) -> timedelta | None:
        """The pending period in force, None when there is none (also for 0s)."""
        return self.pending if self.pending else None


NO_DAMPING = Damping()
