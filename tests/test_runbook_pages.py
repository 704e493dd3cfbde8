"""The runbook section travels with the incident: chosen at opening, carried in every page."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.api.views import detail_json
from router.app import RouterService
from router.routing import percent

from .scenario import alert, incidents, page_contexts, send

Client = TestClient[Any, Any]


async def test_shipped_rule_attaches_its_section_and_the_page_carries_it(
    service: RouterService, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="router.page")
    await send(client, alert("LedgerDataCorruption", severity="critical"))
    await service.engine.run_once()
    (incident,) = await incidents(service)
    runbook = incident["runbook"]
    assert (runbook["file"], runbook["anchor"], runbook["method"]) == (
        "zkp-ledger.md",
        "data-corruption-detected",
        "rule",
    )
    assert runbook["link"].endswith("zkp-ledger.md#data-corruption-detected")
    # The incident keeps the section's content hash (for `check --coverage`); the page carries
    # the section itself.
    carried = dict(runbook)
    assert re.fullmatch(r"[0-9a-f]{16}", carried.pop("content_hash"))
    (context,) = await page_contexts(service, "trigger")
    assert context["runbook"] == carried
    (line,) = [record for record in caplog.records if record.getMessage().startswith("PAGE")]
    page = line.fields["page"]  # type: ignore[attr-defined]
    assert "Data Corruption Detected" in page
    assert "Immediate Actions" in page
    assert "zkp-ledger.md#data-corruption-detected" in page
    assert (
        service.metrics.registry.get_sample_value(
            "router_runbook_matches_total", {"method": "rule"}
        )
        == 1
    )


async def test_an_alert_with_no_section_says_so(
    service: RouterService, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="router.page")
    await send(client, alert("TotallyUnrelatedWidgetAlarm", severity="critical"))
    await service.engine.run_once()
    (incident,) = await incidents(service)
    assert incident["runbook"] is None
    stored = await service.store.incident_detail(incident["id"])
    assert stored is not None
    detail = detail_json(stored, service.routing)
    (note,) = [e["detail"] for e in detail["timeline"] if e["kind"] == "runbook"]
    candidates = detail["runbook_candidates"]
    # The alert's service label leads to the ledger's runbook, but to no section confidently.
    assert candidates[0]["file"] == "zkp-ledger.md"
    assert all(c["confidence"] < 0.5 and c["evidence"] for c in candidates)
    first, second = candidates[0], candidates[1]
    assert note == (
        "no runbook section attached: none confident enough; possible: "
        f"{first['file']}#{first['anchor']} ({percent(first['confidence'])}), "
        f"{second['file']}#{second['anchor']} ({percent(second['confidence'])})"
    )
    # The page carries the two best as possible sections, with their confidence and links.
    (context,) = await page_contexts(service, "trigger")
    assert [c["anchor"] for c in context["runbook_candidates"]] == [
        first["anchor"],
        second["anchor"],
    ]
    (line,) = [record for record in caplog.records if record.getMessage().startswith("PAGE")]
    page = line.fields["page"]  # type: ignore[attr-defined]
    assert "Possible runbook sections (not sure enough to attach one):" in page
    assert f"zkp-ledger.md#{first['anchor']}" in page
    assert (
        service.metrics.registry.get_sample_value(
            "router_runbook_matches_total", {"method": "none"}
        )
        == 1
    )
