"""Fakes of what lives outside the machine, as small servers on loopback ports.

`FakePagerDuty` is the Events API v2 (`POST /v2/enqueue`): it records every request and answers
202, 400, 429 or 500 as told (a queue of statuses; 202 when the queue is empty), with the bodies
PagerDuty documents. `Receiver` records any POST (an Apprise `json://` target). `SmtpServer` is a
real SMTP server (aiosmtpd) that keeps every message it receives.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from .support import free_port


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class _LoopbackServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.url = ""
        self._server: TestServer | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> str:
        """Listen on a free loopback port; the base URL (also kept as `url`)."""
        self._server = TestServer(self.app(), host="127.0.0.1")
        await self._server.start_server()
        self.url = str(self._server.make_url("")).rstrip("/")
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _record(self, request: web.Request) -> Recorded:
        recorded = Recorded(
            request.method, request.path, dict(request.headers), await request.read()
        )
        self.requests.append(recorded)
        return recorded


# The answers of the Events API v2 ("Events API v2 Overview", Response Codes & Retry Logic).
_ANSWERS: dict[int, dict[str, Any]] = {
    400: {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["'payload.summary' is missing or blank"],
    },
    429: {
        "status": "throttle event",
        "message": "Requests for this service are arriving too fast.",
    },
}


class FakePagerDuty(_LoopbackServer):
    """`answer(429, 500)` makes the next two requests fail so; then 202 again.

    `answer("slow")` makes the next request wait `slow_seconds` before answering 202.
    """

    def __init__(self, slow_seconds: float = 1.0) -> None:
        super().__init__()
        self._statuses: deque[int | str] = deque()
        self._slow_seconds = slow_seconds

    def answer(self, *statuses: int | str) -> None:
        self._statuses.extend(statuses)

    def recover(self) -> None:
        """Forget the statuses still queued: 202 from the next request on."""
        self._statuses.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        return app

    @property
    def events(self) -> list[dict[str, Any]]:
        return [request.json() for request in self.requests]

    async def _enqueue(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        status = self._statuses.popleft() if self._statuses else 202
        if status == "slow":
            await asyncio.sleep(self._slow_seconds)
            status = 202
        assert isinstance(status, int)
        if status == 202:
            dedup_key = recorded.json().get("dedup_key")
            answer = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
            return web.json_response(answer, status=202)
        if status in _ANSWERS:
            return web.json_response(_ANSWERS[status], status=status)
        return web.Response(status=status, text="Internal Server Error")


class Receiver(_LoopbackServer):
    """Records every POST to any path and answers with the next status of its queue (200)."""

    def __init__(self) -> None:
        super().__init__()
        self._statuses: deque[int] = deque()

    def answer(self, *statuses: int) -> None:
        self._statuses.extend(statuses)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        await self._record(request)
        status = self._statuses.popleft() if self._statuses else 200
        return web.Response(status=status, text="ok" if status == 200 else "failed")


class _KeepMessages:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on a loopback port, without TLS or authentication."""

    def __init__(self) -> None:
        self._handler = _KeepMessages()
        self.port = free_port()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self._handler.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def mailto(self, to: str = "oncall@example.com") -> str:
        """The Apprise URL of this server: plain SMTP (`mailto://`, no STARTTLS)."""
        return f"mailto://127.0.0.1:{self.port}?from=router@example.com&to={to}&mode=insecure"


def text_of(message: EmailMessage) -> str:
    """Every text part of a message (plain and HTML), decoded."""
    parts: Iterable[Any] = message.walk() if message.is_multipart() else [message]
    return "\n".join(part.get_content() for part in parts if part.get_content_maintype() == "text")
