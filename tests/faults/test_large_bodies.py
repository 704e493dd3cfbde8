"""One large webhook does not hold the writer: other senders get through while it is written.

A body of 20,000 alerts is written 500 alerts per transaction; a one-alert webhook sent while it is
being written is answered before it, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService

from ..conftest import auth_headers
from ..scenario import FakeClock, alert, alertmanager_body, running_router

LARGE = 20_000


@pytest.fixture
async def router(tmp_path: Path, database: str) -> Any:
    async with running_router(tmp_path, FakeClock(), database) as service:
        yield service


async def test_a_small_webhook_is_answered_while_a_large_one_is_written(
    router: RouterService,
) -> None:
    large = alertmanager_body(*(alert("SlowThing", instance=f"host-{n}") for n in range(LARGE)))
    small = alertmanager_body(alert("DataCorruption"))
    finished: list[str] = []
    async with TestClient(TestServer(router.web_app())) as client:

        async def post(name: str, body: dict[str, Any]) -> None:
            data = io.BytesIO(json.dumps(body).encode())  # aiohttp streams a file-like body
            headers = {**auth_headers(), "Content-Type": "application/json"}
            response = await client.post("/webhooks/alertmanager", data=data, headers=headers)
            assert response.status == 200, await response.text()
            finished.append(name)

        big = asyncio.create_task(post("large", large))
        async with asyncio.timeout(60):
            while await router.store.count_alerts() == 0 and not big.done():
                await asyncio.sleep(0.01)  # the large one is being written
        assert not big.done(), big
        await post("small", small)
        await big
    assert finished == ["small", "large"]
    assert await router.store.count_alerts() == LARGE + 1
