"""What lives outside the machine, for the fault tests of real router processes: a PagerDuty Events
API and a JSON webhook receiver (an Apprise `json://` target) on one loopback port, served from a
thread of their own so that a test can block on the router while they answer. The test switches
them between answering, failing (HTTP 500), answering slowly and refusing connections.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..support import free_port


@dataclass(frozen=True)
class Received:
    path: str
    body: dict[str, Any]


class Outside:
    """`ok()`, `fail(500)`, `slow(seconds)` and `refuse()` apply to every later request."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self._status = 202
        self._delay = 0.0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def json_url(self, path: str) -> str:
        # Apprise's read time-out is 4 s unless told: long enough for the slowest answer here.
        return f"json://127.0.0.1:{self.port}/{path}?rto=60"

    def deliveries(self, path: str = "/v2/enqueue") -> list[dict[str, Any]]:
        return [received.body for received in list(self.received) if received.path == path]

    def ok(self) -> None:
        self._status, self._delay = 202, 0.0
        self._call(self._listen)

    def fail(self, status: int = 500) -> None:
        self._status = status

    def slow(self, seconds: float) -> None:
        self._delay = seconds

    def refuse(self) -> None:
        """Stop listening: connections to the port are refused until `ok()`."""
        self._call(self._stop_listening)

    def start(self) -> None:
        self._thread.start()
        self._call(self._setup)
        self._call(self._listen)

    def close(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, work: Callable[[], Any]) -> None:
        asyncio.run_coroutine_threadsafe(work(), self._loop).result(10)

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()

    async def _listen(self) -> None:
        if self._site is None and self._runner is not None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await self._site.start()

    async def _stop_listening(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def _answer(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read() or b"{}")
        self.received.append(Received(request.path, body))
        if self._delay:
            await asyncio.sleep(self._delay)
        status = self._status
        if request.path != "/v2/enqueue" and status == 202:
            status = 200
        if status in (200, 202):
            answer = {"status": "success", "message": "Event processed"}
            answer["dedup_key"] = body.get("dedup_key", "")
            return web.json_response(answer, status=status)
        return web.Response(status=status, text="Internal Server Error")


@contextmanager
def outside() -> Iterator[Outside]:
    fake = Outside()
    fake.start()
    try:
        yield fake
    finally:
        fake.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> float:
    """Poll `condition` until it holds; the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
