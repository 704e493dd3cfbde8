"""Several replicas on one PostgreSQL database share the work: each escalation and page happens once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService

from .scenario import FakeClock, alert, incidents, running_router, send

INCIDENTS = 40


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[list[RouterService]]:
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_router(tmp_path, clock, "postgresql"))
        second = RouterService(first.settings, clock=clock)
        await second.start()
        stack.push_async_callback(second.close)
        yield [first, second]


async def test_two_replicas_escalate_and_page_each_step_once(replicas: list[RouterService]) -> None:
    first, second = replicas
    clock: FakeClock = first.clock  # type: ignore[assignment]
    async with (
        TestClient(TestServer(first.web_app())) as a,
        TestClient(TestServer(second.web_app())) as b,
    ):
        clients: list[TestClient[Any, Any]] = [a, b]
        # Every alert reaches both replicas, as from two Alertmanager peers behind a load balancer.
        firing = [alert("DataCorruption", service=f"ledger-{n}") for n in range(INCIDENTS)]
        # ... and one incident whose many alerts arrive at both replicas at the same moment.
        firing += [alert("SlowThing", instance=f"prover-{n}") for n in range(INCIDENTS)]
        await asyncio.gather(*(send(client, item) for item in firing for client in clients))
        for minutes in (0, 5, 10):
            clock.advance(minutes=minutes)
            await asyncio.gather(
                *(replica.engine.run_once() for replica in replicas for _ in range(2))
            )
    opened = await incidents(first)
    assert len(opened) == INCIDENTS + 1
    assert sum(incident["key"].startswith("slow|") for incident in opened) == 1
    pages = await first.store.list_pages()
    per_step = Counter((page.incident_id, page.step, page.event) for page in pages)
    assert set(per_step.values()) == {1}, [key for key, count in per_step.items() if count > 1]
    # 41 incidents paged to oncall at once is an alert storm (threshold 20): the P0s are paged one
    # by one, and the P1, when it came after 20 of them, is folded into the one storm page that
    # both replicas agree on.
    folded = [page for page in pages if page.state == "folded"]
    storm_pages = [page for page in pages if page.event == "storm"]
    assert [(page.tier, page.event) for page in folded] in ([], [("oncall", "trigger")])
    assert len(storm_pages) == len(folded)
    # P0: oncall, lead after 5m, manager after 10m more; the P1 incident: oncall, lead at 15m.
    assert Counter(page.tier for page in pages) == {
        "oncall": INCIDENTS + 1 + len(storm_pages),
        "lead": INCIDENTS + 1,
        "manager": INCIDENTS,
    }
    sent = [page for page in pages if page.state != "folded"]
    assert {page.state for page in sent} == {"delivered"}
    assert {page.attempts for page in sent} == {1}
