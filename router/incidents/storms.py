"""Alert storms: beyond the rules' threshold, a tier gets one storm page instead of a page per
incident.

The rules' `storm: {threshold, window, update_every}` (router/rules/storm.py) decides. When a
trigger or escalation page to a tier would make more than `threshold` incidents paged to that tier
within `window`, and the incident is not of the most severe level (P0 is always paged one by one),
its pages to that tier are stored `folded`: never sent, shown in the incident's deliveries, and its
timeline says which storm they were folded into. The count is read from the outbox (pages sent and
folded alike), inside the transaction that queues the pages and under one lock on PostgreSQL, so
replicas sharing a database count the same.

The tier gets one storm page (event `storm`) through its channels when the storm begins; while
incidents keep folding, an updated page at most every `update_every`. A storm page not yet sent
when more incidents fold is brought up to date instead of being followed by another. A storm ends
when `window` passes with no more than `threshold` incidents paged to the tier; incidents folded
since its last page still get their updated page when it is due. Storm pages are rows of the
outbox like any page, attached to the latest incident folded into the storm (its deliveries and
timeline show them), with their own PagerDuty `dedup_key` per storm (`StormSummary.dedup_key`).

Escalations fold like openings: an escalation page to a storming tier is folded (the incident's
escalation goes on as its policy says, its timeline and progress move), and escalations count
towards the storm of the tier they page.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from router.logs import fields
from router.metrics import Metrics
from router.models import PageEvent, PageState
from router.outbox.context import PageAlert, PageContext, StormSummary
from router.routing import Routing
from router.store.base import IncidentRecord, NewPage, StormRecord, Transaction

log = logging.getLogger("router.storms")

# Services named in a storm page, the busiest first.
TOP_SERVICES = 3
# The timeline event of an incident whose page was folded.
FOLDED_EVENT = "storm"


@dataclass
class _Touched:
    """A storm that pages were folded into during this transaction."""

    storm: StormRecord
    started: bool
    incident_id: int  # the latest incident folded: the next storm page is attached to it
    folded: int = 0  # pages


@dataclass
class StormEffects:
    """What a transaction did to storms, to apply once it committed (metrics, logs)."""

    touched: dict[str, _Touched] = field(default_factory=dict)
    folded: Counter[str] = field(default_factory=Counter)  # pages folded, by tier
    ended: list[StormRecord] = field(default_factory=list)
    storming: int | None = None  # tiers in a storm, when the transaction counted them
    pages: int = 0  # storm pages queued


class Storms:
    """Folds pages into storms and queues storm pages, inside the incident service's
    transactions."""

    def __init__(self, base_url: str, deadline: timedelta) -> None:
        self._list_url = f"{base_url.rstrip('/')}/incidents?state=open"
        self._deadline = deadline

    @staticmethod
    def lock(tx: Transaction, routing: Routing) -> None:
        """Take the storm lock first in a transaction that may page, before any row lock, so
        that two transactions never wait for each other in a cycle."""
        if routing.rules.storm.enabled:
            tx.lock_storms()

    def fold(
        self,
        tx: Transaction,
        routing: Routing,
        incident: IncidentRecord,
        severity: str,
        pages: list[NewPage],
        now: datetime,
        effects: StormEffects,
    ) -> list[NewPage]:
        """`pages` of one decision, those to a storming tier folded."""
        settings = routing.rules.storm
        if not settings.enabled or not pages or routing.rank(severity) == 0:
            return pages
        by_tier: dict[str, list[NewPage]] = {}
        for page in pages:
            by_tier.setdefault(page.tier, []).append(page)
        kept: list[NewPage] = []
        for tier, group in by_tier.items():
            if group[0].event not in (PageEvent.TRIGGER, PageEvent.ESCALATE):
                kept += group
                continue
            tx.lock_storms()
            before = tx.incidents_paged(
                tier, now - settings.window, settings.threshold, exclude=incident.id
            )
            if before < settings.threshold:
                kept += group
                continue
            touched = effects.touched.get(tier)
            if touched is None:
                storm = tx.open_storm(tier)
                started = storm is None
                if storm is None:
                    storm = tx.start_storm(tier, now, incident.id)
                touched = effects.touched[tier] = _Touched(storm, started, incident.id)
            touched.incident_id = incident.id
            touched.folded += len(group)
            effects.folded[tier] += len(group)
            kept += [replace(page, state=PageState.FOLDED) for page in group]
            what = "page" if group[0].event is PageEvent.TRIGGER else "escalation page"
            tx.add_event(
                incident.id,
                now,
                FOLDED_EVENT,
                f"{what} to {tier} folded into the storm page of tier {tier} "
                f"(storm {touched.storm.id}: more than {settings.threshold} incidents paged to "
                f"{tier} within {_seconds(settings.window.total_seconds())}); it is not sent on "
                "its own",
            )
        return kept

    def page(self, tx: Transaction, routing: Routing, now: datetime, effects: StormEffects) -> None:
        """At the end of a transaction that folded pages: a storm page for each storm begun, an
        unsent one brought up to date, or an update queued or owed."""
        every = routing.rules.storm.update_every
        for tier, touched in effects.touched.items():
            storm = touched.storm
            columns: dict[str, object] = {
                "folded": storm.folded + touched.folded,
                "last_incident_id": touched.incident_id,
            }
            if touched.started:
                self._queue(tx, routing, storm, touched.incident_id, now, effects)
            elif tx.refresh_storm_pages(
                tier,
                storm.last_page_at,
                # Made only when a page waits: it reads every incident of the storm.
                functools.partial(self._context, tx, routing, storm, touched.incident_id, now),
            ):
                pass  # its page is still waiting to be sent: it now says what happened since
            elif now >= storm.last_page_at + every:
                self._queue(tx, routing, storm, touched.incident_id, now, effects)
                columns.update(last_page_at=now, update_due_at=None)
            elif storm.update_due_at is None:
                columns["update_due_at"] = storm.last_page_at + every
            tx.update_storm(storm.id, **columns)

    def upkeep(
        self, tx: Transaction, routing: Routing, now: datetime, effects: StormEffects
    ) -> None:
        """In each escalation pass: end the storms whose window passed quietly, and queue the
        updated pages that fell due."""
        settings = routing.rules.storm
        storming = 0
        for storm in tx.storms_to_watch():
            if storm.ended_at is None:
                recent = tx.incidents_paged(
                    storm.tier, now - settings.window, settings.threshold + 1
                )
                if (
                    settings.enabled
                    and recent > settings.threshold
                    and storm.tier in routing.rules.tiers
                ):
                    storming += 1
                else:
                    storm = replace(storm, ended_at=now)
                    tx.update_storm(storm.id, ended_at=now)
                    effects.ended.append(storm)
            if storm.update_due_at is not None and storm.update_due_at <= now:
                self._queue(tx, routing, storm, storm.last_incident_id, now, effects)
                tx.update_storm(storm.id, last_page_at=now, update_due_at=None)
        effects.storming = storming

    def _queue(
        self,
        tx: Transaction,
        routing: Routing,
        storm: StormRecord,
        incident_id: int,
        now: datetime,
        effects: StormEffects,
    ) -> None:
        tier = routing.rules.tiers.get(storm.tier)
        if tier is None:
            return  # the tier left the rules: nobody to tell
        context = self._context(tx, routing, storm, incident_id, now)
        pages = [
            NewPage(
                incident_id=incident_id,
                event=PageEvent.STORM,
                step=0,
                round=0,
                tier=storm.tier,
                channel=channel.kind,
                channel_index=index,
                channel_label=channel.label,
                context=context,
                due_at=now,
                deadline_at=now + self._deadline,
            )
            for index, channel in enumerate(tier.channels)
        ]
        tx.enqueue_pages(pages)
        effects.pages += len(pages)

    def _context(
        self,
        tx: Transaction,
        routing: Routing,
        storm: StormRecord,
        incident_id: int,
        now: datetime,
    ) -> PageContext:
        """The storm page: the incidents paged to the tier from one window before the storm
        began until now (or its end)."""
        window = routing.rules.storm.window
        since = storm.started_at - window
        until = storm.ended_at or now
        paged = tx.tier_paged(storm.tier, since, until)
        severities = Counter(entry.severity for entry in paged)
        services = Counter(
            service for entry in paged if (service := _service(entry.classification))
        )
        by_severity = tuple(sorted(severities.items(), key=lambda item: routing.rank(item[0])))
        summary = StormSummary(
            storm_id=storm.id,
            tier=storm.tier,
            incidents=len(paged),
            span_seconds=round((until - since).total_seconds()),
            by_severity=by_severity,
            top_services=tuple(services.most_common(TOP_SERVICES)),
            list_url=self._list_url,
            escalations=any(entry.escalation for entry in paged),
            ended=storm.ended_at is not None,
        )
        worst = by_severity[0][0] if by_severity else routing.rules.default_severity
        return PageContext(
            incident_id=incident_id,
            incident_key=f"storm:{storm.tier}",
            dedup_key=summary.dedup_key,
            title=f"Alert storm on {storm.tier}",
            severity=worst,
            severity_rank=routing.rank(worst),
            opened_at=storm.started_at.isoformat(),
            alert=PageAlert(),
            incident_url=self._list_url,
            tier=storm.tier,
            event=PageEvent.STORM,
            storm=summary,
        )

    @staticmethod
    def count(metrics: Metrics, effects: StormEffects) -> None:
        """After the commit: metrics and the log lines of storms begun and ended."""
        for tier, touched in effects.touched.items():
            if touched.started:
                metrics.storms.labels(tier=tier).inc()
                metrics.storming_tiers.inc()
                log.warning(
                    "alert storm began: pages to the tier fold into one storm page",
                    extra=fields(tier=tier, storm=touched.storm.id),
                )
        for tier, folded in effects.folded.items():
            metrics.pages_folded.labels(tier=tier).inc(folded)
        for storm in effects.ended:
            log.warning(
                "alert storm ended: the tier is paged incident by incident again",
                extra=fields(tier=storm.tier, storm=storm.id, folded=storm.folded),
            )
        if effects.storming is not None:
            metrics.storming_tiers.set(effects.storming)


def _service(classification: dict[str, object]) -> str:
    groups = classification.get("group_values")
    if isinstance(groups, dict) and groups.get("service"):
        return str(groups["service"])
    alert = classification.get("alert")
    labels = alert.get("labels") if isinstance(alert, dict) else None
    if isinstance(labels, dict):
        return str(labels.get("service") or labels.get("job") or "")
    return ""


def _seconds(seconds: float) -> str:
    return f"{round(seconds)} s"
