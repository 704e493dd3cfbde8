"""The periodic worker: escalate due incidents and deliver due pages, then sleep until more is due.

Each escalation pass first opens an incident for every heartbeat missed
(router/rules/heartbeats.py): a miss is noticed within `max_sleep` of its deadline.

Two loops run side by side so that a slow channel never delays an escalation: one claims
incidents whose next action is due, the other claims pages whose delivery is due. Each sleeps until
the earliest due time in the store, at most `max_sleep` (other replicas add work this one is not
told about), or until it is woken by new work. Due times live in the database, so whatever fell due
while the daemon was down is done on the first pass after start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from router.errors import StoreError
from router.incidents.service import ESCALATION_BATCH, IncidentService
from router.logs import fields
from router.maintenance.service import MaintenanceService
from router.metrics import Metrics
from router.outbox.dispatcher import Dispatcher
from router.store import Store
from router.store.base import Pruned
from router.types import Clock

log = logging.getLogger("router.engine")


# A pass slower than this is logged: escalations are running late.
SLOW_PASS_SECONDS = 1.0
# Old data is deleted at most this often, this many incidents per transaction (short locks).
PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 500
# The open-incident gauge follows each change this process makes (IncidentService); it is
# recounted from the database this often, for the changes of other replicas (a recount reads
# every open incident: 60 ms at 100,000).
RECOUNT_OPEN_EVERY_SECONDS = 60.0


class Engine:
    def __init__(
        self,
        incidents: IncidentService,
        dispatcher: Dispatcher,
        store: Store,
        metrics: Metrics,
        clock: Clock,
        *,
        retention: timedelta | None = None,
        max_sleep: float = 5.0,
        maintenance: MaintenanceService | None = None,
    ) -> None:
        self._incidents = incidents
        self._dispatcher = dispatcher
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._max_sleep = max_sleep
        self._retention = retention
        self._maintenance = maintenance
        self._last_prune: datetime | None = None
        self._wake_escalations = asyncio.Event()
        self._wake_deliveries = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._open_series: set[tuple[str, str]] = set()
        self._recounted_at: float | None = None
        self._stopping = False
        # Loops that have not finished a pass since start: what fell due while the daemon was
        # down is still being done.
        self._first_pass: set[str] = set()

    @property
    def catching_up(self) -> bool:
        """True from `start()` until both loops have finished a whole pass."""
        return bool(self._first_pass)

    def wake(self) -> None:
        """New work was stored: look now instead of at the next due time."""
        self._wake_escalations.set()
        self._wake_deliveries.set()

    async def run_once(self) -> None:
        """One pass of both loops, for tests and for start-up catch-up."""
        await self.escalate_due()
        await self.deliver_due()

    async def escalate_due(self) -> int:
        # A heartbeat missed now opens its incident, whose first page goes with this pass.
        await self._incidents.check_heartbeats(self._clock())
        handled = 0
        while True:  # bounded: each pass claims a batch and moves its due times forward
            count = await self._incidents.run_due(self._clock())
            handled += count
            if count < ESCALATION_BATCH:
                break
        await self._refresh_open_incidents()
        await self.prune_old()
        return handled

    async def prune_old(self) -> Pruned | None:
        """Delete what the retention period has passed, at most once per PRUNE_EVERY."""
        now = self._clock()
        if self._retention is None or (
            self._last_prune is not None and now - self._last_prune < PRUNE_EVERY
        ):
            return None
        self._last_prune = now
        incidents = alerts = tokens = 0
        while True:  # bounded: each batch deletes incidents that the next one no longer sees
            pruned = await self._store.prune(now - self._retention, PRUNE_BATCH)
            incidents, alerts, tokens = (
                incidents + pruned.incidents,
                alerts + pruned.alerts,
                tokens + pruned.tokens,
            )
            if pruned.incidents < PRUNE_BATCH:
                break
        total = Pruned(incidents, alerts, tokens)
        if incidents or alerts or tokens:
            log.info(
                "deleted data older than the retention period",
                extra=fields(
                    incidents=incidents, alerts=alerts, tokens=tokens, days=self._retention.days
                ),
            )
        return total

    async def deliver_due(self) -> int:
        sent = 0
        while True:
            count = await self._dispatcher.dispatch_due()
            sent += count
            if count == 0:
                return sent

    async def _refresh_open_incidents(self) -> None:
        started = time.monotonic()
        if (
            self._recounted_at is not None
            and started - self._recounted_at < RECOUNT_OPEN_EVERY_SECONDS
        ):
            return
        self._recounted_at = started
        counts = await self._store.count_open_incidents()
        # Series that had incidents before and have none now go back to zero.
        for severity, state in self._open_series | counts.keys():
            self._metrics.open_incidents.labels(severity=severity, state=state).set(
                counts.get((severity, state), 0)
            )
        self._open_series |= counts.keys()
        if self._maintenance is not None:
            active = await self._maintenance.count_active(self._clock())
            self._metrics.maintenance_windows_active.set(active)

    def start(self) -> None:
        self._stopping = False
        self._first_pass = {"escalations", "deliveries"}
        self._tasks = [
            asyncio.create_task(
                self._loop("escalations", self.escalate_due, self._wake_escalations)
            ),
            asyncio.create_task(self._loop("deliveries", self.deliver_due, self._wake_deliveries)),
        ]

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let each loop finish the pass in flight (its transactions commit), then end it.

        A pass still running after `grace_seconds` is cancelled; its open transaction rolls back
        whole and the work stays due for the next start.
        """
        self._stopping = True
        self.wake()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []

    async def _loop(
        self, name: str, work: Callable[[], Awaitable[int]], wake: asyncio.Event
    ) -> None:
        failures = 0
        while not self._stopping:
            wake.clear()
            started = time.perf_counter()
            try:
                await work()
                failures = 0
                self._first_pass.discard(name)
            except StoreError as exc:
                failures += 1
                log.error("engine pass failed", extra=fields(loop=name, error=str(exc)))
            except Exception:
                # A bug must not stop escalations for good: log it, back off, and try again.
                failures += 1
                log.exception("engine pass failed unexpectedly", extra=fields(loop=name))
            elapsed = time.perf_counter() - started
            if elapsed > SLOW_PASS_SECONDS:
                log.warning("slow engine pass", extra=fields(loop=name, seconds=round(elapsed, 2)))
            if not self._stopping:
                await self._sleep(wake, failures)

    async def _sleep(self, wake: asyncio.Event, failures: int) -> None:
        timeout = self._max_sleep
        if failures:
            timeout = min(self._max_sleep * 2**failures, 60.0)
        else:
            with contextlib.suppress(StoreError):
                due = await self._store.next_due()
                if due is not None:
                    timeout = max(0.0, min(timeout, (due - self._clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)
