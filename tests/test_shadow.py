"""Shadow rules (`ROUTER_SHADOW_RULES_DIR`): the daemon routes every firing alert by them too and
records what they would decide, paging and storing only what the rules in force decide."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.errors import ConfigError
from router.metrics import Metrics
from router.settings import Settings

from .history import rules_dir
from .scenario import FakeClock, alert, incidents, pages, running_router, send


def shadow_count(service: RouterService, outcome: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "router_shadow_decisions_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_shadow_rules_are_recorded_and_never_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="router.app")
    in_force = rules_dir(tmp_path / "in-force", new=False)
    shadow = rules_dir(tmp_path / "shadow", new=True)
    clock = FakeClock()
    async with running_router(
        tmp_path, clock, "sqlite", rules_dir=in_force, shadow_rules_dir=shadow
    ) as service:
        async with TestClient(TestServer(service.web_app())) as client:
            await send(client, alert("DataCorruption"), alert("SlowThing"))
            await send(client, {**alert("DataCorruption"), "status": "resolved"})
        await service.engine.run_once()
        # Paged and stored as the rules in force say: SlowThing stays P1.
        assert [(i["severity"], i["rule"]) for i in await incidents(service)] == [
            ("P0", "corruption"),
            ("P1", "slow"),
        ]
        assert [p[:3] for p in await pages(service)] == [
            ("trigger", "oncall", 1),
            ("trigger", "oncall", 1),
            ("resolve", "oncall", 1),
        ]
    # DataCorruption: the same decision; SlowThing: P2 with a runbook section. The resolution
    # is not routed by the shadow rules.
    assert (shadow_count(service, "same"), shadow_count(service, "differs")) == (1, 1)
    (record,) = [
        r for r in caplog.records if r.getMessage() == "shadow rules would route differently"
    ]
    logged: dict[str, Any] = record.fields  # type: ignore[attr-defined]
    assert {
        k: logged[k]
        for k in (
            "alert",
            "severity",
            "shadow_severity",
            "runbook",
            "shadow_runbook",
            "tiers",
            "shadow_tiers",
        )
    } == {
        "alert": "SlowThing",
        "severity": "P1",
        "shadow_severity": "P2",
        "runbook": "none",
        "shadow_runbook": "ledger.md#slow-thing",
        "tiers": "oncall",
        "shadow_tiers": "oncall",
    }


def test_bad_shadow_rules_stop_the_daemon_naming_the_setting(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "rules.yaml").write_text("severities: [", encoding="utf-8")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'router.db'}",
        rules_dir=rules_dir(tmp_path / "in-force", new=False),
        shadow_rules_dir=shadow,
    )
    with pytest.raises(ConfigError) as raised:
        RouterService(settings, metrics=Metrics())
    assert str(raised.value).startswith("ROUTER_SHADOW_RULES_DIR: ")
    assert any("rules.yaml" in problem for problem in raised.value.problems)
    assert not (tmp_path / "router.db").exists()


async def test_a_reload_rereads_the_shadow_rules_and_keeps_them_when_bad(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    in_force = rules_dir(tmp_path / "in-force", new=False)
    shadow = rules_dir(tmp_path / "shadow", new=True)
    async with running_router(
        tmp_path, FakeClock(), "sqlite", rules_dir=in_force, shadow_rules_dir=shadow
    ) as service:
        first = service.shadow
        assert first is not None
        good = (shadow / "rules.yaml").read_text(encoding="utf-8")
        (shadow / "rules.yaml").write_text("severities: [", encoding="utf-8")
        assert service.reload_rules()
        assert service.shadow is first
        assert "shadow rules reload failed; keeping the shadow rules in force" in caplog.messages
        (shadow / "rules.yaml").write_text(good.replace("severity: P2", "severity: P3"))
        assert service.reload_rules()
        assert service.shadow is not first and service.shadow is not None
        assert {rule.severity for rule in service.shadow.rules.rules if rule.name == "slow"} == {
            "P3"
        }
