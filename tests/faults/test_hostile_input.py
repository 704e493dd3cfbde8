"""Hostile and impossible input, against the real application on loopback, on SQLite and on
PostgreSQL: every test runs on both databases and expects the same answer from each.

A body the router can never store must be refused with a 4xx naming the field (Alertmanager retries
a 5xx for ever, holding back every alert of the batch), and requests that could be replayed,
forged from another web site or crafted to crash a handler must be refused, not served.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from router.app import RouterService
from router.cli import main
from router.metrics import Metrics
from router.settings import Settings

from ..conftest import WEBHOOK_TOKEN, auth_headers
from ..databases import database_url
from ..scenario import (
    SCENARIO_RULES,
    FakeClock,
    alert,
    alertmanager_body,
    incidents,
    page_contexts,
    router_client,
    router_fixture,
    send,
    timeline,
)
from ..support import free_port

Client = TestClient[Any, Any]
PD_SECRET = "pd-webhook-secret"


# No API token: the loopback default, where nothing but the Host and Origin checks stands between a
# web page in the on-call engineer's browser and the API.
router = router_fixture(pagerduty_webhook_secret=PD_SECRET)


client = router_client


async def post_raw(client: Client, source: str, body: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"/webhooks/{source}", data=body, headers=auth_headers())
    return response.status, await response.json()


def batch_with(bad: dict[str, Any]) -> dict[str, Any]:
    """A body of three good alerts and `bad` as the fourth, alerts[3]."""
    good = [alert(name, instance=name) for name in ("DataCorruption", "SlowThing", "DiskFull")]
    return alertmanager_body(*good, bad)


# --- bodies that can never be stored ------------------------------------------------------------


async def assert_refused(
    router: RouterService,
    client: Client,
    body: bytes | dict[str, Any],
    error: str,
    source: str = "alertmanager",
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = await post_raw(client, source, raw)
    assert (status, answer) == (400, {"error": error})
    assert await router.store.count_alerts() == 0
    assert await incidents(router) == []


@pytest.mark.parametrize(
    ("field", "written"),
    [
        ("startsAt", "9999-12-31T23:59:59-01:00"),
        ("startsAt", "0001-01-01T00:30:00+01:00"),
        ("endsAt", "9999-12-31T23:30:00.123456789-00:31"),
    ],
)
async def test_a_time_beyond_the_calendar_in_utc_is_refused(
    router: RouterService, client: Client, field: str, written: str
) -> None:
    bad = alert("Overflow", status="resolved")
    bad[field] = written
    kept = written.replace(".123456789", ".123456")
    await assert_refused(
        router,
        client,
        batch_with(bad),
        f"alerts.3.{field}: Value error, {kept} is outside years 1 to 9999 in UTC",
    )


async def test_the_last_and_first_times_utc_holds_are_stored(
    router: RouterService, client: Client
) -> None:
    latest = alert("Latest", starts="9999-12-31T23:59:59.999999Z")
    earliest = alert("Earliest", starts="0001-01-01T00:00:01Z")
    status, answer = await post_raw(
        client, "alertmanager", json.dumps(alertmanager_body(latest, earliest)).encode()
    )
    assert (status, answer["new"]) == (200, 2)
    listing = await client.get("/api/v1/incidents")
    assert listing.status == 200
    assert len((await listing.json())["incidents"]) == 2


async def test_a_lone_surrogate_is_refused(router: RouterService, client: Client) -> None:
    bad = alert("Surrogate")
    body = json.dumps(batch_with(bad)).replace("Surrogate on ledger", "broken \\ud800 text")
    await assert_refused(
        router,
        client,
        body.encode(),
        "alerts.3.annotations.summary: contains a lone UTF-16 surrogate (\\ud800 to \\udfff)",
    )


async def test_a_nul_character_in_a_label_name_is_named_with_escapes(
    router: RouterService, client: Client
) -> None:
    bad = alert("NulName")
    bad["labels"]["inst\x00ance"] = "db-1"
    await assert_refused(
        router,
        client,
        batch_with(bad),
        "alerts.3.labels.inst\\u0000ance.[key]: contains a NUL character",
    )


async def test_a_fingerprint_longer_than_the_store_keeps_is_refused(
    router: RouterService, client: Client
) -> None:
    bad = alert("LongFingerprint", fingerprint="f" * 65)
    await assert_refused(
        router,
        client,
        batch_with(bad),
        "alerts.3.fingerprint: String should have at most 64 characters",
    )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_a_grafana_value_that_is_not_finite_is_refused(
    router: RouterService, client: Client, literal: str
) -> None:
    bad = {**alert("NotANumber"), "values": {"B": 0}}
    body = json.dumps({**batch_with(bad), "version": "1"}).replace('"B": 0', f'"B": {literal}')
    await assert_refused(
        router,
        client,
        body.encode(),
        "alerts.3.values.B: Input should be a finite number",
        "grafana",
    )


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ("labels", "alerts.3.labels.instance"),
        ("annotations", "alerts.3.annotations.summary"),
    ],
)
async def test_a_nul_character_is_refused(
    router: RouterService, client: Client, part: str, field: str
) -> None:
    bad = alert("Nul", instance="db-1")
    bad["annotations"]["summary"] = "db-1"
    bad[part] = {**bad[part], field.rsplit(".", 1)[1]: "db\x00-1"}
    await assert_refused(router, client, batch_with(bad), f"{field}: contains a NUL character")


async def test_a_long_alertname_is_stored_on_both_databases(
    router: RouterService, client: Client
) -> None:
    long_name = "A" * 1000
    status, answer = await post_raw(
        client, "alertmanager", json.dumps(alertmanager_body(alert(long_name))).encode()
    )
    assert (status, answer["new"]) == (200, 1)
    (incident,) = await incidents(router)
    assert incident["title"].startswith("A" * 100)


# --- PagerDuty webhooks: replays ------------------------------------------------------------------


def pagerduty_delivery(
    event_type: str, incident_key: str, occurred_at: str, event_id: str = "01EVENTCAPTURED"
) -> tuple[bytes, dict[str, str]]:
    """A signed v3 webhook delivery, as PagerDuty sends it."""
    document = {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred_at,
            "agent": {"id": "PUSER1", "type": "user_reference", "summary": "Alice Oncall"},
            "data": {"id": "Q1ABCDEF", "type": "incident", "incident_key": incident_key},
        }
    }
    body = json.dumps(document).encode()
    signature = hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-PagerDuty-Signature": f"v1={signature}",
        "X-Webhook-Id": "delivery-1",
        "Content-Type": "application/json",
    }
    return body, headers


async def open_incident(router: RouterService, client: Client) -> str:
    """Open one P0 incident; its PagerDuty dedup_key."""
    await send(client, alert("DataCorruption"))
    await router.engine.run_once()
    (context,) = await page_contexts(router, "trigger")
    key: str = context["dedup_key"]
    return key


@pytest.mark.parametrize("replayed_id", ["delivery-2", None])
async def test_a_delivery_replayed_under_another_webhook_id_acts_once(
    router: RouterService, client: Client, replayed_id: str | None
) -> None:
    key = await open_incident(router, client)
    body, headers = pagerduty_delivery("incident.acknowledged", key, "2026-11-24T09:00:30Z")
    first = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert await first.json() == {"status": "accepted", "changed": True}
    if replayed_id is None:
        del headers["X-Webhook-Id"]
    else:
        headers["X-Webhook-Id"] = replayed_id
    replay = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert (replay.status, await replay.json()) == (200, {"status": "duplicate", "changed": False})
    kinds = [kind for kind, _detail in await timeline(router, 1)]
    assert kinds.count("acknowledged") == 1


async def test_a_captured_acknowledgement_cannot_silence_the_incident_later(
    router: RouterService, client: Client, clock: FakeClock
) -> None:
    key = await open_incident(router, client)
    body, headers = pagerduty_delivery("incident.acknowledged", key, "2026-11-24T09:00:30Z")
    first = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert await first.json() == {"status": "accepted", "changed": True}
    # The P0 policy's acknowledgement expires after an hour: the incident pages again.
    clock.advance(hours=1, minutes=1)
    await router.engine.run_once()
    assert (await incidents(router))[0]["state"] == "triggered"
    headers["X-Webhook-Id"] = "delivery-from-the-attacker"
    replay = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert replay.status == 400
    assert await replay.json() == {
        "error": "event.occurred_at: more than 10 minutes ago; refused as a possible replay"
    }
    assert (await incidents(router))[0]["state"] == "triggered"


async def test_an_event_without_its_own_id_is_refused(
    router: RouterService, client: Client
) -> None:
    key = await open_incident(router, client)
    body, headers = pagerduty_delivery(
        "incident.acknowledged", key, "2026-11-24T09:00:30Z", event_id=""
    )
    response = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert response.status == 400
    assert await response.json() == {"error": "event.id: must be a string of 1 to 128 characters"}
    assert (await incidents(router))[0]["state"] == "triggered"


@pytest.mark.parametrize("number", ["9" * 30, "１２", "٣"])
async def test_a_signed_body_with_an_impossible_incident_number_is_refused(
    router: RouterService, client: Client, number: str
) -> None:
    await open_incident(router, client)
    body, headers = pagerduty_delivery(
        "incident.resolved", f"rr-{number}:corruption", "2026-11-24T09:00:30Z"
    )
    response = await client.post("/webhooks/pagerduty", data=body, headers=headers)
    assert response.status == 400
    assert await response.json() == {
        "error": "data.incident_key: the incident number is not one this router gives"
    }
    assert (await incidents(router))[0]["state"] == "triggered"


# --- clients that go away -------------------------------------------------------------------------


@pytest.fixture
async def served(router: RouterService) -> AsyncIterator[int]:
    """The application served as `serve` serves it (aiohttp's test server cancels a handler whose
    client went away, which the daemon's runner does not); its port."""
    runner = web.AppRunner(router.web_app(), handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


async def test_a_client_that_disconnects_mid_body_is_not_an_internal_error(
    router: RouterService, served: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    body = json.dumps(alertmanager_body(alert("DataCorruption"))).encode()
    writer.write(
        b"POST /webhooks/alertmanager HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{served}\r\n".encode()
        + f"Authorization: Bearer {WEBHOOK_TOKEN}\r\n".encode()
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    assert await reader.read() == b""  # nothing was answered
    # The server notices the disconnect on its own schedule: wait for its log line.
    for _ in range(500):
        if any("disconnected" in record.getMessage() for record in caplog.records):
            break
        await asyncio.sleep(0.01)
    disconnects = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert [r.levelno for r in disconnects] == [logging.INFO]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await router.store.count_alerts() == 0


# --- numbers in paths and queries -----------------------------------------------------------------


@pytest.mark.parametrize("limit", ["%C2%B2", "1" * 5000, "%D9%A3", "0", "501", "-1", "+5"])
async def test_a_limit_that_is_not_ascii_digits_in_range_is_refused(
    router: RouterService, client: Client, limit: str
) -> None:
    await open_incident(router, client)
    response = await client.get(f"/api/v1/incidents?limit={limit}")
    assert response.status == 400
    assert await response.json() == {"error": "limit: must be a whole number from 1 to 500"}


@pytest.mark.parametrize("number", ["%C2%B9", "1" * 5000, "%D9%A1", "%EF%BC%91", "01a"])
async def test_an_incident_number_that_is_not_ascii_digits_is_not_found(
    router: RouterService, client: Client, number: str
) -> None:
    await open_incident(router, client)  # incident 1: "١" (Arabic-Indic one) must not reach it
    read = await client.get(f"/api/v1/incidents/{number}")
    assert (read.status, await read.json()) == (404, {"error": "no such incident"})
    ack = await client.post(f"/api/v1/incidents/{number}/ack")
    assert (ack.status, await ack.json()) == (404, {"error": "no such incident"})
    assert (await incidents(router))[0]["state"] == "triggered"


# --- other web sites ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:9099", "127.0.0.1.evil.example"])
async def test_a_rebound_host_name_cannot_read_or_resolve(
    router: RouterService, client: Client, host: str
) -> None:
    await open_incident(router, client)
    read = await client.get("/api/v1/incidents", headers={"Host": host})
    assert (read.status, await read.json()) == (
        403,
        {"error": "the Host header names another site"},
    )
    resolve = await client.post("/api/v1/incidents/1/resolve", headers={"Host": host})
    assert resolve.status == 403
    assert (await incidents(router))[0]["state"] == "triggered"


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:9099", "[::1]:9099", "router.test"])
async def test_the_router_s_own_names_are_served(
    router: RouterService, client: Client, host: str
) -> None:
    await open_incident(router, client)
    read = await client.get("/api/v1/incidents", headers={"Host": host})
    assert read.status == 200
    assert len((await read.json())["incidents"]) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.router.test"},
    ],
)
async def test_a_cross_site_post_changes_nothing(
    router: RouterService, client: Client, headers: dict[str, str]
) -> None:
    await open_incident(router, client)
    response = await client.post("/api/v1/incidents/1/resolve", headers=headers)
    assert (response.status, await response.json()) == (
        403,
        {"error": "a request from another web site may not change anything"},
    )
    (context,) = await page_contexts(router, "trigger")
    link = await client.post(
        context["ack_url"].removeprefix("http://router.test"), data={"by": "x"}, headers=headers
    )
    assert link.status == 403
    assert (await incidents(router))[0]["state"] == "triggered"


async def test_a_same_origin_post_acts(router: RouterService, client: Client) -> None:
    await open_incident(router, client)
    own = {"Origin": f"http://{client.host}:{client.port}", "Sec-Fetch-Site": "same-origin"}
    (context,) = await page_contexts(router, "trigger")
    path = context["ack_url"].removeprefix("http://router.test")
    response = await client.post(path, data={"by": "alice"}, headers=own)
    assert response.status == 200
    assert (await incidents(router))[0]["state"] == "acknowledged"
    behind_proxy = {"Origin": "http://router.test", "Sec-Fetch-Site": "same-origin"}
    resolve = await client.post("/api/v1/incidents/1/resolve", headers=behind_proxy)
    assert resolve.status == 200
    assert (await incidents(router))[0]["state"] == "resolved"


async def test_link_pages_cannot_be_framed_nor_leak_their_address(
    router: RouterService, client: Client
) -> None:
    await open_incident(router, client)
    (context,) = await page_contexts(router, "trigger")
    path = context["ack_url"].removeprefix("http://router.test")
    for response in (await client.get(path), await client.get(path[:-3] + "xyz")):
        assert response.headers["X-Frame-Options"] == "DENY"
        # The Referer goes to the router only (its own form posts), never to another site.
        assert response.headers["Referrer-Policy"] == "same-origin"
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "form-action 'self'" in policy
        assert "script-src" not in policy and "unsafe" not in policy


# --- secrets in rules files -----------------------------------------------------------------------

ROUTING_KEY = "R0UT1NGKEYs3cr3t0000000000000000"
PASSWORD = "hunter2-correct-horse"
SECRETS = {
    "PD_KEY": ROUTING_KEY,
    "MAIL_PASSWORD": PASSWORD,
    "MAIL_URL": f"mailtos://alice:{PASSWORD}@mail.example.com",
}
TYPOS = {
    "pagerduty_not_a_mapping": "tiers:\n  typo: {pagerduty: '${PD_KEY}'}\n",
    "apprise_not_a_list": "tiers:\n  typo: {apprise: '${MAIL_URL}'}\n",
    "tier_not_a_mapping": "tiers:\n  typo: '${PD_KEY}'\n",
    "log_not_a_boolean": "tiers:\n  typo: {log: '${MAIL_PASSWORD}'}\n",
    "url_in_a_name": "tiers:\n  typo: {apprise: ['mailtos//alice:${MAIL_PASSWORD}@x']}\n",
    "unknown_apprise_scheme": "tiers:\n  typo: {apprise: ['mailtoz://alice:${MAIL_PASSWORD}@x']}\n",
    "key_as_a_duration": (
        "policies:\n  typo:\n    P1:\n      steps: [{notify: [oncall], ack_within: '${PD_KEY}'}]\n"
    ),
    "key_in_a_matcher": (
        "rules:\n  - name: typo\n    matchers: ['team=\"${PD_KEY}\"x']\n    severity: P1\n"
    ),
    "key_as_a_runbook": "rules:\n  - {name: typo, matchers: ['a=\"b\"'], runbook: '${PD_KEY}'}\n",
}


def rules_with_typo(tmp_path: Path, typo: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(SCENARIO_RULES, rules)
    (rules / "typo.yaml").write_text(TYPOS[typo])
    return rules


def assert_no_secret(text: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} shown"
    assert PASSWORD not in text


@pytest.mark.parametrize("typo", sorted(TYPOS))
def test_check_never_prints_a_secret_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], typo: str
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    assert main(["check", str(rules_with_typo(tmp_path, typo))]) == 1
    output = capsys.readouterr()
    assert "typo.yaml:" in output.out  # the mistake is reported, where it is
    assert_no_secret(output.out + output.err)


@pytest.mark.parametrize("typo", sorted(TYPOS))
async def test_a_reload_never_logs_a_secret_it_read(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    clock: FakeClock,
    database: str,
    typo: str,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    rules = tmp_path / "rules"
    shutil.copytree(SCENARIO_RULES, rules)
    async with database_url(database, tmp_path) as url:
        service = RouterService(
            Settings(_env_file=None, database_url=url, rules_dir=rules),  # type: ignore[call-arg]
            metrics=Metrics(),
            clock=clock,
        )
        await service.start()
        try:
            (rules / "typo.yaml").write_text(TYPOS[typo])
            assert service.reload_rules() is False
        finally:
            await service.close()
    failures = [r for r in caplog.records if r.getMessage().startswith("rules reload failed")]
    assert len(failures) == 1
    logged = "\n".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')}" for record in caplog.records
    )
    assert "typo.yaml:" in logged
    assert_no_secret(logged)
