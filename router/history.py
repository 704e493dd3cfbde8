"""The alert history as `replay` and `check --coverage` read it (router/store/history.py reads it
from the database): typed records, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from router.maintenance.windows import Window
from router.models import Alert


@dataclass(frozen=True, slots=True)
class HistoryAlert:
    """An alert instance as the router received it: when it fired and when its resolution came.

    `received_at` is when the router first stored it (the moment its incident opened or it
    joined one); `resolved_at` when the router learned it resolved (None: still firing);
    `incident_id` the first incident it belonged to (None: it belonged to none).
    """

    id: int
    alert: Alert
    received_at: datetime
    resolved_at: datetime | None
    incident_id: int | None


@dataclass(frozen=True, slots=True)
class HistoryIncident:
    """An incident as it happened: when it opened, and when people acknowledged and resolved it."""

    id: int
    key: str
    severity: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    # The runbook section it carried (`file#anchor`) and that section's content hash then.
    runbook: str | None = None
    runbook_hash: str | None = None


@dataclass(frozen=True, slots=True)
class History:
    """The alerts received in [since, until), oldest first, the incidents they belonged to, and
    the maintenance windows made at run time that were in force in the period (each from when it
    was made until it ended, or was ended early)."""

    since: datetime
    until: datetime
    alerts: tuple[HistoryAlert, ...]
    incidents: dict[int, HistoryIncident]
    windows: tuple[Window, ...] = ()
