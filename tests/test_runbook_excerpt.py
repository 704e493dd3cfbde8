"""Excerpts: within each channel budget, code blocks whole, actionable parts first, link last."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from router.outbox.budgets import BUDGETS, CHAT_BUDGET, EMAIL_BUDGET, PAGERDUTY_BUDGET, SMS_BUDGET
from router.runbooks import RunbookLibrary, Section, render_excerpt

ROOT = Path(__file__).parent.parent
EXCERPTS = ROOT / "tests" / "fixtures" / "runbooks" / "excerpts"
BASE_URL = "https://git.example.com/ops/runbooks/blob/main/"
LIBRARY = RunbookLibrary.load(ROOT / "rules" / "runbooks")
SECTIONS = [s for s in LIBRARY.sections if not s.is_part]
STYLES = ("markdown", "text")
SIZES = (
    0,
    1,
    20,
    60,
    100,
    130,
    SMS_BUDGET,
    300,
    700,
    1500,
    CHAT_BUDGET,
    PAGERDUTY_BUDGET,
    EMAIL_BUDGET,
)


def _section(reference: str) -> Section:
    section = LIBRARY.get(reference)
    assert section is not None, reference
    return section


def test_budgets_are_the_channel_sizes() -> None:
    assert BUDGETS == {"pagerduty": 8_000, "slack": 3_500, "email": 20_000, "sms": 160}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.reference)
def test_every_budget_is_respected_and_code_stays_whole(section: Section, style: str) -> None:
    link = section.link(BASE_URL)
    for budget in SIZES:
        excerpt = render_excerpt(section, budget=budget, link=link, style=style)  # type: ignore[arg-type]
        assert len(excerpt) <= budget
        if budget >= len(link):
            assert excerpt.endswith(link)
        lines = [line.strip() for line in excerpt.splitlines()]
        for block in section.code_blocks:
            if block.language == "mermaid":
                continue
            code = [line.strip() for line in block.code.splitlines() if line.strip()]
            shown = [line in lines for line in code]
            assert all(shown) or not any(shown), (budget, block.code)
        if style == "markdown":
            fences = [line for line in lines if line.startswith(("```", "~~~"))]
            assert len(fences) % 2 == 0, budget
        else:
            assert "```" not in excerpt and "**" not in excerpt


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.reference)
def test_symptoms_then_actions_then_the_rest(section: Section) -> None:
    excerpt = render_excerpt(
        section, budget=EMAIL_BUDGET, link=section.link(BASE_URL), style="text"
    )
    written = {b.part: b.label for b in reversed(section.blocks) if b.part and not b.foreign}
    position = {part: excerpt.find(f"\n{label}:\n") for part, label in written.items()}
    assert all(p > 0 for p in position.values()), position
    if "Symptoms" in position:
        assert position["Symptoms"] == min(position.values())
    if "Immediate Actions" in position:
        later = [p for part, p in position.items() if part not in ("Symptoms", "Immediate Actions")]
        assert all(position["Immediate Actions"] < p for p in later)


def test_sms_gets_heading_path_and_link_only() -> None:
    section = _section("zkp-ledger.md#slow-proof-generation")
    excerpt = render_excerpt(section, budget=SMS_BUDGET, link=section.link(BASE_URL), style="text")
    assert excerpt == (
        "⚠️ High Severity Incidents (P1) › Slow Proof Generation\n\n"
        "Runbook: https://git.example.com/ops/runbooks/blob/main/zkp-ledger.md#slow-proof-generation"
    )


def test_smallest_budgets_fall_back_to_heading_then_link() -> None:
    section = _section("database.md#scenario-2-database-performance")
    link = section.link(BASE_URL)
    heading_and_link = render_excerpt(section, budget=len(link) + 40, link=link, style="text")
    assert heading_and_link == f"Scenario 2: Database Performance\n{link}"
    assert render_excerpt(section, budget=len(link), link=link, style="text") == link
    assert render_excerpt(section, budget=12, link=link, style="text") == "Scenario…"
    assert render_excerpt(section, budget=0, link=link, style="text") == ""


def test_a_paragraph_that_does_not_fit_is_shortened_at_a_word() -> None:
    section = _section("platform.md#high-memory-usage")
    link = section.link(BASE_URL)
    excerpt = render_excerpt(section, budget=220, link=link, style="text")
    assert excerpt == (
        "Resources › High Memory Usage\n\n"
        "Symptoms:\n\n"
        "HighMemoryUsage with a value above 8 GB; containers approach their limit and…\n\n"
        f"Runbook: {link}"
    )


CASES = yaml.safe_load((EXCERPTS / "cases.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["golden"])
def test_golden_excerpts(case: dict[str, object]) -> None:
    section = _section(str(case["section"]))
    excerpt = render_excerpt(
        section,
        budget=int(str(case["budget"])),
        link=section.link(BASE_URL),
        style=case["style"],  # type: ignore[arg-type]
    )
    assert excerpt == (EXCERPTS / str(case["golden"])).read_text(encoding="utf-8")
