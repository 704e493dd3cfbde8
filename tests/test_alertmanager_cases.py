"""Alertmanager's own matcher parser tests, run against ours (tests/fixtures/matchers/).

Each parser is held to its own table: the classic parser to pkg/labels/parse_test.go, the UTF-8
parser to matcher/parse/parse_test.go and compliance_test.go. compliance_test.go compares only
whether an input is refused, not the message, and so does this test for it; regex errors are RE2's
C++ wording, not Go's (docs/rules.md lists this difference): for them too only the refusal counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from router.errors import MatcherError
from router.rules.matchers import Matcher, MatchType, parse_classic, parse_matchers
from router.rules.utf8_matchers import Utf8MatcherError, parse_utf8

FIXTURE = Path(__file__).parent / "fixtures" / "matchers" / "alertmanager_cases.yaml"
DOCUMENT = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
GO_REGEX_ERROR = "error parsing regexp:"


def cases() -> list[Any]:
    found = []
    for table in DOCUMENT["parsers"]:
        for index, case in enumerate(table["cases"]):
            parser = table["parser"]
            if case.get("skip_in_source"):
                parser = "classic"
            label = f"{table['path']}[{index}]:{case['input']!r}"
            exact = table["path"] != "matcher/compliance/compliance_test.go"
            found.append(pytest.param(parser, case, exact, id=label))
    return found


def utf8(text: str) -> list[Matcher]:
    return [Matcher.create(name, MatchType(op), value) for name, op, value in parse_utf8(text)]


PARSERS = {"classic": parse_classic, "utf8": utf8}


@pytest.mark.parametrize(("parser", "case", "exact"), cases())
def test_alertmanager_case(parser: str, case: dict[str, Any], exact: bool) -> None:
    parse = PARSERS[parser]
    if "error" in case:
        with pytest.raises((MatcherError, Utf8MatcherError)) as caught:
            parse(case["input"])
        if exact and GO_REGEX_ERROR not in case["error"]:
            assert str(caught.value) == case["error"]
        return
    expected = [tuple(triple) for triple in case["matchers"]]
    assert [(m.name, m.type.value, m.value) for m in parse(case["input"])] == expected


def test_the_source_is_named() -> None:
    assert DOCUMENT["source"]["repository"] == "prometheus/alertmanager"
    assert len(DOCUMENT["source"]["commit"]) == 40
    assert sum(len(table["cases"]) for table in DOCUMENT["parsers"]) >= 140


@pytest.mark.parametrize(("parser", "case", "exact"), cases())
def test_the_fallback_takes_the_utf8_reading_else_the_classic(
    parser: str, case: dict[str, Any], exact: bool
) -> None:
    try:
        first = [m.triple for m in utf8(case["input"])]
    except (MatcherError, Utf8MatcherError):
        first = None
    try:
        second = [m.triple for m in parse_classic(case["input"])]
    except MatcherError:
        second = None
    if first is None and second is None:
        with pytest.raises(MatcherError):
            parse_matchers(case["input"])
        return
    got = [m.triple for m in parse_matchers(case["input"])]
    assert got == (second if first is None or (second is not None and second != first) else first)


RE2_FIXTURE = Path(__file__).parent / "fixtures" / "matchers" / "re2_search.yaml"
RE2_CASES = yaml.safe_load(RE2_FIXTURE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "case", RE2_CASES["cases"], ids=[f"{c['regexp']!r}~{c['text']!r}" for c in RE2_CASES["cases"]]
)
def test_re2_search_corpus(case: dict[str, Any]) -> None:
    # Every regexp of the corpus is valid RE2 and must be accepted; many are refused or read
    # otherwise by Python's re (\pN, (?U), POSIX classes...). (Those with \C, which Go refuses,
    # are left out of the sample.)
    matcher = Matcher.create("x", MatchType.REGEX, case["regexp"])
    assert matcher.matches({"x": case["text"]}) is case["matches"]
    negated = Matcher.create("x", MatchType.NOT_REGEX, case["regexp"])
    assert negated.matches({"x": case["text"]}) is not case["matches"]
