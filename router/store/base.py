"""The `Store` interface that the HTTP layer, the incident service and the engine depend on.

Work that must be atomic is a plain function of a `Transaction`, run by
`await store.write("what", work)`: every method of `Transaction` joins that one database
transaction, which commits when the function returns and rolls back (raising `StoreError`) when
anything in it fails. The function runs in the store's database thread, so it must not touch the
event loop; whatever it returns is handed back after the commit.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from router.incidents.escalation import IncidentState, NextAction, Progress
from router.maintenance.windows import Window
from router.models import Alert, PageEvent, PageState
from router.outbox.context import PageContext

T = TypeVar("T")

# Alerts that join (or resolve in) one incident are noted one by one up to this many; beyond it
# the timeline keeps one note per kind, with the count and the latest alert: a storm of 100,000
# alerts on one incident writes a bounded timeline.
ALERT_NOTES_LISTED = 10


class AlertChange(enum.StrEnum):
    JOINED = "joined"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What storing a notification changed: new alert instances, status changes, repeats."""

    new: int = 0
    updated: int = 0
    duplicate: int = 0

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(
            self.new + other.new, self.updated + other.updated, self.duplicate + other.duplicate
        )


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows a retention pass deleted."""

    incidents: int = 0
    alerts: int = 0
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert instance as stored, and what storing it just changed."""

    id: int
    outcome: str  # "new", "updated" (it resolved) or "duplicate"
    firing: bool  # the stored instance still fires
    # For a resolution: earlier instances of the same fingerprint that were still firing and
    # are resolved with it (a sender that restarted, two Alertmanagers that do not gossip).
    earlier: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    id: int
    key: str
    state: IncidentState
    severity: str
    rule: str | None
    policy: str
    title: str
    progress: Progress
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    classification: dict[str, Any]
    runbook: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Which incidents a list shows: every condition given must hold (None: any)."""

    states: tuple[IncidentState, ...] | None = None
    severity: str | None = None
    # A label value the incident is grouped by (its key holds `|service=VALUE`).
    service: str | None = None
    # Found in the title or the key, ignoring case.
    text: str | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert instance of an incident, with the severity it was classified at there."""

    id: int
    fingerprint: str
    alertname: str
    status: str
    severity: str
    source: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    details: dict[str, Any]  # what the source sent beyond labels (URLs, values)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One timeline entry."""

    at: datetime
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """An incident with its alerts, its timeline and its deliveries, oldest first."""

    incident: IncidentRecord
    alerts: list[AlertRecord]
    events: list[EventRecord]
    pages: list[PageRecord]


@dataclass(frozen=True, slots=True)
class NewPage:
    """A delivery to enqueue in the outbox."""

    incident_id: int
    event: PageEvent
    step: int
    round: int
    tier: str
    channel: str
    channel_index: int
    channel_label: str
    context: PageContext
    due_at: datetime
    deadline_at: datetime
    # FOLDED for a page that its tier's storm page stands for: stored, never sent.
    state: PageState = PageState.PENDING


@dataclass(frozen=True, slots=True)
class StormRecord:
    """An alert storm of one tier (router/incidents/storms.py)."""

    id: int
    tier: str
    started_at: datetime
    ended_at: datetime | None
    last_page_at: datetime
    update_due_at: datetime | None
    folded: int
    last_incident_id: int


@dataclass(frozen=True, slots=True)
class TierPaged:
    """An incident paged (or folded) to a tier lately, as a storm page counts it."""

    incident_id: int
    severity: str
    classification: dict[str, Any]
    escalation: bool  # paged by an escalation rather than by its opening


@dataclass(frozen=True, slots=True)
class PageRecord:
    id: int
    incident_id: int
    event: PageEvent
    step: int
    round: int
    tier: str
    channel: str
    channel_index: int
    channel_label: str
    context: dict[str, Any]
    state: PageState
    attempts: int
    next_attempt_at: datetime
    deadline_at: datetime
    created_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None
    sent: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatRecord:
    """What the store knows of a heartbeat: its last beat (when and how it came), and since when
    it is missed (an incident was opened for it), until the next beat."""

    name: str
    last_beat_at: datetime | None
    last_beat_via: str | None
    missed_at: datetime | None


@dataclass(frozen=True, slots=True)
class PagedChannel:
    """A channel an incident was paged on: where acknowledgements and resolutions go too."""

    tier: str
    channel: str
    channel_index: int
    channel_label: str


class Transaction(abc.ABC):
    """Operations inside one database transaction."""

    @abc.abstractmethod
    def store_alerts(
        self, alerts: Sequence[Alert], received: Sequence[datetime]
    ) -> list[StoredAlert]:
        """Store alert instances received at the given times, in order; a repeat of an instance
        (the same fingerprint and start) changes nothing, a resolution of a firing instance
        updates it."""

    @abc.abstractmethod
    def lock_incident_keys(self, keys: Sequence[str]) -> None:
        """Serialise transactions that may open incidents for the same keys (until commit)."""

    @abc.abstractmethod
    def open_incident_by_key(self, key: str) -> IncidentRecord | None:
        """The open incident of `key`, locked for this transaction."""

    @abc.abstractmethod
    def last_resolved_incident(self, key: str, since: datetime) -> IncidentRecord | None:
        """The incident of `key` that resolved last, at `since` or later, locked; None if none."""

    @abc.abstractmethod
    def count_events(self, incident_id: int, kind: str, since: datetime) -> int:
        """How many timeline entries of `kind` the incident has at `since` or later."""

    @abc.abstractmethod
    def incident(self, incident_id: int, *, lock: bool = True) -> IncidentRecord | None: ...

    @abc.abstractmethod
    def open_incidents_of_alert(self, alert_id: int) -> list[IncidentRecord]:
        """Open incidents this alert instance belongs to, locked."""

    @abc.abstractmethod
    def create_incident(
        self,
        *,
        key: str,
        severity: str,
        rule: str | None,
        policy: str,
        title: str,
        progress: Progress,
        opened_at: datetime,
        classification: dict[str, Any],
        runbook: dict[str, Any] | None,
    ) -> IncidentRecord: ...

    @abc.abstractmethod
    def update_incident(self, incident_id: int, progress: Progress, **fields: Any) -> None:
        """Store a new progress, and any other columns given (severity, acknowledged_at, ...)."""

    @abc.abstractmethod
    def link_alert(self, incident_id: int, alert_id: int, severity: str) -> None:
        """Attach an alert instance to an incident (nothing when it already was)."""

    @abc.abstractmethod
    def firing_alerts(self, incident_id: int) -> int:
        """How many of the incident's alerts still fire."""

    @abc.abstractmethod
    def add_event(self, incident_id: int, at: datetime, kind: str, detail: str) -> None: ...

    @abc.abstractmethod
    def note_alert(self, incident_id: int, at: datetime, change: AlertChange, alert: Alert) -> None:
        """Note on the timeline that `alert` joined or resolved; the first ALERT_NOTES_LISTED of
        each kind one by one, the rest summed up in one note that names the latest. Only the
        alerts a note names are described: a storm joins thousands to one incident."""

    @abc.abstractmethod
    def enqueue_pages(self, pages: Sequence[NewPage]) -> None: ...

    @abc.abstractmethod
    def paged_channels(self, incident_id: int) -> list[PagedChannel]:
        """Every distinct channel a trigger or escalation of the incident went to (not folded)."""

    # --- alert storms (router/incidents/storms.py) ---

    @abc.abstractmethod
    def lock_storms(self) -> None:
        """Serialise the transactions that count and fold pages (until commit), so that
        replicas sharing a database agree on what a storm is."""

    @abc.abstractmethod
    def incidents_paged(
        self, tier: str, since: datetime, at_most: int, *, exclude: int | None = None
    ) -> int:
        """How many incidents (but `exclude`) had a trigger or escalation page to `tier`, sent
        or folded, created after `since`; counted up to `at_most`, which it never exceeds (a
        storm is told from its threshold: counting all its incidents each time would make a
        storm of n incidents cost n² row reads)."""

    @abc.abstractmethod
    def tier_paged(self, tier: str, since: datetime, until: datetime) -> list[TierPaged]:
        """The incidents paged or folded to `tier` from `since` (excluded) to `until`."""

    @abc.abstractmethod
    def open_storm(self, tier: str) -> StormRecord | None:
        """The storm of `tier` that has not ended, if any."""

    @abc.abstractmethod
    def storms_to_watch(self) -> list[StormRecord]:
        """Storms not ended, and ended storms that still owe an updated page."""

    @abc.abstractmethod
    def start_storm(self, tier: str, now: datetime, incident_id: int) -> StormRecord: ...

    @abc.abstractmethod
    def update_storm(self, storm_id: int, **columns: Any) -> None:
        """Set columns of a storm (`last_page_at`, `update_due_at`, `folded`, `ended_at`...)."""

    @abc.abstractmethod
    def refresh_storm_pages(
        self, tier: str, since: datetime, context: Callable[[], PageContext]
    ) -> int:
        """Give the storm pages of `tier` created from `since` that are still pending (not sent
        yet) the context `context()` makes, made only if there are some; how many there were."""

    @abc.abstractmethod
    def claim_due_incidents(self, now: datetime, limit: int) -> list[IncidentRecord]:
        """Incidents whose next action is due, locked; other replicas skip them."""

    @abc.abstractmethod
    def finish_page(
        self,
        page_id: int,
        *,
        state: str,
        attempts: int,
        next_attempt_at: datetime,
        error: str | None,
        now: datetime,
        sent: dict[str, str] | None = None,
    ) -> None:
        """Record the outcome of a delivery attempt: delivered (with what was `sent`), failed,
        or pending a retry."""

    @abc.abstractmethod
    def remember_token(self, token: str, kind: str, now: datetime) -> bool:
        """Record a one-time token; False when it was seen before (a replay)."""

    @abc.abstractmethod
    def heartbeat(self, name: str) -> HeartbeatRecord | None:
        """The stored state of a heartbeat (lock its incident key first to decide on it)."""

    @abc.abstractmethod
    def record_beat(self, name: str, at: datetime, via: str) -> None:
        """A beat: the last beat is `at` (unless a later one is stored) and the miss is over."""

    @abc.abstractmethod
    def mark_missed(self, name: str, at: datetime) -> None:
        """The heartbeat is missed since `at`: its incident was opened."""

    # --- maintenance windows made at run time -------------------------------------------------

    @abc.abstractmethod
    def maintenance_windows(self, after: datetime) -> list[Window]:
        """The run-time windows that have not ended by `after`, started or not."""

    @abc.abstractmethod
    def firing_alert_labels(self, incident_id: int) -> list[dict[str, str]]:
        """The labels of each of the incident's alerts that still fire."""

    @abc.abstractmethod
    def add_maintenance_window(self, window: Window, now: datetime) -> None:
        """Store a run-time window (the caller checked that its name is free, under
        `lock_incident_keys`)."""

    @abc.abstractmethod
    def end_maintenance_window(self, name: str, now: datetime) -> Window | None:
        """End the run-time window `name` now; the window as it was, or None if none is on."""

    @abc.abstractmethod
    def wake_suppressed(self, now: datetime) -> int:
        """Make every suppressed incident due now, so that its windows are looked at again."""


class Store(abc.ABC):
    """Durable state of the router. Implementations are safe for concurrent use by tasks."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and bring the schema up to date."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish what is in flight and release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""

    @abc.abstractmethod
    async def write(
        self,
        what: str,
        work: Callable[[Transaction], T],
        weight: int = 1,
        *,
        bulk: bool = False,
    ) -> T:
        """Run `work` in one transaction and return its result once committed; a failure inside
        raises StoreError naming `what`. `weight` (alerts, for a webhook) bounds how much work one
        group commit takes on. `bulk` work (a webhook's alerts) goes after what is queued of the
        rest (escalations, deliveries, acknowledgements): small jobs that are due now."""

    @abc.abstractmethod
    async def count_alerts(self) -> int:
        """How many alert instances are stored."""

    # --- reads for the API and the engine ------------------------------------------------

    @abc.abstractmethod
    async def list_incidents(
        self, states: Sequence[IncidentState] | None, limit: int
    ) -> list[IncidentRecord]:
        """Newest first."""

    @abc.abstractmethod
    async def search_incidents(
        self, where: IncidentFilter, limit: int, offset: int = 0
    ) -> list[IncidentRecord]:
        """The incidents `where` selects, newest first, skipping the first `offset`."""

    @abc.abstractmethod
    async def incident_detail(self, incident_id: int) -> IncidentDetail | None:
        """The incident with its alerts and timeline, ready for JSON."""

    @abc.abstractmethod
    async def list_pages(self, incident_id: int | None = None) -> list[PageRecord]:
        """Every delivery in the outbox (of one incident), oldest first."""

    @abc.abstractmethod
    async def next_due(self) -> datetime | None:
        """When the earliest incident action or page falls due."""

    @abc.abstractmethod
    async def count_open_incidents(self) -> dict[tuple[str, str], int]:
        """Open incidents by (severity, state)."""

    # --- the outbox ------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim_due_pages(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> list[PageRecord]:
        """Pending pages due now (or whose claim expired), claimed until `lease_until`."""

    @abc.abstractmethod
    async def pending_pages(self) -> int: ...

    @property
    @abc.abstractmethod
    def shared(self) -> bool:
        """True when other processes may use the same database (PostgreSQL replicas)."""

    @abc.abstractmethod
    async def release_claims(self) -> int:
        """Make every claimed page due again; how many. Only for a store that no other process
        uses (`shared` is false): at start, every claim is a dead process's."""

    @abc.abstractmethod
    async def renew_claims(self, page_ids: Sequence[int], until: datetime) -> None:
        """Extend the claims of pages still being sent, so no other replica takes them over."""

    @abc.abstractmethod
    async def check_writable(self, now: datetime) -> None:
        """Raise StoreError unless the database commits a small write (a heartbeat row)."""

    @abc.abstractmethod
    async def prune(self, before: datetime, limit: int) -> Pruned:
        """Delete up to `limit` incidents resolved before `before` (with their timeline, pages
        and alert links), then resolved alerts last updated before it that no incident holds, and
        one-time tokens seen before it. Open incidents and firing alerts are never deleted."""

    @abc.abstractmethod
    async def heartbeats(self) -> dict[str, HeartbeatRecord]:
        """Every heartbeat the store knows, by name."""

    @abc.abstractmethod
    async def list_maintenance_windows(self, after: datetime) -> list[Window]:
        """The run-time windows that have not ended by `after`, the soonest to end first."""

    @abc.abstractmethod
    async def setting(self, name: str, default: str) -> str:
        """A value the router keeps for itself; stores `default` the first time."""


__all__ = [
    "HeartbeatRecord",
    "IncidentRecord",
    "IncidentState",
    "IngestResult",
    "NewPage",
    "NextAction",
    "PageRecord",
    "PagedChannel",
    "Pruned",
    "Store",
    "StoredAlert",
    "Transaction",
]
