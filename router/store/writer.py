"""Where write transactions run: off the event loop, each as one call into a database thread.

A webhook's writes are a dozen small statements. Awaiting each of them on its own costs far more
than the statements themselves, so the work of one transaction is a plain function of a
`Connection`, handed whole to a thread.

- `GroupWriter` (SQLite) owns the one connection that writes. Jobs that queue up while a commit is
  under way run together in the next transaction and are committed by one COMMIT, one fsync
  (group commit). Bulk jobs (webhooks' alerts) queue after the others (escalations, deliveries,
  acknowledgements: small, and due now), so that a storm of alerts does not make escalations
  late. A job that fails is answered with its error and the group's transaction is rolled
  back and run again without it: jobs are plain functions of the transaction, so running one again
  does the same (a savepoint per job would cost more than the job). A failed COMMIT fails every job
  of the group. Each caller is answered only after the commit that holds its writes.
- `PooledWriter` (PostgreSQL) runs each job in its own transaction on a pool of threads: the server
  commits concurrent transactions together itself, and row locks let replicas share work.

A job that has not started by its deadline is not run: its caller gets `StoreError` (503 for a
webhook, which the sender retries) instead of waiting without end behind a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from router.errors import StoreError

log = logging.getLogger("router.store")

T = TypeVar("T")

# How long a job may wait for its turn before it is refused: far longer than a group commit
# (milliseconds), far shorter than a sender's timeout (Alertmanager: 10 s by default).
QUEUE_DEADLINE_SECONDS = 8.0
# One group transaction holds at most this much work (jobs give their weight, alerts for a
# webhook slice): a bounded time under the write lock, so that other senders get through.
GROUP_WEIGHT = 2_000


# The order of the queue: other jobs first, then bulk ones, then the stop of the writer; in
# order of submission within each.
_FIRST, _BULK, _STOP = 0, 1, 2


@dataclass(eq=False)
class _Job(Generic[T]):
    what: str
    work: Callable[[Connection], T]
    weight: int
    deadline: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    result: Any = field(default=None)
    error: BaseException | None = None

    def settle(self) -> None:
        """Hand the outcome to the waiting coroutine (called on the event loop)."""
        if self.future.done():  # the caller stopped waiting
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.result)


def _store_error(what: str, exc: BaseException) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    return StoreError(f"{what}: {exc}")


class GroupWriter:
    """The single writer of a SQLite database: group commit on one connection in one thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        queue_deadline: float = QUEUE_DEADLINE_SECONDS,
        name: str = "router-db-writer",
    ) -> None:
        self._engine = engine
        self._queue_deadline = queue_deadline
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job[Any] | None]] = queue.PriorityQueue()
        self._submitted = itertools.count()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        # Figures for /metrics and the logs: groups committed and jobs in them.
        self.groups = 0
        self.jobs = 0

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise _store_error("open database", self._start_error)

    async def submit(
        self, what: str, work: Callable[[Connection], T], weight: int = 1, *, bulk: bool = False
    ) -> T:
        if self._closed:
            raise StoreError(f"{what}: the store is closed")
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(
            what,
            work,
            weight,
            time.monotonic() + self._queue_deadline,
            loop,
            loop.create_future(),
        )
        self._jobs.put((_BULK if bulk else _FIRST, next(self._submitted), job))
        return await job.future

    def close(self) -> None:
        """Run what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put((_STOP, next(self._submitted), None))
        self._thread.join()

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = self._engine.connect()
        except BaseException as exc:  # reported to start()
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        with contextlib.closing(conn):
            while True:
                group, stop = self._next_group()
                if group:
                    self._commit_group(conn, group)
                if stop:
                    return

    def _next_group(self) -> tuple[list[_Job[Any]], bool]:
        """The jobs of the next transaction: one to wait for, then whatever else is queued."""
        _, _, first = self._jobs.get()
        if first is None:
            return [], True
        group, weight = [first], first.weight
        while weight < GROUP_WEIGHT:
            try:
                _, _, job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return group, True
            group.append(job)
            weight += job.weight
        return group, False

    def _commit_group(self, conn: Connection, group: list[_Job[Any]]) -> None:
        now = time.monotonic()
        for job in group:
            if now > job.deadline:
                job.error = _waited_too_long(job.what, self._queue_deadline)
        pending = [job for job in group if job.error is None]
        try:
            while pending and self._run_together(conn, pending):
                pending = [job for job in pending if job.error is None]
        except BaseException as exc:  # the writer thread must not die
            for job in pending:
                job.error = _store_error(job.what, exc)
            if not isinstance(exc, SQLAlchemyError | OSError):
                log.exception("database writer failed")
        self.groups += 1
        self.jobs += len(group)
        _settle_all(group)

    @staticmethod
    def _run_together(conn: Connection, jobs: list[_Job[Any]]) -> bool:
        """Run `jobs` in one transaction and commit it; True when one of them failed, which
        rolled the transaction back (the failed job holds its error; the others must run again).
        A failed BEGIN or COMMIT raises."""
        with conn.begin() as transaction:
            for job in jobs:
                try:
                    job.result = job.work(conn)
                except Exception as exc:  # the job's caller gets it
                    job.error = _store_error(job.what, exc) if _is_db(exc) else exc
                    transaction.rollback()
                    return True
        return False


class PooledWriter:
    """Transactions of PostgreSQL: each job in its own transaction, on a pool of threads."""

    def __init__(self, engine: Engine, threads: int) -> None:
        self._engine = engine
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="router-db")
        self._closed = False

    def start(self) -> None:
        pass

    async def submit(
        self, what: str, work: Callable[[Connection], T], weight: int = 1, *, bulk: bool = False
    ) -> T:
        # `bulk` orders nothing here: each job has its own connection and transaction.
        if self._closed:
            raise StoreError(f"{what}: the store is closed")
        deadline = time.monotonic() + QUEUE_DEADLINE_SECONDS

        def run() -> T:
            if time.monotonic() > deadline:
                raise _waited_too_long(what, QUEUE_DEADLINE_SECONDS)
            try:
                with self._engine.begin() as conn:
                    return work(conn)
            except (SQLAlchemyError, OSError) as exc:
                raise _store_error(what, exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True)


def _waited_too_long(what: str, deadline: float) -> StoreError:
    return StoreError(f"{what}: waited over {deadline:.0f} s for the database; try again")


def _is_db(exc: BaseException) -> bool:
    return isinstance(exc, SQLAlchemyError | OSError)


def _settle_all(group: list[_Job[Any]]) -> None:
    """Wake every caller of the group, with one hop per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
    for job in group:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, jobs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(_settle_jobs, jobs)


def _settle_jobs(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        job.settle()
