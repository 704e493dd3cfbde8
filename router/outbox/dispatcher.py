"""The outbox dispatcher: claim due pages, send them, retry what may clear, record every outcome.

Delivery is at least once. A page is claimed with a short lease before it is sent, and the lease is
renewed while the send runs; if the process dies in between, the lease runs out within seconds and
another replica sends the page again (a lone SQLite daemon releases every claim at start).
PagerDuty's dedup_key makes the repeat harmless.

A failure that may clear by itself (HTTP 429 and 5xx, time-outs, network errors) is retried with
exponential backoff and jitter, capped, for as long as it lasts: a channel outage longer than any
deadline still ends with the on-call tier paged. Only a permanent failure (the service refused the
event as invalid, a bad target, a channel gone from the rules) gives a page up. The timeline gets
one note when a page first fails, one when it is overdue, and its final outcome, never one per
retry; `router_channel_up` and one log line per change of state say which channel is down. The
other channels of the tier are not held up: every page is its own row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.errors import DeliveryError, FailureReason, StoreError
from router.logs import fields
from router.metrics import Metrics
from router.models import PageEvent, PageState
from router.outbox.channels import ChannelSet, Delivery, Excerpt, Sent, no_excerpt
from router.outbox.context import PageContext, PageContextError, PageRunbook
from router.routing import Routing
from router.rules import ChannelTarget
from router.store import Store
from router.store.base import PageRecord, Transaction
from router.types import Clock

log = logging.getLogger("router.outbox.dispatcher")

# How long a claim holds a page before another replica may take it over; renewed every third of
# it while the send runs, so only a dead process's claims ever run out.
LEASE = timedelta(seconds=15)
# The queue-depth gauge is recounted at most this often while pages are being sent: the count
# reads every waiting page (10 ms with 100,000 queued), and a pass sends a few dozen.
QUEUE_DEPTH_EVERY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: base, base·2, base·4, ... capped, each ±jitter."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=5)
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        seconds = min(
            self.base.total_seconds() * 2 ** max(attempt - 1, 0), self.cap.total_seconds()
        )
        return timedelta(seconds=seconds * (1 + rng.uniform(-self.jitter, self.jitter)))


class Dispatcher:
    def __init__(
        self,
        store: Store,
        channels: ChannelSet,
        routing: Callable[[], Routing],
        metrics: Metrics,
        clock: Clock,
        excerpts: Callable[[PageRunbook | None], Excerpt] = lambda _runbook: no_excerpt,
        *,
        concurrency: int = 8,
        lease: timedelta = LEASE,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._channels = channels
        self._routing = routing
        self._metrics = metrics
        self._clock = clock
        self._excerpts = excerpts
        self._concurrency = concurrency
        self._lease = lease
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        # Whether each channel's last delivery succeeded, to log once per change of state.
        self._down_since: dict[str, datetime] = {}
        self._depth_counted_at = -math.inf

    async def dispatch_due(self) -> int:
        """Send every page that is due now; how many were attempted."""
        now = self._clock()
        pages = await self._store.claim_due_pages(
            now, limit=self._concurrency * 4, lease_until=now + self._lease
        )
        if pages:
            limit = asyncio.Semaphore(self._concurrency)
            sending = {page.id for page in pages}

            async def bounded(page: PageRecord) -> None:
                try:
                    async with limit:
                        await self._deliver(page)
                finally:
                    sending.discard(page.id)

            renewal = asyncio.create_task(self._renew_claims(sending))
            try:
                await asyncio.gather(*(bounded(page) for page in pages))
            finally:
                renewal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewal
        # A pass that found nothing ends a run of passes (Engine.deliver_due): the gauge is exact
        # then. During a backlog it is recounted at most every QUEUE_DEPTH_EVERY_SECONDS.
        counted = time.monotonic()
        if not pages or counted - self._depth_counted_at >= QUEUE_DEPTH_EVERY_SECONDS:
            self._depth_counted_at = counted
            self._metrics.notification_queue_depth.set(await self._store.pending_pages())
        return len(pages)

    async def _renew_claims(self, sending: set[int]) -> None:
        """Keep the claims of the pages still being sent from running out (a slow channel)."""
        every = self._lease.total_seconds() / 3
        while sending:
            await asyncio.sleep(every)
            if sending:
                try:
                    await self._store.renew_claims(sorted(sending), self._clock() + self._lease)
                except StoreError as exc:
                    # The sends go on; at worst another replica repeats a page (at least once).
                    log.warning("could not renew page claims", extra=fields(error=str(exc)))

    async def _deliver(self, page: PageRecord) -> None:
        started = time.perf_counter()
        label = page.channel_label
        try:
            target = self._target(page)
            channel = self._channels.for_kind(target.kind)
            context = PageContext.from_json(page.context)
            delivery = Delivery(
                page_id=page.id,
                event=page.event,
                tier=page.tier,
                target=target,
                context=context,
                excerpt=self._excerpts(context.runbook),
                timezone=self._routing().rules.timezone,
            )
            sent: Sent | None = await channel.send(delivery)
            error: DeliveryError | None = None
        except DeliveryError as exc:
            sent, error = None, exc
        except PageContextError as exc:
            # Queued by a newer release sharing the database: retried, so that one of its
            # replicas sends it; this one never sends half of what it cannot read.
            sent, error = (
                None,
                DeliveryError(str(exc), retryable=True, reason=FailureReason.NEWER_RELEASE),
            )
        except Exception as exc:  # a channel bug must not stop the other deliveries
            log.exception("channel raised unexpectedly", extra=fields(page=page.id, channel=label))
            sent = None
            error = DeliveryError(
                f"unexpected error: {exc!r}", retryable=True, reason=FailureReason.ERROR
            )
        self._metrics.delivery_duration.labels(channel=page.channel).observe(
            time.perf_counter() - started
        )
        await self._record(page, error, sent)

    def _target(self, page: PageRecord) -> ChannelTarget:
        """The page's channel in the rules in force (its secret is never stored in the outbox)."""
        tier = self._routing().rules.tiers.get(page.tier)
        channels = tier.channels if tier else ()
        if page.channel_index < len(channels):
            target = channels[page.channel_index]
            if target.label == page.channel_label:
                return target
        raise DeliveryError(
            f"tier {page.tier} no longer has channel {page.channel_label} (rules changed)",
            retryable=False,
            reason=FailureReason.TIER_CHANGED,
        )

    async def _record(
        self, page: PageRecord, error: DeliveryError | None, sent: Sent | None
    ) -> None:
        now = self._clock()
        attempts = page.attempts + 1
        what = _what(page)
        # Timeline notes of this attempt: the first failure, crossing the deadline, the outcome.
        notes: list[tuple[str, str]] = []
        if error is None:
            state, next_attempt, outcome = PageState.DELIVERED, now, "delivered"
            late = f" at attempt {attempts}" if attempts > 1 else ""
            notes.append(("page_delivered", f"{what}: delivered{late}"))
        elif error.retryable:
            delay = self._retry.delay(attempts, self._rng)
            state, outcome, next_attempt = PageState.PENDING, "retried", now + delay
            if attempts == 1:
                notes.append(
                    (
                        "page_retried",
                        f"{what}: attempt 1 failed ({error}); retrying at "
                        f"{next_attempt.isoformat()}, then with backoff up to "
                        f"{_duration(self._retry.cap)} until it is delivered",
                    )
                )
            # The attempts' times cut the time line in consecutive intervals (scheduled, ran],
            # (ran, next scheduled]: the deadline falls in exactly one, so this is noted once.
            deadline = page.deadline_at
            if page.next_attempt_at < deadline <= now or now < deadline <= next_attempt:
                notes.append(
                    (
                        "page_overdue",
                        f"{what}: not delivered by its deadline {deadline.isoformat()} "
                        f"({attempts} attempt(s), last: {error}); still retrying, every "
                        f"{_duration(self._retry.cap)} at most",
                    )
                )
        else:
            state, next_attempt, outcome = PageState.FAILED, now, "failed"
            notes.append(
                (
                    "page_failed",
                    f"{what}: failed after {attempts} attempt(s), not retryable: {error}",
                )
            )

        def record(tx: Transaction) -> None:
            tx.finish_page(
                page.id,
                state=state,
                attempts=attempts,
                next_attempt_at=next_attempt,
                error=None if error is None else f"{error.reason}: {error}",
                now=now,
                sent={"title": sent.title, "body": sent.body} if sent else None,
            )
            for kind, detail in notes:
                tx.add_event(page.incident_id, now, kind, detail)

        await self._store.write("record page outcome", record)
        self._metrics.pages.labels(tier=page.tier, channel=page.channel, outcome=outcome).inc()
        self._track_channel(page.channel_label, error, now)
        level = logging.INFO if error is None else logging.WARNING
        log.log(
            level,
            "page " + outcome,
            extra=fields(
                incident=page.incident_id,
                event=page.event,
                tier=page.tier,
                channel=page.channel_label,
                attempts=attempts,
                reason=None if error is None else error.reason,
                retry_at=next_attempt.isoformat() if outcome == "retried" else None,
            ),
        )

    def _track_channel(self, label: str, error: DeliveryError | None, now: datetime) -> None:
        """`router_channel_up`, and one log line when a channel goes down or comes back."""
        if error is None:
            self._metrics.channel_up.labels(channel=label).set(1)
            since = self._down_since.pop(label, None)
            if since is not None:
                log.warning(
                    "channel recovered",
                    extra=fields(channel=label, down_seconds=round((now - since).total_seconds())),
                )
        elif error.retryable:
            self._metrics.channel_up.labels(channel=label).set(0)
            if label not in self._down_since:
                self._down_since[label] = now
                log.error(
                    "channel down: its pages are retried until it answers",
                    extra=fields(channel=label, reason=error.reason, error=str(error)),
                )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} minutes" if seconds % 60 == 0 and seconds >= 60 else f"{seconds} s"


def _what(page: PageRecord) -> str:
    if page.event is PageEvent.STORM:
        return f"sent the storm page of tier {page.tier} via {page.channel_label}"
    if page.event.pages:
        round_ = f" (repeat {page.round})" if page.round else ""
        return f"paged tier {page.tier} step {page.step + 1}{round_} via {page.channel_label}"
    return f"sent {page.event} to tier {page.tier} via {page.channel_label}"
