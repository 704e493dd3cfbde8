"""Incidents: open, update, escalate, acknowledge and resolve them, each in one transaction.

This is where the pure decisions of `router.incidents.escalation` meet the store. Every method
opens one transaction, reads what it needs under lock, asks `escalation` what to do, and writes the
new progress, the timeline notes and the pages to the outbox together. Metrics are counted only
after the transaction committed, so a rolled-back attempt counts nothing."""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from router.errors import HeartbeatNotFound, IncidentNotFound
from router.incidents import escalation
from router.incidents.batches import Batcher
from router.incidents.escalation import Decision, IncidentState, PageOrder
from router.incidents.schedule import format_duration
from router.incidents.storms import StormEffects, Storms
from router.links import AckLinks, incident_view_url
from router.logs import fields
from router.maintenance.windows import Cover, Window, cover, cover_all
from router.metrics import NO_RULE, Metrics
from router.models import Alert, AlertStatus, Notification, PageEvent
from router.outbox.context import NextEscalation, PageContext, incident_context
from router.routing import RoutedAlert, Routing, percent
from router.rules.heartbeats import Heartbeat
from router.runbooks.library import POSSIBLE_SECTIONS
from router.store import IngestResult, Store
from router.store.base import AlertChange, HeartbeatRecord, IncidentRecord, NewPage, Transaction

log = logging.getLogger("router.incidents")

# A delivery that still fails this long after it was due is overdue: noted once on the timeline.
# It is still retried (router/outbox/dispatcher.py): only a permanent failure gives a page up.
DELIVERY_DEADLINE = timedelta(minutes=30)
# Who resolves a flapping incident that has been quiet long enough, with no alert firing.
QUIET_AFTER_FLAPPING = "runbook-router (quiet after flapping)"
# A webhook's alerts are written at most this many per transaction (see `ingest`).
INGEST_SLICE = 500
# Webhooks that wait together are written in one transaction of at most this many alerts.
BATCH_ALERTS = 2_000
# Due incidents are handled at most this many per transaction: when many fall due together (a
# storm's incidents reaching their `ack_within`), few commits, while each stays short.
ESCALATION_BATCH = 500


@dataclass(frozen=True, eq=False)
class _Webhook:
    """A webhook's alerts, routed by the rules in force when it arrived."""

    routing: Routing
    routed: list[RoutedAlert]
    now: datetime


@dataclass
class _Effects:
    """Metric updates to apply once the transaction committed."""

    opened: list[tuple[str, str, str]] = field(default_factory=list)  # (severity, rule, method)
    escalated: list[tuple[str, str]] = field(default_factory=list)  # (severity, tier)
    breached: list[tuple[str, str]] = field(default_factory=list)  # (severity, tier)
    acknowledged: list[tuple[str, float]] = field(default_factory=list)  # (severity, seconds)
    lag: list[float] = field(default_factory=list)
    # Flap damping: (`pending` or `flapping`, severity, outcome), from escalation.damping_outcome.
    damped: list[tuple[str, str, str]] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)  # the window of each alert it hid
    pages: int = 0
    beats: list[tuple[str, datetime]] = field(default_factory=list)  # (heartbeat, at)
    missed: list[str] = field(default_factory=list)  # heartbeats
    # Open incidents that changed (severity, state): (before, after); None for "not open".
    moved: list[tuple[tuple[str, str] | None, tuple[str, str] | None]] = field(default_factory=list)
    storms: StormEffects = field(default_factory=StormEffects)

    def move(
        self, before: tuple[str, IncidentState] | None, after: tuple[str, IncidentState]
    ) -> None:
        def gauge(key: tuple[str, IncidentState] | None) -> tuple[str, str] | None:
            if key is None or key[1] is IncidentState.RESOLVED:
                return None
            return key[0], key[1].value

        if before != after:
            self.moved.append((gauge(before), gauge(after)))


# How long webhooks may use the run-time maintenance windows read before (RunTimeWindows).
RUN_TIME_WINDOWS_REFRESH = timedelta(seconds=1)


class RunTimeWindows:
    """The run-time maintenance windows as webhooks see them: read from the store at most once
    per RUN_TIME_WINDOWS_REFRESH of the service's clock, and at once after this process made or
    ended one (`changed`).

    Reading them in every webhook's transaction cost a query per webhook, a sixth of the ingest
    work in a storm, for a table that changes a few times a day. A window made or ended through
    another replica reaches this one within the refresh. The engine's pass over suppressed
    incidents reads them afresh (`fresh`)."""

    def __init__(self) -> None:
        # (when read, the windows): one tuple, replaced whole, so that writer threads never see
        # a time with the windows of another read.
        self._read: tuple[datetime, tuple[Window, ...]] | None = None

    def changed(self) -> None:
        self._read = None

    def cached(self, tx: Transaction, now: datetime) -> tuple[Window, ...]:
        read = self._read
        if read is not None and read[0] <= now < read[0] + RUN_TIME_WINDOWS_REFRESH:
            return read[1]
        return self.fresh(tx, now)

    def fresh(self, tx: Transaction, now: datetime) -> tuple[Window, ...]:
        windows = tuple(tx.maintenance_windows(now))
        self._read = (now, windows)
        return windows


class _Windows:
    """The maintenance windows in force for one transaction: the rules' and those made at run
    time, read when an alert first needs them (from `run_time`, or the store with `fresh`)."""

    def __init__(
        self, tx: Transaction, routing: Routing, run_time: RunTimeWindows, *, fresh: bool = False
    ) -> None:
        self._tx = tx
        self._routing = routing
        self._run_time = run_time
        self._fresh = fresh
        self._windows: tuple[Window, ...] | None = None

    def all(self, now: datetime) -> tuple[Window, ...]:
        if self._windows is None:
            read = self._run_time.fresh if self._fresh else self._run_time.cached
            self._windows = (*self._routing.rules.maintenance, *read(self._tx, now))
        return self._windows

    def cover(self, labels: Mapping[str, str], severity: str, now: datetime) -> Cover | None:
        """The window hiding an alert of `severity` with `labels` at `now`, or None."""
        return cover(self.all(now), labels, most_severe=self._most_severe(severity), at=now)

    def cover_all(self, labels: list[dict[str, str]], severity: str, now: datetime) -> Cover | None:
        """The window hiding every alert of `severity` with these `labels` at `now`, or None."""
        return cover_all(self.all(now), labels, most_severe=self._most_severe(severity), at=now)

    def _most_severe(self, severity: str) -> bool:
        # A window hides the most severe level only when it says so (`include_p0`).
        return self._routing.rank(severity) == 0


@dataclass(frozen=True, slots=True)
class HeartbeatState:
    """A heartbeat of the rules and what the store knows of it, at one time."""

    heartbeat: Heartbeat
    last_beat_at: datetime | None
    last_beat_via: str | None
    missed_since: datetime | None  # None while it beats in time
    due_at: datetime  # when it is missed unless a beat arrives

    @property
    def missed(self) -> bool:
        return self.missed_since is not None


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """What an acknowledgement or a resolution did: `result`, and `message` for people."""

    incident: IncidentRecord
    result: AckResult
    message: str

    @property
    def changed(self) -> bool:
        return self.result is AckResult.CHANGED


class AckResult(enum.StrEnum):
    CHANGED = "changed"  # acknowledged or resolved now
    UNCHANGED = "unchanged"  # already in that state (or resolved before an acknowledgement)
    ALREADY_USED = "already_used"  # a one-time link or webhook id seen before: nothing done


class IncidentService:
    def __init__(
        self,
        store: Store,
        routing: Callable[[], Routing],
        metrics: Metrics,
        links: Callable[[], AckLinks],
        base_url: str,
        on_new_work: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._routing = routing
        self._metrics = metrics
        self._links = links
        self._base_url = base_url.rstrip("/")
        self._on_new_work = on_new_work
        # When this process began watching each heartbeat (see `watch_heartbeats`).
        self._watched_since: dict[str, datetime] = {}
        self._storms = Storms(base_url, DELIVERY_DEADLINE)
        self.run_time_windows = RunTimeWindows()
        self._webhooks: Batcher[_Webhook, IngestResult] = Batcher(
            self._write_webhooks, weight=lambda webhook: len(webhook.routed), limit=BATCH_ALERTS
        )

    async def close(self) -> None:
        """Wait for the webhooks being written."""
        await self._webhooks.close()

    # --- alerts in ------------------------------------------------------------------------

    async def ingest(self, notification: Notification, now: datetime) -> IngestResult:
        """Store the alerts of a webhook, and open, update or resolve their incidents.

        A large webhook is written in slices of INGEST_SLICE alerts, each its own transaction:
        no one sender holds the writer for long. A slice that fails leaves the earlier ones
        stored; the sender's retry finds them already there (same fingerprint and start).
        """
        routing = self._routing()
        routed = [routing.route(alert) for alert in notification.alerts]
        failed = [item for item in routed if item.failure]
        if failed:
            log.error(
                "an alert could not be routed as the rules say; paged with what is known",
                extra=fields(
                    alert=failed[0].alert.name, alerts=len(failed), error=failed[0].failure
                ),
            )
        if not routed:
            return IngestResult()
        if len(routed) <= INGEST_SLICE:
            return await self._webhooks.submit(_Webhook(routing, routed, now))
        counts = IngestResult()
        for first in range(0, len(routed), INGEST_SLICE):
            part = _Webhook(routing, routed[first : first + INGEST_SLICE], now)
            (result,) = await self._write_webhooks([part], alone=True)
            if isinstance(result, BaseException):
                raise result
            counts += result
        return counts

    async def _write_webhooks(
        self, webhooks: list[_Webhook], *, alone: bool = False
    ) -> list[IngestResult | BaseException]:
        """Write webhooks in one transaction; if that fails, each in its own, so that only the
        one that fails is refused."""
        try:
            results, effects = await self._store.write(
                "store alerts and incidents",
                functools.partial(self._ingest, webhooks=webhooks),
                weight=sum(len(webhook.routed) for webhook in webhooks),
                bulk=True,
            )
        except Exception as exc:
            if alone or len(webhooks) == 1:
                return [exc]
            return [
                result
                for webhook in webhooks
                for result in await self._write_webhooks([webhook], alone=True)
            ]
        self._count(effects)
        return list(results)

    def _ingest(
        self, tx: Transaction, webhooks: list[_Webhook]
    ) -> tuple[list[IngestResult], _Effects]:
        effects = _Effects()
        received = [(webhook, item) for webhook in webhooks for item in webhook.routed]
        # A firing alert that a heartbeat's matchers select is a beat of it, not a trigger.
        beats = {
            id(item): heartbeat
            for webhook, item in received
            if item.alert.firing
            and (heartbeat := webhook.routing.rules.heartbeat_for(item.alert)) is not None
        }
        tx.lock_incident_keys(
            [
                beats[id(item)].incident_key
                if id(item) in beats
                else item.classification.incident_key
                for _, item in received
                if item.alert.firing
            ]
        )
        if any(item.alert.firing for _, item in received):
            self._storms.lock(tx, webhooks[0].routing)
        # The open incident of each key, looked up once per transaction: the alerts of a
        # webhook, and of webhooks that arrive together, mostly share a few keys.
        open_incidents: dict[str, IncidentRecord | None] = {}
        stored_alerts = tx.store_alerts(
            [item.alert for _, item in received], [webhook.now for webhook, _ in received]
        )
        counts: dict[int, dict[str, int]] = {
            id(webhook): {"new": 0, "updated": 0, "duplicate": 0} for webhook in webhooks
        }
        windows = {
            id(webhook): _Windows(tx, webhook.routing, self.run_time_windows)
            for webhook in webhooks
        }
        for (webhook, item), stored in zip(received, stored_alerts, strict=True):
            counts[id(webhook)][stored.outcome] += 1
            routing, now = webhook.routing, webhook.now
            fired = functools.partial(
                self._alert_fired, tx, routing, windows[id(webhook)], item, stored.id, now
            )
            heartbeat = beats.get(id(item))
            if heartbeat is not None:
                # Every delivery counts, repeats included: Alertmanager re-sends the same
                # Watchdog instance every repeat_interval.
                self._beat(tx, routing, heartbeat, item.alert.description, now, effects)
            elif stored.outcome == "new" and item.alert.status is AlertStatus.FIRING:
                fired(effects, open_incidents)
            elif (
                stored.outcome == "duplicate"
                and stored.firing
                and item.alert.firing
                and not tx.open_incidents_of_alert(stored.id)
            ):
                # Still firing, but its incident was resolved by hand (API, PagerDuty): as in
                # PagerDuty, a trigger for a resolved incident opens a new one.
                fired(effects, open_incidents)
            elif not item.alert.firing:
                changed = (stored.id,) if stored.outcome in ("new", "updated") else ()
                for alert_id in (*changed, *stored.earlier):
                    resolved = self._alert_resolved(tx, routing, item.alert, alert_id, now, effects)
                    for key in resolved:
                        open_incidents.pop(key, None)
        if effects.storms.touched:
            self._storms.page(tx, webhooks[-1].routing, webhooks[-1].now, effects.storms)
        return [IngestResult(**counts[id(webhook)]) for webhook in webhooks], effects

    def _alert_fired(
        self,
        tx: Transaction,
        routing: Routing,
        windows: _Windows,
        item: RoutedAlert,
        alert_id: int,
        now: datetime,
        effects: _Effects,
        open_incidents: dict[str, IncidentRecord | None],
    ) -> None:
        c = item.classification
        if c.incident_key not in open_incidents:
            open_incidents[c.incident_key] = tx.open_incident_by_key(c.incident_key)
        incident = open_incidents[c.incident_key]
        hidden = windows.cover(item.alert.labels, c.severity, now)
        if hidden is not None:
            effects.suppressed.append(hidden.window.name)
        if incident is None:
            context = routing.escalation_context(c.policy, c.severity, c.rule)
            if self._reopened(tx, routing, item, alert_id, context, now, effects, open_incidents):
                return
            if hidden is None:
                decision = escalation.start(context, now)
            else:
                decision = escalation.suppress(hidden.until, f"suppressed by {hidden.note()}")
            incident = tx.create_incident(
                key=c.incident_key,
                severity=c.severity,
                rule=c.rule,
                policy=c.policy,
                title=item.alert.title,
                progress=decision.progress,
                opened_at=now,
                classification=_classification_json(item),
                runbook=item.runbook,
            )
            effects.move(None, (incident.severity, incident.state))
            tx.link_alert(incident.id, alert_id, c.severity)
            tx.add_event(incident.id, now, "opened", f"opened by {item.alert.description}")
            tx.add_event(incident.id, now, "classified", c.reason)
            tx.add_event(incident.id, now, "runbook", _runbook_note(item))
            self._apply(tx, routing, incident, decision, now, effects)
            open_incidents[c.incident_key] = incident
            method = item.runbook["method"] if item.runbook else "none"
            effects.opened.append((c.severity, c.rule or "none", method))
            return
        tx.link_alert(incident.id, alert_id, c.severity)
        tx.note_alert(incident.id, now, AlertChange.JOINED, item.alert)
        if incident.state is IncidentState.SUPPRESSED:
            self._joined_suppressed(tx, routing, incident, item, hidden, now, effects)
            open_incidents[c.incident_key] = tx.incident(incident.id, lock=False)
            return
        if routing.rank(c.severity) < routing.rank(incident.severity):
            context = routing.escalation_context(c.policy, c.severity, c.rule)
            decision = escalation.raise_severity(incident.progress, context, incident.severity, now)
            tx.add_event(incident.id, now, "classified", c.reason)
            self._apply(
                tx, routing, incident, decision, now, effects, severity=c.severity, policy=c.policy
            )
            open_incidents[c.incident_key] = tx.incident(incident.id, lock=False)
            return
        decision = escalation.alert_joined(incident.progress, self._context(routing, incident), now)
        if decision.changed:
            self._apply(tx, routing, incident, decision, now, effects)
            open_incidents[c.incident_key] = tx.incident(incident.id, lock=False)

    def _reopened(
        self,
        tx: Transaction,
        routing: Routing,
        item: RoutedAlert,
        alert_id: int,
        context: escalation.Context,
        now: datetime,
        effects: _Effects,
        open_incidents: dict[str, IncidentRecord | None],
    ) -> bool:
        """With flap detection, a re-fire within its window reopens the incident of its key that
        resolved last, rather than opening a new one: the incident's re-fires are counted there
        (its `reopened` timeline entries). True when it did."""
        flapping = context.damping.flapping
        if flapping is None:
            return False
        since = now - flapping.within
        c = item.classification
        incident = tx.last_resolved_incident(c.incident_key, since)
        if incident is None or incident.resolved_at is None:
            return False
        refires = tx.count_events(incident.id, "reopened", since) + 1
        decision = escalation.reopen(incident.progress, context, now, incident.resolved_at, refires)
        tx.link_alert(incident.id, alert_id, c.severity)
        tx.add_event(incident.id, now, "reopened", f"reopened by {item.alert.description}")
        if c.severity != incident.severity:
            tx.add_event(incident.id, now, "classified", c.reason)
        self._apply(
            tx,
            routing,
            incident,
            decision,
            now,
            effects,
            severity=c.severity,
            policy=c.policy,
            resolved_at=None,
            resolved_by=None,
        )
        open_incidents[c.incident_key] = tx.incident(incident.id, lock=False)
        return True

    def _joined_suppressed(
        self,
        tx: Transaction,
        routing: Routing,
        incident: IncidentRecord,
        item: RoutedAlert,
        hidden: Cover | None,
        now: datetime,
        effects: _Effects,
    ) -> None:
        """An alert joined a suppressed incident: outside every window, the incident pages now
        (a new trigger); inside one, it stays silent, at the more severe of the two severities,
        and is looked at again when the first of their windows ends."""
        c = item.classification
        raised = routing.rank(c.severity) < routing.rank(incident.severity)
        severity, policy = (
            (c.severity, c.policy) if raised else (incident.severity, incident.policy)
        )
        columns = {"severity": severity, "policy": policy} if raised else {}
        if raised:
            tx.add_event(incident.id, now, "classified", c.reason)
        decision = escalation.joined_suppressed(
            incident.progress,
            routing.escalation_context(policy, severity),
            now,
            hidden.until if hidden else None,
            item.alert.description,
        )
        self._apply(tx, routing, incident, decision, now, effects, **columns)

    def _alert_resolved(
        self,
        tx: Transaction,
        routing: Routing,
        alert: Alert,
        alert_id: int,
        now: datetime,
        effects: _Effects,
    ) -> list[str]:
        """Record the resolution; resolve incidents left with no firing alert (their keys)."""
        resolved = []
        who = f"{alert.source.value} (all alerts resolved)"
        for incident in tx.open_incidents_of_alert(alert_id):
            tx.note_alert(incident.id, now, AlertChange.RESOLVED, alert)
            context = self._context(routing, incident)
            if tx.firing_alerts(incident.id):
                # A flapping incident's quiet time starts again at any of its alerts' changes.
                decision = escalation.alert_joined(incident.progress, context, now)
            else:
                decision = escalation.alerts_resolved(incident.progress, context, now, who)
            self._decide(tx, routing, incident, decision, now, effects, who=who)
            if decision.progress.state is IncidentState.RESOLVED:
                resolved.append(incident.key)
        return resolved

    # --- escalation -----------------------------------------------------------------------

    async def run_due(self, now: datetime, limit: int = ESCALATION_BATCH) -> int:
        """Act on every incident whose next action is due; how many were handled."""
        routing = self._routing()

        def escalate(tx: Transaction) -> tuple[int, _Effects]:
            effects = _Effects()
            self._storms.lock(tx, routing)
            due = tx.claim_due_incidents(now, limit)
            windows = _Windows(tx, routing, self.run_time_windows, fresh=True)
            for incident in due:
                context = self._context(routing, incident)
                # Only a flapping incident's decision reads whether its alerts still fire.
                flapping = incident.state is IncidentState.FLAPPING
                firing = bool(tx.firing_alerts(incident.id)) if flapping else True
                still = self._still_hidden(tx, windows, incident, now)
                if still is not None:
                    decision = escalation.suppress(
                        still.until, f"still suppressed by {still.note()}"
                    )
                else:
                    decision = escalation.when_due(incident.progress, context, now, firing=firing)
                if incident.progress.next_action_at is not None:
                    effects.lag.append((now - incident.progress.next_action_at).total_seconds())
                # A flapping incident that settles resolved tells nobody: its channels were last
                # told that it resolved, before it flapped.
                self._decide(
                    tx,
                    routing,
                    incident,
                    decision,
                    now,
                    effects,
                    who=QUIET_AFTER_FLAPPING,
                    notify=False,
                )
            if effects.storms.touched:
                self._storms.page(tx, routing, now, effects.storms)
            # Storms end, and their owed updates are sent, on the escalation loop's clock.
            self._storms.upkeep(tx, routing, now, effects.storms)
            return len(due), effects

        handled, effects = await self._store.write("escalate due incidents", escalate, limit)
        self._count(effects)
        return handled

    # --- heartbeats -----------------------------------------------------------------------

    def watch_heartbeats(self, now: datetime) -> None:
        """Start the clock of the heartbeats of the rules in force that are not watched yet:
        at start, and at a reload that adds one. A heartbeat is missed `interval` after the later
        of its last beat and this time (`Heartbeat.deadline`)."""
        for name in self._routing().rules.heartbeats:
            self._watched_since.setdefault(name, now)

    async def beat(self, name: str, via: str, now: datetime) -> int | None:
        """A ping of heartbeat `name` (HeartbeatNotFound if the rules have none): record it, and
        resolve its missed-heartbeat incident; that incident's id, or None."""
        routing = self._routing()
        heartbeat = routing.rules.heartbeats.get(name)
        if heartbeat is None:
            raise HeartbeatNotFound(name, tuple(routing.rules.heartbeats))

        def beat(tx: Transaction) -> tuple[int | None, _Effects]:
            effects = _Effects()
            tx.lock_incident_keys([heartbeat.incident_key])
            return self._beat(tx, routing, heartbeat, via, now, effects), effects

        resolved, effects = await self._store.write("record a heartbeat", beat)
        self._count(effects)
        return resolved

    def _beat(
        self,
        tx: Transaction,
        routing: Routing,
        heartbeat: Heartbeat,
        via: str,
        now: datetime,
        effects: _Effects,
    ) -> int | None:
        tx.record_beat(heartbeat.name, now, via)
        effects.beats.append((heartbeat.name, now))
        incident = tx.open_incident_by_key(heartbeat.incident_key)
        if incident is None:
            return None
        who = f"heartbeat {heartbeat.name} (beat again: {via})"
        decision = escalation.resolve(incident.progress, who, self._context(routing, incident), now)
        self._decide(tx, routing, incident, decision, now, effects, who=who)
        return incident.id

    async def check_heartbeats(self, now: datetime) -> list[int]:
        """Open an incident for each heartbeat missed now (no beat for its interval, and none
        opened for this miss yet); the incidents opened."""
        routing = self._routing()
        self.watch_heartbeats(now)
        heartbeats = routing.rules.heartbeats
        if not heartbeats:
            return []
        records = await self._store.heartbeats()
        for name, record in records.items():
            if name in heartbeats and record.last_beat_at is not None:
                self._metrics.heartbeat_last_beat.labels(heartbeat=name).set(
                    record.last_beat_at.timestamp()
                )
        due = [
            heartbeat
            for heartbeat in heartbeats.values()
            if self._missed_now(heartbeat, records.get(heartbeat.name), now)
        ]
        if not due:
            return []

        def open_missed(tx: Transaction) -> tuple[list[int], _Effects]:
            effects = _Effects()
            tx.lock_incident_keys([heartbeat.incident_key for heartbeat in due])
            self._storms.lock(tx, routing)
            opened = []
            for heartbeat in due:
                # Decided again under the lock: a beat or another replica may have come first.
                record = tx.heartbeat(heartbeat.name)
                if not self._missed_now(heartbeat, record, now):
                    continue
                tx.mark_missed(heartbeat.name, now)
                effects.missed.append(heartbeat.name)
                if tx.open_incident_by_key(heartbeat.incident_key) is None:
                    last_beat = record.last_beat_at if record else None
                    opened.append(
                        self._open_missed(tx, routing, heartbeat, last_beat, now, effects)
                    )
            if effects.storms.touched:
                self._storms.page(tx, routing, now, effects.storms)
            return opened, effects

        opened, effects = await self._store.write("open missed-heartbeat incidents", open_missed)
        self._count(effects)
        return opened

    def heartbeat_deadline(
        self, heartbeat: Heartbeat, last_beat: datetime | None, now: datetime
    ) -> datetime:
        """When `heartbeat` is missed unless a beat arrives (see `Heartbeat.deadline`)."""
        return heartbeat.deadline(last_beat, self._watched_since.get(heartbeat.name, now))

    async def heartbeat_states(self, now: datetime) -> list[HeartbeatState]:
        """Each heartbeat of the rules in force: its last beat, whether it is missed, and when
        it will be unless a beat arrives (the API's list and the console's Rules page)."""
        records = await self._store.heartbeats()
        states = []
        for heartbeat in self._routing().rules.heartbeats.values():
            record = records.get(heartbeat.name)
            last_beat = record.last_beat_at if record else None
            states.append(
                HeartbeatState(
                    heartbeat=heartbeat,
                    last_beat_at=last_beat,
                    last_beat_via=record.last_beat_via if record else None,
                    missed_since=record.missed_at if record else None,
                    due_at=self.heartbeat_deadline(heartbeat, last_beat, now),
                )
            )
        return states

    def _missed_now(
        self, heartbeat: Heartbeat, record: HeartbeatRecord | None, now: datetime
    ) -> bool:
        if record is not None and record.missed_at is not None:
            return False  # this miss has its incident already
        last_beat = record.last_beat_at if record else None
        return now >= self.heartbeat_deadline(heartbeat, last_beat, now)

    def _open_missed(
        self,
        tx: Transaction,
        routing: Routing,
        heartbeat: Heartbeat,
        last_beat: datetime | None,
        now: datetime,
        effects: _Effects,
    ) -> int:
        watched_since = self._watched_since[heartbeat.name]
        silent_since = watched_since if last_beat is None else max(last_beat, watched_since)
        title = heartbeat.missed_title(now - silent_since)
        if last_beat is None:
            last = f"no beat since the router began watching at {watched_since.isoformat()}"
        else:
            last = f"last beat at {last_beat.isoformat()}"
        reason = (
            f"{heartbeat.severity} by heartbeat {heartbeat.name} ({heartbeat.source}): nothing "
            f"received within its interval of {format_duration(heartbeat.interval)}; {last}"
        )
        context = routing.escalation_context(heartbeat.policy, heartbeat.severity)
        decision = escalation.start(context, now)
        incident = tx.create_incident(
            key=heartbeat.incident_key,
            severity=heartbeat.severity,
            rule=None,
            policy=heartbeat.policy,
            title=title,
            progress=decision.progress,
            opened_at=now,
            classification={
                "reason": reason,
                "matched_rules": [],
                "group_values": {},
                "heartbeat": heartbeat.name,
                "alert": {
                    "name": f"Heartbeat {heartbeat.name}",
                    "source": "heartbeat",
                    "annotations": {"summary": title, "description": reason},
                },
                "runbook_candidates": [],
            },
            runbook=None,
        )
        effects.move(None, (incident.severity, incident.state))
        tx.add_event(incident.id, now, "opened", f"opened: heartbeat {heartbeat.name} missed")
        tx.add_event(incident.id, now, "classified", reason)
        self._apply(tx, routing, incident, decision, now, effects)
        effects.opened.append((heartbeat.severity, NO_RULE, "none"))
        return incident.id

    @staticmethod
    def _still_hidden(
        tx: Transaction,
        windows: _Windows,
        incident: IncidentRecord,
        now: datetime,
    ) -> Cover | None:
        """For a suppressed incident whose window ends: the window that hides every alert of it
        that still fires, now (the same one made longer, or another), or None."""
        if incident.progress.next_action is not escalation.NextAction.WINDOW_ENDS:
            return None
        firing = tx.firing_alert_labels(incident.id)
        if not firing:
            return None
        return windows.cover_all(firing, incident.severity, now)

    # --- acknowledgement and resolution ---------------------------------------------------

    async def acknowledge(
        self, incident_id: int, who: str, via: str, now: datetime, *, once: str | None = None
    ) -> AckOutcome:
        """Acknowledge; `once` is a one-time token (a link's nonce, a webhook id) remembered in
        the same transaction, so that a replay changes nothing."""
        routing = self._routing()

        def acknowledge(tx: Transaction) -> tuple[AckOutcome, _Effects]:
            effects = _Effects()
            incident, replayed = self._lock_incident(tx, incident_id, once, via, now)
            if replayed:
                return AckOutcome(incident, AckResult.ALREADY_USED, "already used"), effects
            context = self._context(routing, incident)
            decision = escalation.acknowledge(incident.progress, context, now, f"{who} via {via}")
            # Notes are recorded either way ("ignored: already resolved"); the columns only
            # when the decision changed something.
            self._apply(
                tx,
                routing,
                incident,
                decision,
                now,
                effects,
                acknowledged_at=now,
                acknowledged_by=who,
            )
            if decision.changed:
                self._notify_paged(tx, incident, PageEvent.ACKNOWLEDGE, now, via, who, effects)
                effects.acknowledged.append(
                    (incident.severity, (now - incident.opened_at).total_seconds())
                )
            updated = tx.incident(incident_id, lock=False)
            assert updated is not None
            message = (
                decision.notes[0].detail if decision.notes else f"already {incident.state.value}"
            )
            return AckOutcome(updated, _result(decision.changed), message), effects

        outcome, effects = await self._store.write("acknowledge incident", acknowledge)
        self._count(effects)
        return outcome

    async def resolve(
        self, incident_id: int, who: str, via: str, now: datetime, *, once: str | None = None
    ) -> AckOutcome:
        routing = self._routing()

        def resolve(tx: Transaction) -> tuple[AckOutcome, _Effects]:
            effects = _Effects()
            incident, replayed = self._lock_incident(tx, incident_id, once, via, now)
            if replayed:
                return AckOutcome(incident, AckResult.ALREADY_USED, "already used"), effects
            context = self._context(routing, incident)
            decision = escalation.resolve(incident.progress, f"{who} via {via}", context, now)
            changed = self._decide(
                tx, routing, incident, decision, now, effects, who=f"{who} via {via}", via=via
            )
            updated = tx.incident(incident_id, lock=False)
            assert updated is not None
            message = f"resolved by {who} via {via}" if changed else "already resolved"
            return AckOutcome(updated, _result(changed), message), effects

        outcome, effects = await self._store.write("resolve incident", resolve)
        self._count(effects)
        return outcome

    @staticmethod
    def _lock_incident(
        tx: Transaction, incident_id: int, once: str | None, via: str, now: datetime
    ) -> tuple[IncidentRecord, bool]:
        """The incident, locked; and whether `once` was used before (a replay to ignore)."""
        incident = tx.incident(incident_id)
        if incident is None:
            raise IncidentNotFound(incident_id)
        replayed = once is not None and not tx.remember_token(once, via, now)
        return incident, replayed

    @staticmethod
    def _context(routing: Routing, incident: IncidentRecord) -> escalation.Context:
        return routing.escalation_context(incident.policy, incident.severity, incident.rule)

    def _decide(
        self,
        tx: Transaction,
        routing: Routing,
        incident: IncidentRecord,
        decision: Decision,
        now: datetime,
        effects: _Effects,
        *,
        who: str,
        via: str = "",
        notify: bool = True,
    ) -> bool:
        """Apply a decision that may resolve the incident: then record `who` resolved it and,
        with `notify`, tell the channels that were paged (but `via`, where the news came from).
        Whether anything changed."""
        if decision.progress.state is not IncidentState.RESOLVED or not decision.changed:
            self._apply(tx, routing, incident, decision, now, effects)
            return decision.changed
        self._apply(tx, routing, incident, decision, now, effects, resolved_at=now, resolved_by=who)
        if notify:
            self._notify_paged(tx, incident, PageEvent.RESOLVE, now, via, who, effects)
        return True

    # --- applying decisions ---------------------------------------------------------------

    def _apply(
        self,
        tx: Transaction,
        routing: Routing,
        incident: IncidentRecord,
        decision: Decision,
        now: datetime,
        effects: _Effects,
        **columns: Any,
    ) -> None:
        severity = columns.get("severity", incident.severity)
        for note in decision.notes:
            tx.add_event(incident.id, now, note.kind, note.detail)
        if decision.changed:
            tx.update_incident(incident.id, decision.progress, **columns)
            effects.move((incident.severity, incident.state), (severity, decision.progress.state))
            damped = escalation.damping_outcome(incident.state, decision.progress.state)
            if damped is not None:
                effects.damped.append((damped[0], severity, damped[1]))
        policy = columns.get("policy", incident.policy)
        pages = [
            page
            for order in decision.pages
            for page in self._pages_for(routing, incident, order, decision, policy, severity, now)
        ]
        # A tier in an alert storm gets its storm page rather than these (incidents/storms.py).
        pages = self._storms.fold(tx, routing, incident, severity, pages, now, effects.storms)
        tx.enqueue_pages(pages)
        effects.pages += len(pages)
        effects.breached += [(severity, tier) for tier in decision.sla_breached_tiers]
        effects.escalated += [(severity, tier) for tier in decision.escalated_tiers]

    def _pages_for(
        self,
        routing: Routing,
        incident: IncidentRecord,
        order: PageOrder,
        decision: Decision,
        policy: str,
        severity: str,
        now: datetime,
    ) -> list[NewPage]:
        context = self._page_context(incident, order, decision, routing, policy, severity, now)
        return [
            NewPage(
                incident_id=incident.id,
                event=order.kind,
                step=order.step,
                round=order.round,
                tier=tier,
                channel=channel.kind,
                channel_index=index,
                channel_label=channel.label,
                context=context.with_(tier=tier),
                due_at=now,
                deadline_at=now + DELIVERY_DEADLINE,
            )
            for tier in order.tiers
            for index, channel in enumerate(routing.rules.tiers[tier].channels)
        ]

    def _notify_paged(
        self,
        tx: Transaction,
        incident: IncidentRecord,
        event: PageEvent,
        now: datetime,
        skip_channel: str,
        who: str,
        effects: _Effects,
    ) -> None:
        """Tell every channel that was paged that the incident was acknowledged or resolved, and
        by whom. The channel the news came from (PagerDuty, through its webhook) is skipped.
        """
        context = self._incident_context(incident, self._routing()).with_(event=event, by=who)
        pages = [
            NewPage(
                incident_id=incident.id,
                event=event,
                step=incident.progress.step,
                round=incident.progress.round,
                tier=paged.tier,
                channel=paged.channel,
                channel_index=paged.channel_index,
                channel_label=paged.channel_label,
                context=context.with_(tier=paged.tier),
                due_at=now,
                deadline_at=now + DELIVERY_DEADLINE,
            )
            for paged in tx.paged_channels(incident.id)
            if paged.channel != skip_channel
        ]
        tx.enqueue_pages(pages)
        effects.pages += len(pages)

    def _incident_context(self, incident: IncidentRecord, routing: Routing) -> PageContext:
        classification = incident.classification
        return incident_context(
            incident_id=incident.id,
            incident_key=incident.key,
            title=incident.title,
            severity=incident.severity,
            severity_rank=routing.rank(incident.severity),
            opened_at=incident.opened_at.isoformat(),
            reason=classification.get("reason"),
            matched_rules=classification.get("matched_rules", []),
            alert=classification.get("alert", {}),
            runbook=incident.runbook,
            candidates=classification.get("runbook_candidates", []),
            incident_url=incident_view_url(self._base_url, self._links(), incident),
        )

    def _page_context(
        self,
        incident: IncidentRecord,
        order: PageOrder,
        decision: Decision,
        routing: Routing,
        policy: str,
        severity: str,
        now: datetime,
    ) -> PageContext:
        progress = decision.progress
        next_escalation = None
        if progress.next_action is escalation.NextAction.ESCALATE and progress.next_action_at:
            tiers = escalation.next_tiers(progress, routing.escalation_context(policy, severity))
            if tiers:
                next_escalation = NextEscalation(progress.next_action_at.isoformat(), tiers)
        token = self._links().issue(incident.id, now)
        return self._incident_context(incident, routing).with_(
            severity=severity,
            severity_rank=routing.rank(severity),
            event=order.kind,
            step=order.step + 1,
            round=order.round,
            ack_url=f"{self._base_url}/ack/{token}",
            next_escalation=next_escalation,
        )

    def _count(self, effects: _Effects) -> None:
        m = self._metrics
        for severity, rule, method in effects.opened:
            m.incidents_opened.labels(severity=severity, rule=rule).inc()
            m.runbook_matches.labels(method=method).inc()
        for severity, tier in effects.escalated:
            m.escalations.labels(severity=severity, tier=tier).inc()
        for severity, tier in effects.breached:
            m.ack_sla_breaches.labels(severity=severity, tier=tier).inc()
        for severity, seconds in effects.acknowledged:
            m.ack_seconds.labels(severity=severity).observe(max(seconds, 0.0))
        for lag in effects.lag:
            m.escalation_lag.observe(max(lag, 0.0))
        for name, at in effects.beats:
            m.heartbeat_last_beat.labels(heartbeat=name).set(at.timestamp())
        for name in effects.missed:
            m.heartbeats_missed.labels(heartbeat=name).inc()
        for kind, severity, outcome in effects.damped:
            if kind == "pending":
                m.pending_ended.labels(severity=severity, outcome=outcome).inc()
            else:
                m.flapping.labels(severity=severity, event=outcome).inc()
        for window in effects.suppressed:
            m.alerts_suppressed.labels(window=window).inc()
        # The open-incident gauge follows what changed; the engine recounts it now and then.
        for before, after in effects.moved:
            if before is not None:
                m.open_incidents.labels(severity=before[0], state=before[1]).dec()
            if after is not None:
                m.open_incidents.labels(severity=after[0], state=after[1]).inc()
        Storms.count(m, effects.storms)
        if effects.pages or effects.storms.pages:
            self._on_new_work()


def _result(changed: bool) -> AckResult:
    return AckResult.CHANGED if changed else AckResult.UNCHANGED


def _classification_json(item: RoutedAlert) -> dict[str, Any]:
    c = item.classification
    return {
        "reason": c.reason,
        "matched_rules": list(c.matched_rules),
        "group_values": dict(c.group_values),
        "alert": item.alert.page_json(),
        "runbook_candidates": list(item.candidates),
    }


def _runbook_note(item: RoutedAlert) -> str:
    runbook = item.runbook
    if not runbook:
        possible = ", ".join(
            f"{c['file']}#{c['anchor']} ({percent(c['confidence'])})"
            for c in item.candidates[:POSSIBLE_SECTIONS]
        )
        if possible:
            return f"no runbook section attached: none confident enough; possible: {possible}"
        return "no runbook section found"
    how = runbook["method"]
    if how == "search":
        how = f"search, confidence {percent(runbook.get('confidence', 0.0))}"
    return (
        f"runbook section {runbook['file']}#{runbook['anchor']} "
        f"({runbook.get('heading', '')}) found by {how}"
    )


__all__ = [
    "AckOutcome",
    "AckResult",
    "IncidentNotFound",
    "IncidentService",
    "IncidentState",
]
