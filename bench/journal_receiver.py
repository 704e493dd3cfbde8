"""A reference receiver for the Alertmanager benchmark: what a journal-first design could take.

`python -m bench.journal_receiver PORT DATABASE` checks each body as runbook-router does
(`parse_body`: the same decoding, limits and field checks, so bad input would still get its 400),
commits the raw body to a journal table (SQLite in WAL with synchronous=FULL, the bodies that
wait together in one transaction), and answers 200 after that commit. It classifies, stores and
pages nothing: the alerts would still have to be processed after the answer. GET /count answers
the alerts committed.

Its rate, beside the counting receiver's and the router's, shows how much of the router's time per
webhook is the work after the check (classification, the alert and incident rows, paging) that a
journal would move past the 2xx rather than save.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import sys
import threading

import uvloop
from aiohttp import web

from router.app import LISTEN_BACKLOG
from router.ingest.payloads import parse_body
from router.models import Source

# A body waiting for its commit: the raw bytes, its alerts, and the future its request awaits.
_Entry = tuple[bytes, int, asyncio.Future[None]]


def _journal(database: str, entries: queue.SimpleQueue[_Entry], counted: dict[str, int]) -> None:
    """The writer thread: every body that waits goes into one transaction, one fsync."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, body BLOB)")
    while True:
        batch = [entries.get()]
        while not entries.empty():
            batch.append(entries.get_nowait())
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO journal (body) VALUES (?)", [(b,) for b, _, _ in batch])
        connection.execute("COMMIT")
        loop = batch[0][2].get_loop()
        loop.call_soon_threadsafe(_answer, batch, counted)


def _answer(batch: list[_Entry], counted: dict[str, int]) -> None:
    counted["alerts"] += sum(alerts for _, alerts, _ in batch)
    for _, _, committed in batch:
        if not committed.done():
            committed.set_result(None)


def app(database: str) -> web.Application:
    counted = {"alerts": 0}
    entries: queue.SimpleQueue[_Entry] = queue.SimpleQueue()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        alerts = len(parse_body(Source.ALERTMANAGER, body).alerts)
        committed = asyncio.get_running_loop().create_future()
        entries.put((body, alerts, committed))
        await committed
        return web.json_response({"status": "accepted"})

    async def count(_request: web.Request) -> web.Response:
        return web.json_response(counted)

    async def start_writer(_app: web.Application) -> None:
        threading.Thread(target=_journal, args=(database, entries, counted), daemon=True).start()

    application = web.Application()
    application.router.add_post("/{path:.*}", receive)
    application.router.add_get("/count", count)
    application.on_startup.append(start_writer)
    return application


def main() -> None:
    uvloop.install()
    web.run_app(
        app(sys.argv[2]),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
        backlog=LISTEN_BACKLOG,
    )


if __name__ == "__main__":
    main()
