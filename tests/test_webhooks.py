"""The webhook endpoints over HTTP: status codes, storage, authentication, metrics."""

from __future__ import annotations

import base64
import json
import sqlite3
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.app import RouterService

from .conftest import FIXTURES, WEBHOOK_TOKEN, auth_headers

PAYLOADS = FIXTURES / "payloads"
GOOD_CASES: dict[str, dict[str, Any]] = yaml.safe_load((PAYLOADS / "good_cases.yaml").read_text())
BAD_CASES: dict[str, list[Any]] = yaml.safe_load((PAYLOADS / "bad_cases.yaml").read_text())

Client = TestClient[Any, Any]


def metric(service: RouterService, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.mark.parametrize("name", sorted(GOOD_CASES))
async def test_good_body_is_stored_before_200(
    client: Client, service: RouterService, name: str
) -> None:
    source = name.split("/")[0]
    response = await client.post(
        f"/webhooks/{source}", data=(PAYLOADS / "good" / name).read_bytes(), headers=auth_headers()
    )
    assert response.status == 200
    answer = await response.json()
    assert answer["alerts"] == GOOD_CASES[name]["alerts"]
    assert answer["new"] == GOOD_CASES[name]["alerts"]
    assert await service.store.count_alerts() == GOOD_CASES[name]["alerts"]


@pytest.mark.parametrize("name", sorted(BAD_CASES))
async def test_bad_body_is_refused_and_stores_nothing(
    client: Client, service: RouterService, name: str
) -> None:
    status, message = BAD_CASES[name]
    source = name.split("/")[0]
    response = await client.post(
        f"/webhooks/{source}", data=(PAYLOADS / "bad" / name).read_bytes(), headers=auth_headers()
    )
    assert response.status == status
    assert await response.json() == {"error": message}
    assert await service.store.count_alerts() == 0
    assert metric(service, "router_webhook_rejected_total", source=source, reason="malformed") == 1


def _alerts_with_bad_labels(count: int) -> dict[str, Any]:
    """An Alertmanager body whose every alert has labels that are not a mapping."""
    bad = {"status": "firing", "labels": "team=db", "startsAt": "2026-12-07T13:00:00Z"}
    return {"version": "4", "status": "firing", "alerts": [bad] * count}


async def test_400_lists_every_problem_of_the_body(
    client: Client, service: RouterService, caplog: pytest.LogCaptureFixture
) -> None:
    body = _alerts_with_bad_labels(3)
    body["alerts"][1] = {**body["alerts"][1], "status": "pending"}
    response = await client.post("/webhooks/alertmanager", json=body, headers=auth_headers())
    expected = (
        "alerts.0.labels: Input should be a valid dictionary; "
        "alerts.1.status: Input should be 'firing' or 'resolved', got 'pending'; "
        "alerts.1.labels: Input should be a valid dictionary; "
        "alerts.2.labels: Input should be a valid dictionary"
    )
    assert response.status == 400
    assert await response.json() == {"error": expected}
    (refused,) = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert refused.fields["error"] == expected  # type: ignore[attr-defined]
    assert await service.store.count_alerts() == 0


async def test_400_lists_twenty_problems_then_says_how_many_more(client: Client) -> None:
    response = await client.post(
        "/webhooks/alertmanager", json=_alerts_with_bad_labels(25), headers=auth_headers()
    )
    error = (await response.json())["error"]
    problems = error.split("; ")
    assert problems[:20] == [
        f"alerts.{i}.labels: Input should be a valid dictionary" for i in range(20)
    ]
    assert problems[20:] == ["and 5 more"]


async def test_same_webhook_twice_stores_once(client: Client, service: RouterService) -> None:
    body = (PAYLOADS / "good/alertmanager/firing_two_alerts.json").read_bytes()
    first = await (
        await client.post("/webhooks/alertmanager", data=body, headers=auth_headers())
    ).json()
    again = await (
        await client.post("/webhooks/alertmanager", data=body, headers=auth_headers())
    ).json()
    assert (first["new"], first["duplicate"]) == (2, 0)
    assert (again["new"], again["duplicate"]) == (0, 2)
    assert await service.store.count_alerts() == 2
    assert (
        metric(service, "router_alerts_received_total", source="alertmanager", status="firing") == 4
    )


async def test_resolution_updates_the_stored_alert(client: Client, service: RouterService) -> None:
    firing = json.loads((PAYLOADS / "good/alertmanager/resolved.json").read_text())
    firing["status"] = firing["alerts"][0]["status"] = "firing"
    firing["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    await client.post("/webhooks/alertmanager", json=firing, headers=auth_headers())
    resolved = (PAYLOADS / "good/alertmanager/resolved.json").read_bytes()
    answer = await (
        await client.post("/webhooks/alertmanager", data=resolved, headers=auth_headers())
    ).json()
    assert (answer["new"], answer["updated"]) == (0, 1)
    # A late retry of the firing notice does not reopen it.
    late = await (
        await client.post("/webhooks/alertmanager", json=firing, headers=auth_headers())
    ).json()
    assert (late["new"], late["updated"], late["duplicate"]) == (0, 0, 1)
    assert await service.store.count_alerts() == 1


async def test_legacy_grafana_alert_is_one_instance_until_it_resolves(
    client: Client, service: RouterService
) -> None:
    alerting = (PAYLOADS / "good/grafana/legacy_alerting.json").read_bytes()
    ok = (PAYLOADS / "good/grafana/legacy_ok.json").read_bytes()
    outcomes = []
    for body in (alerting, alerting, ok, alerting):
        answer = await (
            await client.post("/webhooks/grafana", data=body, headers=auth_headers())
        ).json()
        outcomes.append((answer["new"], answer["updated"], answer["duplicate"]))
    assert outcomes == [(1, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)]
    assert await service.store.count_alerts() == 2


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {WEBHOOK_TOKEN}x",
        "Basic " + base64.b64encode(b"alertmanager:wrong").decode(),
        "Basic not-base64!!",
        f"Token {WEBHOOK_TOKEN}",
    ],
)
async def test_wrong_credentials_get_401(
    client: Client, service: RouterService, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    body = (PAYLOADS / "good/alertmanager/resolved.json").read_bytes()
    response = await client.post("/webhooks/alertmanager", data=body, headers=headers)
    assert response.status == 401
    assert await response.json() == {"error": "missing or wrong credentials"}
    assert await service.store.count_alerts() == 0
    assert (
        metric(
            service, "router_webhook_rejected_total", source="alertmanager", reason="unauthorized"
        )
        == 1
    )


async def test_basic_auth_password_is_accepted(client: Client) -> None:
    credentials = base64.b64encode(f"alertmanager:{WEBHOOK_TOKEN}".encode()).decode()
    body = (PAYLOADS / "good/grafana/unified_firing.json").read_bytes()
    headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"}
    response = await client.post("/webhooks/grafana", data=body, headers=headers)
    assert response.status == 200


async def test_body_over_the_limit_gets_413(client: Client, service: RouterService) -> None:
    document = json.loads((PAYLOADS / "good/alertmanager/resolved.json").read_text())
    document["padding"] = "x" * (service.settings.max_body_bytes + 1)
    response = await client.post("/webhooks/alertmanager", json=document, headers=auth_headers())
    assert response.status == 413
    assert "body larger than" in (await response.json())["error"]
    assert await service.store.count_alerts() == 0


async def test_chunked_body_over_the_limit_gets_413(client: Client, service: RouterService) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024

    response = await client.post("/webhooks/alertmanager", data=chunks(), headers=auth_headers())
    assert response.status == 413
    assert (
        metric(service, "router_webhook_rejected_total", source="alertmanager", reason="too_large")
        == 1
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_content_type_other_than_json_gets_415(
    client: Client, service: RouterService, content_type: str
) -> None:
    body = (PAYLOADS / "good/alertmanager/resolved.json").read_bytes()
    headers = {**auth_headers(), "Content-Type": content_type}
    response = await client.post("/webhooks/alertmanager", data=body, headers=headers)
    assert response.status == 415
    assert await service.store.count_alerts() == 0


async def test_json_with_charset_is_accepted(client: Client) -> None:
    body = (PAYLOADS / "good/alertmanager/resolved.json").read_bytes()
    headers = {**auth_headers(), "Content-Type": "application/json; charset=utf-8"}
    assert (await client.post("/webhooks/alertmanager", data=body, headers=headers)).status == 200


async def test_store_failure_gets_503_so_the_sender_retries(
    client: Client, service: RouterService
) -> None:
    # Break the real database under the running service: its next write fails.
    database = service.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TABLE alerts")
    body = (PAYLOADS / "good/alertmanager/resolved.json").read_bytes()
    response = await client.post("/webhooks/alertmanager", data=body, headers=auth_headers())
    assert response.status == 503
    assert await response.json() == {"error": "storage unavailable, retry later"}
    assert (
        metric(
            service,
            "router_webhook_rejected_total",
            source="alertmanager",
            reason="store_unavailable",
        )
        == 1
    )


async def test_shutting_down_gets_503(client: Client, service: RouterService) -> None:
    service.state.shutting_down = True
    body = (PAYLOADS / "good/alertmanager/resolved.json").read_bytes()
    response = await client.post("/webhooks/alertmanager", data=body, headers=auth_headers())
    assert response.status == 503
    assert (await client.get("/readyz")).status == 503
    assert await service.store.count_alerts() == 0


async def test_health_readiness_and_metrics(client: Client) -> None:
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    assert await (await client.get("/readyz")).json() == {"status": "ready"}
    exposition = await (await client.get("/metrics")).text()
    assert 'router_alerts_received_total{source="grafana",status="resolved"} 0.0' in exposition
    assert (
        'router_webhook_rejected_total{reason="too_large",source="alertmanager"} 0.0' in exposition
    )
    assert "router_webhook_duration_seconds_bucket" in exposition


async def test_unknown_route_is_json_404(client: Client) -> None:
    response = await client.get("/webhooks/nagios")
    assert response.status == 404
    assert await response.json() == {"error": "Not Found"}


async def test_metrics_count_accepted_alerts_and_time_requests(
    client: Client, service: RouterService
) -> None:
    body = (PAYLOADS / "good/grafana/unified_firing.json").read_bytes()
    await client.post("/webhooks/grafana", data=body, headers=auth_headers())
    assert metric(service, "router_alerts_received_total", source="grafana", status="firing") == 2
    assert metric(service, "router_webhook_duration_seconds_count", source="grafana") == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=300)
    | st.dictionaries(
        st.sampled_from(["version", "status", "alerts", "ruleName", "state", "receiver"]),
        st.none()
        | st.text(max_size=8)
        | st.integers()
        | st.lists(st.dictionaries(st.text(max_size=6), st.text(max_size=6)), max_size=2),
    ).map(lambda doc: json.dumps(doc).encode()),
    source=st.sampled_from(["alertmanager", "grafana"]),
)
async def test_any_body_gets_2xx_or_4xx_and_4xx_stores_nothing(
    client: Client, service: RouterService, body: bytes, source: str
) -> None:
    before = await service.store.count_alerts()
    response = await client.post(f"/webhooks/{source}", data=body, headers=auth_headers())
    assert response.status < 500
    if response.status >= 400:
        assert "error" in await response.json()
        assert await service.store.count_alerts() == before
