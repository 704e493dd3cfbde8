"""A reload that would drop most of the rules in force is refused, unless ROUTER_ALLOW_RULE_DROP.

The reload is the one SIGHUP runs (`RouterService.reload_rules`), on a copy of the shipped rules.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import yaml

from router.app import RouterService
from router.metrics import Metrics
from router.settings import Settings, load_settings

from .conftest import ROOT

CLASSIFICATION = "20-classification.yaml"


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Callable[[bool], RouterService]]:
    """Builds a started service on a copy of the shipped rules, with or without the setting."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    started: list[RouterService] = []

    def make(allow_rule_drop: bool) -> RouterService:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite:///{tmp_path / 'router.db'}",
            rules_dir=tmp_path / "rules",
            allow_rule_drop=allow_rule_drop,
        )
        service = RouterService(settings, metrics=Metrics())
        started.append(service)
        return service

    yield make
    for service in started:
        await service.close()


def keep_rules(rules_dir: Path, count: int) -> int:
    """Leave the first `count` rules of the classification file; how many there were."""
    path = rules_dir / CLASSIFICATION
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    total = len(document["rules"])
    document["rules"] = document["rules"][:count]
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return total


def rule_count(service: RouterService) -> int:
    return len(service.routing.rules.rules)


@pytest.mark.parametrize("left", ["empty file", "no rules", "fewer than half"])
async def test_a_reload_that_drops_most_rules_is_refused(
    services: Callable[[bool], RouterService], left: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = services(False)
    rules_dir = service.settings.rules_dir
    before = rule_count(service)
    assert before >= 10
    if left == "empty file":
        (rules_dir / CLASSIFICATION).write_text("", encoding="utf-8")
        after = 0
    else:
        after = 0 if left == "no rules" else (before - 1) // 2
        keep_rules(rules_dir, after)
    with caplog.at_level(logging.ERROR, logger="router.app"):
        assert service.reload_rules() is False
    assert rule_count(service) == before
    record = caplog.records[-1]
    assert record.getMessage() == "rules reload refused; keeping the rules in force"
    reason = record.fields["reason"]  # type: ignore[attr-defined]
    what = "no rule" if after == 0 else f"{after} of the {before} rules in force"
    assert reason.startswith(f"the new rules would leave {what} ({before - after} dropped")
    assert "ROUTER_ALLOW_RULE_DROP=true" in reason


async def test_a_reload_that_keeps_half_of_the_rules_is_accepted(
    services: Callable[[bool], RouterService],
) -> None:
    service = services(False)
    before = rule_count(service)
    keep_rules(service.settings.rules_dir, (before + 1) // 2)
    assert service.reload_rules() is True
    assert rule_count(service) == (before + 1) // 2


async def test_the_setting_allows_dropping_every_rule(
    services: Callable[[bool], RouterService],
) -> None:
    service = services(True)
    assert rule_count(service) > 0
    keep_rules(service.settings.rules_dir, 0)
    assert service.reload_rules() is True
    assert rule_count(service) == 0


def test_the_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("ROUTER_ALLOW_RULE_DROP", "true")
    assert load_settings().allow_rule_drop is True
    monkeypatch.delenv("ROUTER_ALLOW_RULE_DROP")
    assert load_settings().allow_rule_drop is False
