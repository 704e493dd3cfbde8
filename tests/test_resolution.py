"""A resolved notice resolves its incident even when it names a later start than the firing one.

Senders that restarted, two Alertmanagers that do not gossip, or a hand-written integration send
a resolution whose `startsAt` is not the firing instance's; on both databases.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from router.app import RouterService

from .scenario import (
    alert,
    incidents,
    router_client,
    router_fixture,
    send,
    timeline,
)

router = router_fixture()


client = router_client


async def test_a_resolution_with_a_later_start_resolves_the_earlier_instance(
    router: RouterService, client: TestClient[Any, Any]
) -> None:
    await send(client, alert("DataCorruption", starts="2026-11-24T08:50:00Z"))
    answer = await send(
        client, alert("DataCorruption", status="resolved", starts="2026-11-24T08:55:00Z")
    )
    assert answer["new"] == 1  # the resolved notice is an instance of its own
    (incident,) = await incidents(router)
    assert incident["state"] == "resolved"
    assert ("alert", f"{incident_alert()} resolved") in await timeline(router, incident["id"])


async def test_a_resolution_older_than_the_firing_instance_leaves_it_firing(
    router: RouterService, client: TestClient[Any, Any]
) -> None:
    await send(client, alert("DataCorruption", starts="2026-11-24T08:55:00Z"))
    await send(client, alert("DataCorruption", status="resolved", starts="2026-11-24T08:50:00Z"))
    (incident,) = await incidents(router)
    assert incident["state"] == "triggered"


def incident_alert() -> str:
    fingerprint = alert("DataCorruption")["fingerprint"]
    return f"alertmanager alert DataCorruption (ledger, {fingerprint})"
