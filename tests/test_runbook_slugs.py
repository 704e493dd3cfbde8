"""Anchors follow GitHub's rules (github-slugger), so `file.md#anchor` links work on GitHub too."""

from __future__ import annotations

import pytest

from router.runbooks import Slugger, slugify
from router.runbooks.sections import parse_runbook


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Incident 1: Complete Service Outage", "incident-1-complete-service-outage"),
        ("1. Storage Errors", "1-storage-errors"),
        ("Scenario 2: Database Performance", "scenario-2-database-performance"),
        ("Incident 3: Slow Performance (<5 req/s)", "incident-3-slow-performance-5-reqs"),
        ("Data Breach or Key Compromise", "data-breach-or-key-compromise"),
        ("Post-Incident Review", "post-incident-review"),
        # Emoji are dropped, the space after them becomes a leading hyphen.
        ("🚨 Critical Incidents (P0)", "-critical-incidents-p0"),
        ("Tax Rates Outdated ✅", "tax-rates-outdated-"),
        # U+FE0F (variation selector) is a combining mark, which GitHub keeps.
        ("⚠️ High Severity", "\ufe0f-high-severity"),
        # Spaces are not collapsed; punctuation between them goes.
        ("Two  Spaces", "two--spaces"),
        ("C++ & Rust!", "c--rust"),
        ("Step 1 — Declare", "step-1--declare"),
        ("Version 2.0.1", "version-201"),
        ("snake_case_name", "snake_case_name"),
        ("Café Déjà Vu", "café-déjà-vu"),
        ("日本語の見出し", "日本語の見出し"),
        ("", ""),
    ],
)
def test_slug_of_a_heading(heading: str, anchor: str) -> None:
    assert slugify(heading) == anchor


def test_duplicates_are_numbered_from_one() -> None:
    slugger = Slugger()
    assert [slugger.slug(h) for h in ["Symptoms", "Symptoms", "Symptoms"]] == [
        "symptoms",
        "symptoms-1",
        "symptoms-2",
    ]


def test_numbering_skips_a_slug_another_heading_took() -> None:
    slugger = Slugger()
    assert [slugger.slug(h) for h in ["Foo", "Foo", "Foo 1"]] == ["foo", "foo-1", "foo-1-1"]
    slugger = Slugger()
    assert [slugger.slug(h) for h in ["Foo 1", "Foo", "Foo"]] == ["foo-1", "foo", "foo-2"]


def test_anchor_uses_the_rendered_heading_text() -> None:
    sections = parse_runbook(
        "x.md", "## Restart `api` with **care** and [docs](https://x.example)\n## Setext\n---\n"
    )
    assert sections[0].heading == "Restart api with care and docs"
    assert sections[0].anchor == "restart-api-with-care-and-docs"
    assert [s.anchor for s in sections] == ["restart-api-with-care-and-docs", "setext"]
