"""The outbox dispatcher: claim due pages, send them, retry what may clear, record every outcome.

Delivery is at least once. A page is claimed with a lease before it is sent and its outcome is
recorded after; if the process dies in between, the lease runs out and the page is sent again
(PagerDuty's dedup_key makes the repeat harmless). Failures that may clear by themselves (HTTP
429 and 5xx, time-outs, network errors) are retried with exponential backoff and jitter until the
page's deadline; others fail at once. Either way the outcome lands in the incident's timeline and
in `router_pages_total`, and the other channels of the tier are not held up: every page is its
own row.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from router.errors import DeliveryError, FailureReason
from router.logs import fields
from router.metrics import Metrics
from router.models import PageState
from router.outbox.channels import ChannelSet, Delivery, Excerpt, Sent, no_excerpt
from router.outbox.context import PageContext, PageContextError, PageRunbook
from router.routing import Routing
from router.rules import ChannelTarget
from router.store import Store
from router.store.base import PageRecord, Transaction
from router.types import Clock

log = logging.getLogger("router.outbox.dispatcher")


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
        lease: timedelta = timedelta(minutes=2),
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

    async def dispatch_due(self) -> int:
        """Send every page that is due now; how many were attempted."""
        now = self._clock()
        pages = await self._store.claim_due_pages(
            now, limit=self._concurrency * 4, lease_until=now + self._lease
        )
        if pages:
            limit = asyncio.Semaphore(self._concurrency)

            async def bounded(page: PageRecord) -> None:
                async with limit:
                    await self._deliver(page)

            await asyncio.gather(*(bounded(page) for page in pages))
        self._metrics.notification_queue_depth.set(await self._store.pending_pages())
        return len(pages)

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
        delay = self._retry.delay(attempts, self._rng) if error and error.retryable else None
        if error is None:
            state, next_attempt, outcome = PageState.DELIVERED, now, "delivered"
            detail = f"{what}: delivered"
        elif delay is not None and now + delay < page.deadline_at:
            state, outcome, next_attempt = PageState.PENDING, "retried", now + delay
            retry_at = next_attempt.isoformat()
            detail = f"{what}: attempt {attempts} failed ({error}); retrying at {retry_at}"
        else:
            state, next_attempt, outcome = PageState.FAILED, now, "failed"
            why = "gave up at the delivery deadline" if error.retryable else "not retryable"
            detail = f"{what}: failed after {attempts} attempt(s), {why}: {error}"

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
            tx.add_event(page.incident_id, now, f"page_{outcome}", detail)

        await self._store.write("record page outcome", record)
        self._metrics.pages.labels(tier=page.tier, channel=page.channel, outcome=outcome).inc()
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
            ),
        )


def _what(page: PageRecord) -> str:
    if page.event.pages:
        round_ = f" (repeat {page.round})" if page.round else ""
        return f"paged tier {page.tier} step {page.step + 1}{round_} via {page.channel_label}"
    return f"sent {page.event} to tier {page.tier} via {page.channel_label}"
