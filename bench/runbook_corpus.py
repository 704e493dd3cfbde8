"""The runbook corpus: real runbooks of other organisations with hand-labelled alerts, evaluated.

Each collection under `tests/fixtures/runbooks/corpus/<name>/` is one team's runbook folder
(`runbooks/`), the alerts labelled against it (`cases.yaml`: the section a responder should get,
or none) and where it came from (`source.yaml`; SOURCES.md lists them all). `SPLIT.yaml` assigns
every collection, once and for good, to the tuning part (the search and the confidence model are
calibrated on it) or to the test part (only ever measured). Each collection is searched as its own
library, as the team that wrote it would mount it.

The tuning part also holds `shipped`: this repository's own runbooks (`rules/runbooks/` and
`tests/fixtures/runbooks/library/`) with the table the search was first written against
(`tests/fixtures/runbooks/search_quality.yaml`).

Used by `bench/eval_runbooks.py` (`make eval-runbooks`) and `tests/test_runbook_corpus.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from router.models import Alert, AlertStatus, Source
from router.runbooks import RunbookLibrary, RunbookMatch
from router.runbooks.library import confidence_features

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "runbooks" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures" / "runbooks"
SHIPPED = "shipped"


@dataclass(frozen=True, slots=True)
class Case:
    collection: str
    id: str
    kind: str  # real | reworded | none
    alert: Alert
    expected: frozenset[str]  # right references; empty when no section covers the alert


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    match: RunbookMatch
    first: str | None  # the reference ranked first, whether attached or not
    features: tuple[float, ...] | None  # library.confidence_features of the first candidate
    # Where the first right section stands in the whole ranking (0: first); None when no
    # section is right or the search does not find it.
    rank: int | None

    @property
    def first_right(self) -> bool:
        return self.first is not None and self.first in self.case.expected

    @property
    def attached(self) -> str | None:
        return self.match.section.reference if self.match.section is not None else None

    @property
    def attached_right(self) -> bool:
        return self.attached is not None and self.attached in self.case.expected

    @property
    def in_page(self) -> bool:
        """Whether the page gives the responder a right section: attached, or, when none is,
        among its "possible runbook sections"."""
        offered = (
            [self.attached] if self.attached else [c.section.reference for c in self.match.possible]
        )
        return any(reference in self.case.expected for reference in offered)


def split() -> dict[str, list[str]]:
    """{"tuning": [...], "test": [...]}: the collections of each part (`shipped` included)."""
    document = yaml.safe_load((CORPUS / "SPLIT.yaml").read_text(encoding="utf-8"))
    return {"tuning": [SHIPPED, *document["tuning"]], "test": list(document["test"])}


@functools.cache
def library(collection: str) -> RunbookLibrary:
    if collection != SHIPPED:
        return RunbookLibrary.load(CORPUS / collection / "runbooks")
    with tempfile.TemporaryDirectory() as directory:
        for source in (ROOT / "rules" / "runbooks", FIXTURES / "library"):
            for runbook in source.glob("*.md"):
                shutil.copy(runbook, Path(directory) / runbook.name)
        return RunbookLibrary.load(Path(directory))


def _rows(collection: str) -> list[dict[str, Any]]:
    if collection != SHIPPED:
        rows: list[dict[str, Any]] = yaml.safe_load(
            (CORPUS / collection / "cases.yaml").read_text(encoding="utf-8")
        )
        return rows
    table = yaml.safe_load((FIXTURES / "search_quality.yaml").read_text(encoding="utf-8"))
    return [
        {
            "id": f"{SHIPPED}-{number:03}",
            "kind": "real" if row["expect"] else "none",
            "alert": row["alert"],
            "labels": row.get("labels", {}),
            "annotations": {k: row[k] for k in ("summary", "description") if k in row},
            "expect": row["expect"],
        }
        for number, row in enumerate(table, start=1)
    ]


def delivered(runbooks: RunbookLibrary, reference: str) -> str:
    """The reference of the section a page carries for a labelled one: the section itself, or,
    for a part (a sub-heading that is never attached on its own), the incident it belongs to,
    which a page carries whole with its parts."""
    section = runbooks.get(reference)
    while section is not None and not section.attachable and section.parent_anchor is not None:
        section = runbooks.get(f"{section.file}#{section.parent_anchor}")
    return section.reference if section is not None else reference


def cases(collection: str) -> list[Case]:
    found = []
    runbooks = library(collection)
    for row in _rows(collection):
        expect = row.get("expect")
        labelled = [expect, *(row.get("also") or [])] if expect else []
        expected = frozenset(delivered(runbooks, reference) for reference in labelled)
        labels = {str(k): str(v) for k, v in (row.get("labels") or {}).items()}
        annotations = {str(k): str(v) for k, v in (row.get("annotations") or {}).items()}
        alert = Alert(
            source=Source.ALERTMANAGER,
            status=AlertStatus.FIRING,
            fingerprint="0" * 16,
            labels={"alertname": str(row["alert"]), **labels},
            annotations=annotations,
            starts_at=None,
        )
        found.append(Case(collection, str(row["id"]), str(row["kind"]), alert, expected))
    return found


def without_annotations(case: Case) -> Case:
    """The case's alert as a rule that writes no annotation sends it: its name and labels."""
    return dataclasses.replace(case, alert=dataclasses.replace(case.alert, annotations={}))


def evaluate(collections: Sequence[str], *, name_alone: bool = False) -> list[Outcome]:
    """Every case of `collections` searched as labelled, or with `name_alone` without its
    annotations."""
    outcomes = []
    for collection in collections:
        runbooks = library(collection)
        for labelled in cases(collection):
            case = without_annotations(labelled) if name_alone else labelled
            hits = runbooks.search(case.alert)
            match = runbooks.find(case.alert)
            first = hits[0].section.reference if hits else None
            features = confidence_features(hits, 0) if hits else None
            rank = next(
                (i for i, hit in enumerate(hits) if hit.section.reference in case.expected), None
            )
            outcomes.append(Outcome(case, match, first, features, rank))
    return outcomes


@dataclass(frozen=True, slots=True)
class Figures:
    with_section: int
    without_section: int
    top1: float  # share of the alerts with a section whose first hit is right
    attached_right: float  # share of the alerts with a section that get it attached
    wrong_attachments: int  # alerts with a section that get another one attached
    false_attachments: int  # alerts without a section that get one attached
    in_page: float  # share of the alerts with a section whose page attaches or lists it


def figures(outcomes: Sequence[Outcome]) -> Figures:
    positives = [o for o in outcomes if o.case.expected]
    negatives = [o for o in outcomes if not o.case.expected]
    return Figures(
        with_section=len(positives),
        without_section=len(negatives),
        top1=sum(o.first_right for o in positives) / len(positives) if positives else 0.0,
        attached_right=(
            sum(o.attached_right for o in positives) / len(positives) if positives else 0.0
        ),
        wrong_attachments=sum(o.attached is not None and not o.attached_right for o in positives),
        false_attachments=sum(o.attached is not None for o in negatives),
        in_page=sum(o.in_page for o in positives) / len(positives) if positives else 0.0,
    )


# The depths at which `make eval-runbooks` reports how often the right section is ranked.
RECALL_DEPTHS = (1, 2, 3, 5, 10, 20)


def recall(outcomes: Sequence[Outcome], depth: int) -> float:
    """The share of the alerts with a section whose right section is among the first `depth`
    of the ranking: the most that any reordering of those candidates could put first."""
    positives = [o for o in outcomes if o.case.expected]
    found = sum(o.rank is not None and o.rank < depth for o in positives)
    return found / len(positives) if positives else 0.0


def most_confident_false(outcomes: Sequence[Outcome]) -> Outcome | None:
    """The alert without a section whose first candidate is the most confident: the attach
    threshold must stay above its confidence."""
    scored = [o for o in outcomes if not o.case.expected and o.match.candidates]
    return max(scored, key=lambda o: o.match.candidates[0].confidence, default=None)


def calibration(outcomes: Sequence[Outcome]) -> list[tuple[str, int, float, float]]:
    """(decile, alerts, mean predicted confidence, measured share right) for every decile of
    predicted confidence that holds alerts; "right" means the first candidate is a right section
    (never, for an alert without one)."""
    rows = []
    for decile in range(10):
        low, high = decile / 10, (decile + 1) / 10
        inside = [
            o
            for o in outcomes
            if (o.match.candidates and low <= o.match.candidates[0].confidence < high)
            or (decile == 9 and o.match.candidates and o.match.candidates[0].confidence >= 1.0)
        ]
        if not inside:
            continue
        predicted = sum(o.match.candidates[0].confidence for o in inside) / len(inside)
        measured = sum(o.first_right for o in inside) / len(inside)
        rows.append((f"{low:.1f}-{high:.1f}", len(inside), predicted, measured))
    return rows


def fit_confidence(outcomes: Sequence[Outcome], l2: float = 0.01) -> tuple[float, ...]:
    """Logistic regression (Newton's method, a little L2) of "first candidate right" on the
    first candidate's features (library.confidence_features): (intercept, *weights)."""
    rows = [(1.0, *o.features) for o in outcomes if o.features is not None]
    labels = [1.0 if o.first_right else 0.0 for o in outcomes if o.features is not None]
    size = len(rows[0])
    weights = [0.0] * size
    for _ in range(50):
        gradient = [0.0] * size
        hessian = [[0.0] * size for _ in range(size)]
        for x, y in zip(rows, labels, strict=True):
            z = sum(w * v for w, v in zip(weights, x, strict=True))
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            for i in range(size):
                gradient[i] += (p - y) * x[i]
                for j in range(size):
                    hessian[i][j] += p * (1 - p) * x[i] * x[j]
        for i in range(1, size):
            gradient[i] += l2 * weights[i]
            hessian[i][i] += l2
        step = _solve(hessian, gradient)
        weights = [w - s for w, s in zip(weights, step, strict=True)]
        if max(abs(s) for s in step) < 1e-9:
            break
    return tuple(weights)


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting, for the small Newton step."""
    n = len(vector)
    a = [[*row, vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        if abs(a[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col:
                factor = a[r][col] / a[col][col]
                a[r] = [x - factor * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[i][n] / a[i][i] if abs(a[i][i]) > 1e-12 else 0.0 for i in range(n)]
