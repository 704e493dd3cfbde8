"""The web pages over HTTP: who may see them, what they show, and what bad input gets.

The browser tests (test_console_browser.py) walk the pages as a person does; these check the
answers a browser does not show: status codes, headers, refusals, and that a refused form changes
nothing.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.maintenance.service import NewWindow
from router.metrics import Metrics
from router.settings import Settings

from .conftest import FIXTURES, ROOT, WEBHOOK_TOKEN, auth_headers
from .databases import database_url
from .scenario import FakeClock
from .support import free_port, router_env, start_router, stop

Client = TestClient[Any, Any]
FIRING = FIXTURES / "payloads" / "good" / "alertmanager" / "firing_two_alerts.json"
PUBLIC = "http://router.test"


def router_settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        rules_dir=ROOT / "rules",
        webhook_token=WEBHOOK_TOKEN,  # type: ignore[arg-type]
        public_url=PUBLIC,
        **values,
    )


async def started(settings: Settings, clock: FakeClock) -> RouterService:
    service = RouterService(settings, metrics=Metrics(), clock=clock)
    await service.start()
    return service


@pytest.fixture
async def service(tmp_path: Path, clock: FakeClock) -> AsyncIterator[RouterService]:
    router_service = await started(router_settings(tmp_path), clock)
    yield router_service
    await router_service.close()


@pytest.fixture
async def client(service: RouterService) -> AsyncIterator[Client]:
    async with TestClient(TestServer(service.web_app())) as test_client:
        yield test_client


async def fire(client: Client) -> None:
    response = await client.post(
        "/webhooks/alertmanager", data=FIRING.read_bytes(), headers=auth_headers()
    )
    assert response.status == 200, await response.text()


async def fire_disk(client: Client) -> None:
    """A second incident: another alert, service and severity."""
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "runbook-router",
        "groupKey": "{}:{}",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "service": "storage", "severity": "warning"},
                "annotations": {"summary": "Disk almost full on storage-3"},
                "startsAt": "2026-11-24T08:59:30Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "d15cf011d15cf011",
            }
        ],
    }
    response = await client.post("/webhooks/alertmanager", json=body, headers=auth_headers())
    assert response.status == 200, await response.text()


async def page(client: Client, path: str, **headers: str) -> tuple[int, str]:
    response = await client.get(path, headers={"Host": "router.test", **headers})
    return response.status, await response.text()


def form_token(html: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def test_pages_are_html_with_the_security_headers(client: Client) -> None:
    await fire(client)
    for path in ("/", "/incidents", "/incidents/1", "/routing", "/rules"):
        response = await client.get(path, headers={"Host": "router.test"})
        assert response.status == 200, path
        assert response.content_type == "text/html"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp  # no script at all
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
    css = await client.get("/static/console.css", headers={"Host": "router.test"})
    assert css.content_type == "text/css"
    assert "prefers-color-scheme: dark" in await css.text()


async def test_the_list_filters_by_state_severity_service_and_text(
    tmp_path: Path, clock: FakeClock, database: str
) -> None:
    async with database_url(database, tmp_path) as url:
        settings = router_settings(tmp_path).model_copy(update={"database_url": url})
        service = await started(settings, clock)
        try:
            async with TestClient(TestServer(service.web_app())) as client:
                await check_filters(client)
        finally:
            await service.close()


async def check_filters(client: Client) -> None:
    await fire(client)
    await fire_disk(client)
    _, everything = await page(client, "/incidents")
    titles = re.findall(r'<a href="/incidents/(\d+)">', everything)
    assert titles == ["2", "1"]  # newest first
    _, p0 = await page(client, "/incidents?severity=P0")
    assert "LedgerDataCorruption" in p0 and "DiskFull" not in p0
    _, by_text = await page(client, "/incidents?q=disk")
    assert re.findall(r'<a href="/incidents/(\d+)">', by_text) == ["2"]
    _, resolved = await page(client, "/incidents?state=resolved")
    assert "No incident matches" in resolved
    _, by_service = await page(client, "/incidents?service=ledger")
    assert "LedgerDataCorruption" in by_service
    _, other = await page(client, "/incidents?service=ledge")
    assert "No incident matches" in other  # a whole value, not a part of one
    _, wildcard = await page(client, "/incidents?q=%25")
    assert "No incident matches" in wildcard  # `%` is a character, not LIKE's wildcard


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("state=sideways", "state: one of all, open"),
        ("severity=P9", "severity: one of P0"),
        ("q=" + "x" * 101, "q: at most 100 characters"),
        ("service=led%00ger", "service: no control characters"),
        ("page=0", "page: a number from 1 to 10000"),
        ("page=10001", "page: a number from 1 to 10000"),
        ("page=%D9%A2", "page: a number from 1 to 10000"),
    ],
)
async def test_a_bad_filter_is_a_400_that_names_it(client: Client, query: str, says: str) -> None:
    status, html = await page(client, f"/incidents?{query}")
    assert status == 400
    assert says in html


async def test_the_list_pages_through_older_incidents_with_its_filters(client: Client) -> None:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": f"Thing{number:03d}", "service": "ledger"},
            "annotations": {"summary": f"thing {number}"},
            "startsAt": "2026-11-24T08:59:30Z",
            "fingerprint": f"{number:016x}",
        }
        for number in range(205)
    ]
    body = {"version": "4", "status": "firing", "groupKey": "{}:{}", "alerts": alerts}
    response = await client.post("/webhooks/alertmanager", json=body, headers=auth_headers())
    assert response.status == 200, await response.text()

    def shown(html: str) -> list[str]:
        return re.findall(r'<a href="/incidents/(\d+)">', html)

    def link(html: str, rel: str) -> str | None:
        match = re.search(rf'<a href="([^"]+)" id="\w+" rel="{rel}">', html)
        return match.group(1).replace("&amp;", "&") if match else None

    _, first = await page(client, "/incidents?state=open&service=ledger")
    assert len(shown(first)) == 200
    assert link(first, "prev") is None
    assert link(first, "next") == "/incidents?state=open&service=ledger&page=2"
    _, second = await page(client, "/incidents?state=open&service=ledger&page=2")
    assert len(shown(second)) == 5
    assert link(second, "next") is None
    assert link(second, "prev") == "/incidents?state=open&service=ledger"
    # Every incident once, newest first across both pages.
    ids = [int(number) for number in shown(first) + shown(second)]
    assert ids == sorted(set(ids), reverse=True) and len(ids) == 205
    _, past = await page(client, "/incidents?page=3")
    assert shown(past) == [] and "No incident matches" in past


async def test_the_incident_page_shows_the_runbook_section_as_html(client: Client) -> None:
    await fire(client)
    status, html = await page(client, "/incidents/1")
    assert status == 200
    assert "Data Corruption Detected" in html
    assert "<pre><code" in html  # the section's commands
    assert "found by rule" in html
    # The links the source sent with the alert.
    assert '<a href="http://prometheus:9090/graph?g0.expr=ledger_checksum_mismatch_total' in html
    assert "page_delivered" in html or "page" in html
    missing, _ = await page(client, "/incidents/99")
    assert missing == 404
    odd, _ = await page(client, "/incidents/%C2%B2")
    assert odd == 404


async def test_the_buttons_need_the_page_form_token(client: Client, service: RouterService) -> None:
    await fire(client)
    await fire_disk(client)
    refused = await client.post(
        "/incidents/1/ack", data={"form_token": "1.x", "by": "mallory"}, allow_redirects=False
    )
    assert refused.status == 403
    detail = await service.store.incident_detail(1)
    assert detail is not None and detail.incident.state.value == "triggered"
    _, html = await page(client, "/incidents/1")
    nul = await client.post(
        "/incidents/1/ack", data={"form_token": form_token(html), "by": "al\x00ice"}
    )
    assert nul.status == 400 and "by: no control characters" in await nul.text()
    _, still = await page(client, "/incidents/1")
    assert 'id="acknowledge"' in still  # nothing changed
    acked = await client.post(
        "/incidents/1/ack",
        data={"form_token": form_token(html), "by": "alice"},
        allow_redirects=False,
    )
    assert acked.status == 303 and acked.headers["Location"] == "/incidents/1"
    _, after = await page(client, "/incidents/1")
    assert "by alice" in after
    assert 'id="acknowledge"' not in after


async def test_the_signed_link_of_a_page_opens_that_incident_only(
    tmp_path: Path, clock: FakeClock
) -> None:
    users = tmp_path / "web-config.yml"
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    users.write_text(f"basic_auth_users:\n  alice: '{hashed}'\n")
    service = await started(router_settings(tmp_path, web_config_file=users), clock)
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            await fire(client)
            await fire_disk(client)
            status, _ = await page(client, "/incidents/1")
            assert status == 401
            pages = await service.store.list_pages(1)
            link = pages[0].context["incident_url"]
            assert link.startswith(f"{PUBLIC}/incidents/1?view=")
            path = link.removeprefix(PUBLIC)
            status, html = await page(client, path)
            assert status == 200 and 'id="acknowledge"' in html
            other, _ = await page(client, path.replace("/incidents/1?", "/incidents/2?"))
            assert other == 403
            forged, _ = await page(client, path[:-3] + "AAA")
            assert forged == 403
            view = path.split("view=", 1)[1]
            acked = await client.post(
                "/incidents/1/ack",
                data={"form_token": form_token(html), "view": view, "by": "bob"},
                allow_redirects=False,
            )
            assert acked.status == 303
            assert acked.headers["Location"] == f"/incidents/1?view={view}"
            detail = await service.store.incident_detail(1)
            assert detail is not None and detail.incident.acknowledged_by == "bob"
            # A page left open half a day must be reloaded before its buttons act.
            clock.advance(hours=13)
            stale = await client.post(
                "/incidents/1/resolve",
                data={"form_token": form_token(html), "view": view},
                allow_redirects=False,
            )
            assert stale.status == 403 and "Form expired" in await stale.text()
            # The link lasts 30 days from the incident's opening, when the page was made.
            clock.advance(days=30)
            expired, says = await page(client, path)
            assert expired == 403 and "this link expired at" in says
    finally:
        await service.close()


async def test_basic_auth_users_of_a_web_config_file(tmp_path: Path, clock: FakeClock) -> None:
    users = tmp_path / "web-config.yml"
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    users.write_text(f"basic_auth_users:\n  alice: '{hashed}'\n")
    service = await started(router_settings(tmp_path, web_config_file=users), clock)

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    try:
        async with TestClient(TestServer(service.web_app())) as client:
            response = await client.get("/incidents", headers={"Host": "router.test"})
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            wrong, _ = await page(client, "/incidents", Authorization=basic("alice", "nope"))
            assert wrong == 401
            right, html = await page(client, "/rules", Authorization=basic("alice", "secret"))
            assert right == 200 and "signed in as alice" in html
    finally:
        await service.close()


async def test_a_trusted_proxy_header_names_the_user(tmp_path: Path, clock: FakeClock) -> None:
    settings = router_settings(tmp_path, web_trusted_user_header="X-Forwarded-User")
    service = await started(settings, clock)
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            await fire(client)
            await fire_disk(client)
            status, _ = await page(client, "/incidents")
            assert status == 401
            status, html = await page(client, "/incidents/1", **{"X-Forwarded-User": "carol"})
            assert status == 200 and "signed in as carol" in html
            assert 'name="by"' not in html  # the proxy said who it is
            acked = await client.post(
                "/incidents/1/ack",
                data={"form_token": form_token(html)},
                headers={"X-Forwarded-User": "carol"},
                allow_redirects=False,
            )
            assert acked.status == 303
            detail = await service.store.incident_detail(1)
            assert detail is not None and detail.incident.acknowledged_by == "carol"
            # A form token is the user's own: another user cannot replay it.
            replay = await client.post(
                "/incidents/2/resolve",
                data={"form_token": form_token(html)},
                headers={"X-Forwarded-User": "dave"},
                allow_redirects=False,
            )
            assert replay.status == 403
    finally:
        await service.close()


async def test_off_loopback_without_users_the_pages_refuse(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = router_settings(
        tmp_path,
        host="0.0.0.0",
        api_token="api-token",  # type: ignore[arg-type]
    )
    service = await started(settings, clock)
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            status, html = await page(client, "/incidents")
            assert status == 401
            assert "ROUTER_WEB_CONFIG_FILE or ROUTER_WEB_TRUSTED_USER_HEADER" in html
            for path in ("/rules", "/routing", "/incidents/1"):
                assert (await page(client, path))[0] == 401
    finally:
        await service.close()


async def test_the_routing_page_runs_the_dry_run(client: Client, service: RouterService) -> None:
    response = await client.post(
        "/routing", data={"payload": FIRING.read_text()}, headers={"Host": "router.test"}
    )
    html = await response.text()
    assert response.status == 200
    assert "by rule data-corruption" in html
    assert "Data Corruption Detected" in html
    assert await service.store.count_alerts() == 0  # a dry run stores nothing
    bad = await client.post("/routing", data={"payload": json.dumps({"version": "4", "alerts": 3})})
    assert bad.status == 400
    assert "alerts" in await bad.text()


async def test_the_rules_page_names_channels_never_their_secrets(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "R0UTINGKEY0123456789abcdefabcdef"
    monkeypatch.setenv("PD_ONCALL_KEY", secret)
    service = await started(router_settings(tmp_path), clock)
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            status, html = await page(client, "/rules")
            assert status == 200
            assert "data-corruption" in html and "Data Corruption Detected" in html
            assert secret not in html
    finally:
        await service.close()


async def test_a_runbooks_raw_html_is_shown_as_text_never_run(
    tmp_path: Path, clock: FakeClock
) -> None:
    rules = tmp_path / "rules"
    (rules / "runbooks").mkdir(parents=True)
    scenario = (FIXTURES / "rules" / "scenario" / "rules.yaml").read_text()
    (rules / "rules.yaml").write_text(
        scenario.replace(
            """matchers: ['alertname="DataCorruption"']""",
            """matchers: ['alertname="DataCorruption"']\n    runbook: hostile.md#data-corruption""",
        )
    )
    (rules / "runbooks" / "hostile.md").write_text(
        "# Data corruption\n\n"
        "#### Immediate Actions\n\n"
        "<script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
        "[a link](javascript:alert(3))\n\n"
        '```sh\necho "<b>stop the writes</b>"\n```\n'
    )
    settings = router_settings(tmp_path).model_copy(update={"rules_dir": rules})
    service = await started(settings, clock)
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            body = {
                "version": "4",
                "status": "firing",
                "receiver": "r",
                "groupKey": "{}:{}",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "DataCorruption", "service": "ledger"},
                        "annotations": {"summary": "<i>checksums</i> differ"},
                        "startsAt": "2026-11-24T08:59:00Z",
                        "endsAt": "0001-01-01T00:00:00Z",
                        "fingerprint": "0123456789abcdef",
                    }
                ],
            }
            response = await client.post(
                "/webhooks/alertmanager", json=body, headers=auth_headers()
            )
            assert response.status == 200
            status, html = await page(client, "/incidents/1")
            assert status == 200
            runbook = html.split('id="runbook"', 1)[1].split("</section>", 1)[0]
            assert "<script>" not in runbook and "&lt;script&gt;alert(1)&lt;/script&gt;" in runbook
            assert "<img" not in runbook
            assert "javascript:" not in runbook.replace("[a link](javascript:alert(3))", "")
            assert '<pre><code class="language-sh">echo &quot;&lt;b&gt;stop the writes' in runbook
            assert "<i>checksums</i>" not in html  # an alert's annotation is text too
    finally:
        await service.close()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("basic_auth_users: {}\n", "has no basic_auth_users"),
        ("basic_auth_users:\n  alice: plain-text-password\n", "user 'alice' has no bcrypt hash"),
        ("basic_auth_users: [\n", "cannot read"),
    ],
)
def test_a_bad_web_config_file_stops_the_daemon(tmp_path: Path, content: str, says: str) -> None:
    users = tmp_path / "web-config.yml"
    users.write_text(content)
    env = router_env(
        port=str(free_port()),
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        web_config_file=str(users),
    )
    process = start_router(env)
    process.wait(timeout=30)  # it stops by itself, before it listens
    code, output = stop(process)
    assert code == 2, output
    assert "ROUTER_WEB_CONFIG_FILE" in output and says in output


async def test_open_pages_refuse_a_dns_rebinding_site(tmp_path: Path, clock: FakeClock) -> None:
    # Both tokens set: the browser guard no longer checks Host, but the open pages must.
    settings = router_settings(tmp_path, api_token="api-token")  # type: ignore[arg-type]
    service = await started(settings, clock)
    try:
        async with TestClient(TestServer(service.web_app())) as client:
            await fire(client)
            status, html = await page(client, "/incidents", Host="evil.example:9099")
            assert status == 403 and "another site" in html, html
            status, _ = await page(client, "/incidents/1", Host="evil.example")
            assert status == 403
            status, _ = await page(client, "/incidents", Host="localhost:9099")
            assert status == 200
    finally:
        await service.close()


def table_rows(html: str, table_id: str) -> list[str]:
    """The text of each body row of the table `table_id`, tags removed, spaces squeezed."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found is not None, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", found.group(1).split("<tbody>", 1)[1], re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


async def test_the_rules_page_shows_heartbeats_and_maintenance_windows(
    client: Client, service: RouterService, clock: FakeClock
) -> None:
    status, html = await page(client, "/rules")
    assert status == 200
    (watchdog,) = table_rows(html, "heartbeats")
    assert watchdog.startswith("watchdog an alert alertname=&#34;Watchdog&#34;")
    assert "beating none yet" in watchdog
    assert "No maintenance window" in html

    ping = await client.post("/heartbeats/watchdog", headers=auth_headers())
    assert ping.status == 200
    (watchdog,) = table_rows((await page(client, "/rules"))[1], "heartbeats")
    assert "beating Tue 2026-11-24 09:00:00 UTC POST /heartbeats" in watchdog
    assert watchdog.endswith("Tue 2026-11-24 09:15:00 UTC")  # 15m after the beat

    clock.advance(minutes=16)
    await service.engine.run_once()
    (watchdog,) = table_rows((await page(client, "/rules"))[1], "heartbeats")
    assert "missed since Tue 2026-11-24 09:16:00 UTC" in watchdog
    assert watchdog.endswith("its incident is open until the next beat")

    wanted = NewWindow(
        ('service="ledger"',), clock.now + timedelta(hours=2), name="ledger-deploy", reason="deploy"
    )
    await service.maintenance.add(wanted, "alice", clock.now)
    (window,) = table_rows((await page(client, "/rules"))[1], "windows")
    assert window == (
        "ledger-deploy deploy service=&#34;ledger&#34; in force until Tue 2026-11-24 11:16:00 UTC "
        "by alice, ends Tue 2026-11-24 11:16:00 UTC"
    )
