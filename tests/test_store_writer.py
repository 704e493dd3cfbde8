"""The SQLite writer: jobs that wait together commit together, and one failing job fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from router.errors import StoreError
from router.store.writer import GROUP_WEIGHT, GroupWriter


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (text TEXT UNIQUE)")
    return engine


def rows(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(row[0] for row in conn.exec_driver_sql("SELECT text FROM notes"))


def insert(text: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.exec_driver_sql("INSERT INTO notes VALUES (?)", (text,))
        return text

    return work


async def test_jobs_that_wait_together_commit_in_one_group_and_a_failure_stays_its_own(
    engine: sa.Engine,
) -> None:
    writer = GroupWriter(engine)
    writer.start()
    release = threading.Event()

    def blocking(conn: Connection) -> str:
        release.wait(10)  # holds the writer while the next jobs queue up
        return insert("first")(conn)

    def failing(conn: Connection) -> str:
        insert("doomed")(conn)  # written, then rolled back with the job's failure
        raise ValueError("a bug in this job")

    try:
        first = asyncio.ensure_future(writer.submit("first", blocking))
        await asyncio.sleep(0.05)
        queued = [
            asyncio.ensure_future(writer.submit("a", insert("a"))),
            asyncio.ensure_future(writer.submit("fails", failing)),
            asyncio.ensure_future(writer.submit("duplicate", insert("a"))),
            asyncio.ensure_future(writer.submit("b", insert("b"))),
        ]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *queued, return_exceptions=True)
    finally:
        writer.close()
    assert results[0] == "first"
    assert results[1] == "a"
    assert isinstance(results[2], ValueError)
    # A database error is a StoreError naming what was being done.
    assert isinstance(results[3], StoreError) and str(results[3]).startswith("duplicate: ")
    assert results[4] == "b"
    assert rows(engine) == ["a", "b", "first"]
    assert (writer.groups, writer.jobs) == (2, 5)


async def test_a_job_that_waited_past_its_deadline_is_refused(engine: sa.Engine) -> None:
    writer = GroupWriter(engine, queue_deadline=0.0)
    writer.start()
    try:
        with pytest.raises(StoreError, match="waited over 0 s for the database; try again"):
            await writer.submit("late", insert("late"))
    finally:
        writer.close()
    assert rows(engine) == []


async def test_a_closed_writer_refuses_work(engine: sa.Engine) -> None:
    writer = GroupWriter(engine)
    writer.start()
    writer.close()
    with pytest.raises(StoreError, match="the store is closed"):
        await writer.submit("after", insert("after"))


async def test_bulk_jobs_queue_after_the_others_and_close_runs_them_all(engine: sa.Engine) -> None:
    """A storm's webhooks queued first still let an escalation due now go ahead of them."""
    writer = GroupWriter(engine)
    writer.start()
    release = threading.Event()
    order: list[str] = []

    def noted(text: str) -> Callable[[Connection], str]:
        def work(conn: Connection) -> str:
            order.append(text)
            return insert(text)(conn)

        return work

    def blocking(conn: Connection) -> str:
        release.wait(10)
        return noted("first")(conn)

    first = asyncio.ensure_future(writer.submit("first", blocking))
    await asyncio.sleep(0.05)
    # Each bulk job fills most of a group: one group each.
    bulk = [
        asyncio.ensure_future(
            writer.submit(f"webhook {n}", noted(f"webhook {n}"), GROUP_WEIGHT - 1, bulk=True)
        )
        for n in range(3)
    ]
    await asyncio.sleep(0.05)
    due = asyncio.ensure_future(writer.submit("escalation", noted("escalation"), 100))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(first, *bulk, due)
    writer.close()
    assert order == ["first", "escalation", "webhook 0", "webhook 1", "webhook 2"]
    assert rows(engine) == sorted(order)
