"""Acknowledgement links and PagerDuty webhooks: what is honoured, and what is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.app import RouterService
from router.errors import InvalidLink
from router.links import AckLinks
from router.outbox.channels.pagerduty import signature_valid as pagerduty_signature_valid

from .scenario import (
    FakeClock,
    alert,
    incidents,
    page_contexts,
    pages,
    router_client,
    router_fixture,
    send,
    timeline,
)

Client = TestClient[Any, Any]
PD_SECRET = "pd-webhook-secret"
API_TOKEN = "api-token"
API = {"Authorization": f"Bearer {API_TOKEN}"}


router = router_fixture(api_token=API_TOKEN, pagerduty_webhook_secret=PD_SECRET)


client = router_client


async def open_incidents(router: RouterService, client: Client, *names: str) -> list[str]:
    """Open one incident per alert name; the ack link path of each incident's first page."""
    for name in names:
        await send(client, alert(name, instance=name))
    await router.engine.run_once()
    urls = [context["ack_url"] for context in await page_contexts(router, "trigger")]
    assert all(url.startswith("http://router.test/ack/") for url in urls)
    return [url.removeprefix("http://router.test") for url in urls]


async def test_link_preview_does_not_acknowledge(router: RouterService, client: Client) -> None:
    (link,) = await open_incidents(router, client, "DataCorruption")
    response = await client.get(link)
    assert response.status == 200
    page = await response.text()
    assert "DataCorruption: DataCorruption on ledger" in page
    assert "<strong>P0</strong>" in page
    assert '<form method="post"' in page
    assert (await incidents(router))[0]["state"] == "triggered"


async def test_posting_the_link_acknowledges_once(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    (link,) = await open_incidents(router, client, "DataCorruption")
    clock.advance(minutes=2)
    response = await client.post(link, data={"by": "alice"})
    assert response.status == 200
    assert "acknowledged by alice via link" in await response.text()
    assert (await incidents(router))[0]["state"] == "acknowledged"
    replay = await client.post(link, data={"by": "mallory"})
    assert replay.status == 409
    assert (await incidents(router))[0]["acknowledged_by"] == "alice"


async def test_a_tampered_link_is_refused(router: RouterService, client: Client) -> None:
    (link,) = await open_incidents(router, client, "DataCorruption")
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
    for method in (client.get, client.post):
        response = await method(tampered)
        assert response.status == 403
        assert "signature is not valid" in await response.text()
    assert (await incidents(router))[0]["state"] == "triggered"


async def test_a_link_cannot_be_moved_to_another_incident(
    router: RouterService, client: Client
) -> None:
    first, _second = await open_incidents(router, client, "DataCorruption", "SlowThing")
    incident_id, rest = first.removeprefix("/ack/").split(".", 1)
    assert incident_id == "1"
    response = await client.post(f"/ack/2.{rest}")
    assert response.status == 403
    assert [incident["state"] for incident in (await incidents(router))] == [
        "triggered",
        "triggered",
    ]


async def test_an_expired_link_is_refused(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    (link,) = await open_incidents(router, client, "SlowThing")
    clock.advance(hours=24, seconds=1)
    response = await client.post(link)
    assert response.status == 403
    assert "this link expired at" in await response.text()
    assert (await incidents(router))[0]["state"] == "triggered"


@pytest.mark.parametrize("link", ["/ack/garbage", "/ack/1.2.3", "/ack/" + "9" * 40])
async def test_a_malformed_link_is_refused(client: Client, link: str) -> None:
    response = await client.post(link)
    assert response.status == 403
    assert "malformed" in await response.text()


def test_links_verify_only_with_their_own_key() -> None:
    clock = FakeClock()
    token = AckLinks(b"k" * 32).issue(7, clock.now)
    assert AckLinks(b"k" * 32).verify(token, clock.now).incident_id == 7
    with pytest.raises(InvalidLink, match="signature"):
        AckLinks(b"x" * 32).verify(token, clock.now)
    with pytest.raises(InvalidLink, match="expired"):
        AckLinks(b"k" * 32).verify(token, clock.now + timedelta(days=1))


def signed(document: dict[str, Any], secret: str = PD_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-PagerDuty-Signature": f"v1={signature}", "Content-Type": "application/json"}


def pagerduty_event(event_type: str, dedup_key: str, event_id: str = "01EVENT") -> dict[str, Any]:
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-11-24T09:03:00.000Z",
            "agent": {"id": "PUSER1", "type": "user_reference", "summary": "Alice Oncall"},
            "data": {
                "id": "Q1ABCDEF",
                "type": "incident",
                "status": event_type.split(".")[1],
                "incident_key": dedup_key,
                "title": "P0 DataCorruption",
            },
        }
    }


async def dedup_key_of(router: RouterService) -> str:
    (context,) = await page_contexts(router, "trigger")
    key: str = context["dedup_key"]
    return key


async def test_pagerduty_acknowledgement_acknowledges_and_is_not_sent_back(
    router: RouterService, client: Client
) -> None:
    await open_incidents(router, client, "DataCorruption")
    body, headers = signed(pagerduty_event("incident.acknowledged", await dedup_key_of(router)))
    headers["X-Webhook-Id"] = "webhook-1"
    response = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert await response.json() == {"status": "accepted", "changed": True}
    (incident,) = await incidents(router)
    assert (incident["state"], incident["acknowledged_by"]) == ("acknowledged", "Alice Oncall")
    again = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert await again.json() == {"status": "duplicate", "changed": False}
    await router.engine.run_once()
    # The acknowledgement came from PagerDuty: nothing goes back to it; the log tier is told.
    assert [p[:2] for p in (await pages(router))] == [
        ("trigger", "oncall"),
        ("acknowledge", "oncall"),
    ]


async def test_pagerduty_resolution_resolves(router: RouterService, client: Client) -> None:
    await open_incidents(router, client, "DataCorruption")
    body, headers = signed(pagerduty_event("incident.resolved", await dedup_key_of(router)))
    response = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert response.status == 200
    assert (await incidents(router))[0]["state"] == "resolved"
    assert ("resolved", "resolved by Alice Oncall via pagerduty") in await timeline(router, 1)


@pytest.mark.parametrize(
    "signature",
    ["", "v1=", "v1=" + "0" * 64, "v0=whatever", "sha256=abc"],
)
async def test_a_bad_pagerduty_signature_is_refused_and_changes_nothing(
    router: RouterService, client: Client, signature: str
) -> None:
    await open_incidents(router, client, "DataCorruption")
    body, headers = signed(pagerduty_event("incident.resolved", await dedup_key_of(router)))
    headers["X-PagerDuty-Signature"] = signature
    response = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert response.status == 401
    assert (await incidents(router))[0]["state"] == "triggered"


async def test_a_body_signed_with_another_secret_is_refused(
    router: RouterService, client: Client
) -> None:
    await open_incidents(router, client, "DataCorruption")
    body, headers = signed(
        pagerduty_event("incident.resolved", await dedup_key_of(router)), "other"
    )
    assert (await client.post("/webhooks/pagerduty", data=body, headers=headers)).status == 401
    assert (await incidents(router))[0]["state"] == "triggered"


async def test_pagerduty_events_for_other_incidents_are_ignored(
    router: RouterService, client: Client
) -> None:
    await open_incidents(router, client, "DataCorruption")
    for document in (
        pagerduty_event("incident.acknowledged", "somebody-elses-key"),
        pagerduty_event("incident.acknowledged", "rr-999:nope"),
        pagerduty_event("incident.priority_updated", await dedup_key_of(router)),
    ):
        body, headers = signed(document)
        response = await client.post("/webhooks/pagerduty", data=body, headers=headers)
        assert await response.json() == {"status": "ignored"}
    assert (await incidents(router))[0]["state"] == "triggered"


def test_signature_header_with_several_signatures() -> None:
    body = b'{"event": {}}'
    good = hmac.new(b"s", body, hashlib.sha256).hexdigest()
    assert pagerduty_signature_valid(b"s", body, f"v1={'a' * 64}, v1={good}")
    assert not pagerduty_signature_valid(b"s", body + b" ", f"v1={good}")


async def test_api_needs_its_token(router: RouterService, client: Client) -> None:
    await open_incidents(router, client, "DataCorruption")
    no_token = await client.post("/api/v1/incidents/1/ack", json={"by": "x"})
    assert no_token.status == 401
    wrong = await client.get("/api/v1/incidents", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert (await incidents(router))[0]["state"] == "triggered"


async def test_incident_api_lists_and_shows_the_timeline(
    router: RouterService, client: Client
) -> None:
    await open_incidents(router, client, "DataCorruption", "SlowThing")
    listing = await (await client.get("/api/v1/incidents?state=open", headers=API)).json()
    assert [incident["id"] for incident in listing["incidents"]] == [2, 1]
    first = listing["incidents"][1]
    for field in (
        "id",
        "key",
        "state",
        "severity",
        "title",
        "policy",
        "step",
        "opened_at",
        "acknowledged_at",
        "resolved_at",
    ):
        assert field in first
    detail = await (await client.get("/api/v1/incidents/1", headers=API)).json()
    assert detail["alerts"][0]["alertname"] == "DataCorruption"
    assert detail["alerts"][0]["status"] == "firing"
    assert detail["timeline"][1]["detail"].startswith("P0 by rule corruption")
    assert {"at", "kind", "detail"} == set(detail["timeline"][0])
    (delivery,) = detail["pages"]
    assert (delivery["event"], delivery["tier"], delivery["channel"], delivery["state"]) == (
        "trigger",
        "oncall",
        "log",
        "delivered",
    )
    assert delivery["title"] == "[P0] TRIGGERED: DataCorruption: DataCorruption on ledger"
    assert delivery["attempts"] == 1 and delivery["last_error"] is None
    assert (await client.get("/api/v1/incidents/99", headers=API)).status == 404
    bad = await client.get("/api/v1/incidents?state=sleeping", headers=API)
    assert bad.status == 400
    assert (await bad.json())["error"].startswith("state: must be one of open")


async def test_api_refuses_a_bad_name(router: RouterService, client: Client) -> None:
    await open_incidents(router, client, "DataCorruption")
    for body in (b"{", b'{"by": 5}', b'{"by": ""}', json.dumps({"by": "x" * 101}).encode()):
        response = await client.post("/api/v1/incidents/1/ack", data=body, headers=API)
        assert response.status == 400
    assert (await incidents(router))[0]["state"] == "triggered"
