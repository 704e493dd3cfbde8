"""`GET /metrics` of a running router with the shipped rules: build and process series, no
`_created` series, and zeroed series only for label combinations the rules can produce."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

import router

Client = TestClient[Any, Any]


async def scrape(client: Client) -> list[str]:
    response = await client.get("/metrics")
    assert response.status == 200
    return (await response.text()).splitlines()


async def test_build_and_process_series_and_no_created_series(client: Client) -> None:
    lines = await scrape(client)
    assert f'router_build_info{{version="{router.__version__}"}} 1.0' in lines
    names = {line.split("{")[0].split(" ")[0] for line in lines if not line.startswith("#")}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names
    assert "router_alerts_received_total" in names
    assert [name for name in names if name.endswith("_created")] == []


async def test_only_label_combinations_the_rules_can_produce_start_at_zero(
    client: Client,
) -> None:
    lines = set(await scrape(client))
    # slow-proof-generation classifies at P1 only; an unclassified alert at any severity.
    opened = "router_incidents_opened_total"
    assert f'{opened}{{rule="slow-proof-generation",severity="P1"}} 0.0' in lines
    assert f'{opened}{{rule="slow-proof-generation",severity="P0"}} 0.0' not in lines
    assert f'{opened}{{rule="none",severity="P3"}} 0.0' in lines
    # oncall is every policy's first step, never escalated to; P3 has one step and no deadline.
    escalations = "router_escalations_total"
    assert f'{escalations}{{severity="P0",tier="cto"}} 0.0' in lines
    assert f'{escalations}{{severity="P2",tier="team-lead"}} 0.0' in lines
    assert f'{escalations}{{severity="P0",tier="oncall"}} 0.0' not in lines
    assert not any(line.startswith(f'{escalations}{{severity="P3"') for line in lines)
    breaches = "router_ack_sla_breaches_total"
    assert f'{breaches}{{severity="P0",tier="oncall"}} 0.0' in lines
    assert f'{breaches}{{severity="P3",tier="team-queue"}} 0.0' not in lines
    assert f'{breaches}{{severity="P3",tier="cto"}} 0.0' not in lines
