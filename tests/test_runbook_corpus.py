"""Runbook matching on real runbooks written by other organisations (tests/fixtures/runbooks/corpus).

The corpus is split once, by collection (SPLIT.yaml): the search and its confidence model were
calibrated on the tuning part only; the figures asserted here are those of the test part, and
`make eval-runbooks` prints both. What the corpus must hold is checked too: real sources with
their licences, enough cases of every kind, and labels that point at sections that exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.runbook_corpus import (
    CORPUS,
    RECALL_DEPTHS,
    SHIPPED,
    Outcome,
    cases,
    evaluate,
    figures,
    library,
    most_confident_false,
    recall,
    split,
)
from router.runbooks import ATTACH_CONFIDENCE

PARTS = split()
# The corpus's own collections (the tuning part also holds this repository's runbooks).
COLLECTIONS = [c for c in (*PARTS["tuning"], *PARTS["test"]) if c != SHIPPED]

# What the test part reaches (make eval-runbooks prints it); a change that lowers it fails here.
TEST_TOP1 = 0.73
TEST_FALSE_ATTACHMENTS = 0
# The right section is attached or listed among the page's possible sections.
TEST_IN_PAGE = 0.82
# The same alerts without their annotations, searched by name and labels alone.
TEST_TOP1_BY_NAME_ALONE = 0.70


def test_the_split_is_by_collection_and_covers_the_corpus() -> None:
    assert not set(PARTS["tuning"]) & set(PARTS["test"])
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert on_disk == set(COLLECTIONS)


def test_the_corpus_is_big_and_varied_enough() -> None:
    every = [case for collection in COLLECTIONS for case in cases(collection)]
    sources = {
        yaml.safe_load((CORPUS / c / "source.yaml").read_text(encoding="utf-8"))["repository"]
        for c in COLLECTIONS
    }
    assert len(sources) >= 8
    assert len(every) >= 200
    assert sum(not case.expected for case in every) >= 40
    with_section = [case for case in every if case.expected]
    assert sum(case.kind == "reworded" for case in with_section) * 4 >= len(with_section)
    assert {case.kind for case in every} == {"real", "reworded", "none"}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_every_collection_names_its_source_and_licence(collection: str) -> None:
    source = yaml.safe_load((CORPUS / collection / "source.yaml").read_text(encoding="utf-8"))
    assert source["repository"] and source["licence"] and source["commit"]
    assert source["repository"] in (CORPUS / "SOURCES.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_every_label_points_at_a_section_that_exists(collection: str) -> None:
    runbooks = library(collection)
    for case in cases(collection):
        assert "runbook_url" not in case.alert.annotations, case.id
        for reference in case.expected:
            section = runbooks.get(reference)
            assert section is not None, (case.id, reference)
            assert section.reference == reference, (case.id, reference)


@pytest.fixture(scope="module")
def test_part() -> list[Outcome]:
    """The test part searched as labelled, once for the tests that read it."""
    return evaluate(PARTS["test"])


def test_test_part_figures(test_part: list[Outcome]) -> None:
    found = figures(test_part)
    assert found.top1 >= TEST_TOP1
    assert found.false_attachments <= TEST_FALSE_ATTACHMENTS
    assert found.in_page >= TEST_IN_PAGE


def test_alerts_without_annotations_get_no_false_section() -> None:
    """A rule that writes no annotation sends its alert's name and labels only: the test part
    searched so still gives no alert without a section one."""
    found = figures(evaluate(PARTS["test"], name_alone=True))
    assert found.false_attachments == 0
    assert found.top1 >= TEST_TOP1_BY_NAME_ALONE


@pytest.mark.parametrize("name_alone", [False, True], ids=["as labelled", "by name alone"])
def test_the_attach_threshold_is_above_every_tuning_alert_without_a_section(
    name_alone: bool,
) -> None:
    worst = most_confident_false(evaluate(PARTS["tuning"], name_alone=name_alone))
    assert worst is not None
    assert worst.match.candidates[0].confidence < ATTACH_CONFIDENCE


def test_recall_agrees_with_the_first_candidate_and_the_page(test_part: list[Outcome]) -> None:
    """Depth 1 is top-1; a page attaches the first or lists the first two, so it cannot give
    the right section more often than depth 2 ranks it; deeper never finds fewer."""
    found = figures(test_part)
    at = [recall(test_part, depth) for depth in RECALL_DEPTHS]
    assert at[0] == found.top1
    assert found.in_page <= recall(test_part, 2)
    assert at == sorted(at)


def test_sources_file_exists() -> None:
    assert Path(CORPUS / "SOURCES.md").is_file()
