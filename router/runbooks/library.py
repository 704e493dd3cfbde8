"""The runbook library: every section under `RULES_DIR/runbooks/`, looked up and matched to alerts.

`RunbookLibrary.load` reads `**/*.md` under the runbooks directory (a missing directory gives an
empty library; a file that cannot be read is a problem, and the rest still loads). `find` chooses
the section for an alert in the order docs/runbooks.md gives: the rule's `runbook:` reference, then
the alert's `runbook_url` / `runbook` annotation when it points at a section the library holds (by
file name and anchor, whatever the base URL), then search when its calibrated confidence reaches
`ATTACH_CONFIDENCE` (confidence.py), else none with the best candidates as possible sections.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from router.lru import LruCache
from router.models import Alert
from router.runbooks.confidence import ATTACH_CONFIDENCE, MODEL
from router.runbooks.roles import looks_like_alert_name, without_links
from router.runbooks.search import COVERED_HITS, Evidence, Hit, Query, SearchIndex
from router.runbooks.sections import Section, parse_runbook
from router.runbooks.source import decode_runbook

MatchMethod = Literal["rule", "annotation", "search", "none"]

# Larger Markdown files are not runbooks a person keeps; refusing them bounds parse time.
MAX_RUNBOOK_BYTES = 2 * 1024 * 1024

# Annotation names that carry a runbook link: Prometheus' convention and the short form.
RUNBOOK_ANNOTATIONS = ("runbook_url", "runbook")

# Query weights: the alert's name says most, then its one-line annotations, then its prose and
# the labels that say what is affected. Any other text annotation counts like prose.
_NAME_WEIGHT = 1.0
_RULE_WEIGHT = 0.6
_SUMMARY_WEIGHT = 0.6
_PROSE_WEIGHT = 0.4
_LABEL_WEIGHT = 0.1
_SUMMARY_ANNOTATIONS = ("summary", "title")
# Labels that name what is affected (not where it runs: instance, pod and node are noise).
_IDENTIFYING_LABELS = (
    "service",
    "job",
    "app",
    "application",
    "component",
    "container",
    "namespace",
    "deployment",
    "statefulset",
    "daemonset",
    "cronjob",
    "queue",
    "topic",
    "database",
)
_SCOPE_LABELS = ("service", "job", "app")
# Labels that say where an alert runs (a scrape target's address, a machine), never what is wrong.
_PLACE_LABELS = ("instance", "node", "host", "hostname")
# Every label the search reads (`query`): a label outside this set never changes a match.
LABELS_READ = frozenset(("alertname", *_IDENTIFYING_LABELS, *_SCOPE_LABELS))
# Searches remembered by what they read of the alert (see `find`).
FOUND_CACHE_SIZE = 4096
# Annotations that are links or numbers, not words about the problem.
_NOT_TEXT = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://\S*|[-+0-9.eE%]+)\s*$")

# What alert rule templates append to a description: the value and every label, as Go prints them
# (`VALUE = 12.4`, `LABELS = map[instance:a:9090 job:api]`, `LABELS: {...}`).
_TEMPLATE_DUMP = re.compile(
    r"\bVALUE\s*[=:]\s*\S*|\bLABELS\s*[=:]\s*(?:map\[[^\]]*\]|\{[^}]*\}|\S*)"
)

# A name coverage this close to 1 is the whole name (rounding of the IDF sums aside).
_WHOLE = 0.999

# How many searched sections a page without one lists as possible.
POSSIBLE_SECTIONS = 2
# How many candidates a match keeps (the dry run and the incident show them with their evidence;
# a page without a section links the first two): the hits whose coverage, and so confidence, the
# search works out.
CANDIDATES = COVERED_HITS


@dataclass(frozen=True, slots=True)
class Candidate:
    """A searched section with its score, its confidence, and the alert terms it holds."""

    section: Section
    score: float
    confidence: float
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class RunbookMatch:
    """The section chosen for an alert, how it was found, and the best searched candidates.

    `score` and `confidence` are 1.0 for `rule` and `annotation`; for `search` and `none` they are
    those of the best candidate (for `none`, below `ATTACH_CONFIDENCE`). `candidates` are the best
    searched sections, best first, whatever the method.
    """

    section: Section | None
    method: MatchMethod
    score: float
    confidence: float
    candidates: tuple[Candidate, ...] = ()

    @property
    def possible(self) -> tuple[Candidate, ...]:
        """The sections a page without one lists as "possible runbook sections"."""
        return self.candidates[:POSSIBLE_SECTIONS] if self.section is None else ()


class RunbookLibrary:
    """Every section of every runbook in one directory, with lookup and search."""

    def __init__(
        self,
        sections: Sequence[Section] = (),
        *,
        problems: Sequence[str] = (),
        notes: Sequence[str] = (),
        files: Sequence[str] = (),
        directory: Path | None = None,
    ) -> None:
        self.sections: tuple[Section, ...] = tuple(sections)
        self.problems: list[str] = list(problems)
        self.notes: list[str] = list(notes)
        self.files: tuple[str, ...] = tuple(files)
        self.directory = directory
        self._by_reference = {section.reference: section for section in self.sections}
        self._first_in_file: dict[str, Section] = {}
        for section in self.sections:
            self._first_in_file.setdefault(section.file, section)
        self._index = SearchIndex([s for s in self.sections if s.attachable])
        self._found: LruCache[Hashable, RunbookMatch] = LruCache(FOUND_CACHE_SIZE)

    @classmethod
    def load(cls, runbooks_dir: Path) -> RunbookLibrary:
        """Read every `*.md` under `runbooks_dir` (recursively, in path order)."""
        if not runbooks_dir.is_dir():
            not_a_directory = (
                [f"{runbooks_dir}:1: not a directory"] if runbooks_dir.exists() else []
            )
            return cls(problems=not_a_directory, directory=runbooks_dir)
        sections: list[Section] = []
        problems: list[str] = []
        notes: list[str] = []
        files: list[str] = []
        for path in sorted(runbooks_dir.rglob("*.md")):
            if not path.is_file():
                continue
            relative = path.relative_to(runbooks_dir).as_posix()
            try:
                size = path.stat().st_size
                if size > MAX_RUNBOOK_BYTES:
                    problems.append(
                        f"{path}:1: runbook is {size} bytes, more than {MAX_RUNBOOK_BYTES}; skipped"
                    )
                    continue
                data = path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}:1: cannot read runbook: {exc.strerror or exc}")
                continue
            decoded = decode_runbook(data)
            if decoded.read_as_cp1252:
                notes.append(f"{path}:{decoded.first_bad_line}: not valid UTF-8; read as cp1252")
            if decoded.repaired_lines:
                lines = ", ".join(str(n) for n in decoded.repaired_lines[:10])
                more = "..." if len(decoded.repaired_lines) > 10 else ""
                notes.append(
                    f"{path}:{decoded.repaired_lines[0]}: repaired mis-encoded UTF-8 "
                    f"(lines {lines}{more})"
                )
            found = parse_runbook(relative, decoded.text, page_title=decoded.title)
            if not found:
                notes.append(f"{path}:1: empty; nothing in it can be attached to a page")
            elif found[0].level == 0 and decoded.title is None:
                notes.append(
                    f"{path}:1: no headings; the whole file is one section, named after it"
                )
            files.append(relative)
            sections.extend(found)
        return cls(sections, problems=problems, notes=notes, files=files, directory=runbooks_dir)

    def get(self, reference: str) -> Section | None:
        """The section of `file.md#anchor`, or the first section of `file.md`."""
        file, _, anchor = reference.strip().partition("#")
        file = file.strip().removeprefix("./")
        if not anchor:
            return self._first_in_file.get(file)
        return self._by_reference.get(f"{file}#{_clean_anchor(anchor)}")

    def missing_reference(self, reference: str) -> str | None:
        """None when `reference` resolves; else a message saying what is wrong and what is near."""
        if self.get(reference) is not None:
            return None
        file, _, anchor = reference.strip().partition("#")
        file = file.strip().removeprefix("./")
        if not file:
            return f"runbook reference {reference!r} names no file (write file.md#anchor)"
        if file not in self.files:
            near = difflib.get_close_matches(file, self.files, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            where = f" under {self.directory}" if self.directory else ""
            return f"runbook {file} not found{where}{hint}"
        anchors = [s.anchor for s in self.sections if s.file == file]
        if not anchors:
            return f"runbook {file} has no headings"
        wanted = _clean_anchor(anchor)
        # A shortened anchor (`#slow-proof`) most likely means the heading it starts.
        near = [a for a in anchors if wanted and a.startswith(wanted)]
        near = near or difflib.get_close_matches(wanted, anchors, n=1, cutoff=0.5)
        hint = f" (did you mean #{near[0]}?)" if near else ""
        return f"runbook {file} has no heading with anchor #{anchor}{hint}"

    def resolve_url(self, url: str) -> Section | None:
        """The section a runbook link points at, by file name and anchor, whatever its base URL.

        `https://wiki/x/blob/main/db/postgres.md#slow-queries` resolves to `db/postgres.md`'s
        section when the library holds that file; the longest matching file path wins, so two
        runbooks of the same name in different folders are told apart. No anchor: the first section.
        """
        parts = urlsplit(url.strip())
        path = unquote(parts.path).rstrip("/")
        best: str | None = None
        for file in self.files:
            if (path == file or path.endswith("/" + file)) and (
                best is None or len(file) > len(best)
            ):
                best = file
        if best is None:
            return None
        anchor = unquote(parts.fragment)
        return self.get(f"{best}#{anchor}" if anchor else best)

    def query(self, alert: Alert, rule_names: Sequence[str] = ()) -> Query:
        """What `alert` says, weighted: name, rule names, text annotations, identifying labels."""
        sources: list[tuple[str, str, float]] = [("alertname", alert.name, _NAME_WEIGHT)]
        sources += [("rule", name, _RULE_WEIGHT) for name in rule_names]
        # Where the alert runs, as a template writes it into the text ("(instance 10.0.0.7:9100)"),
        # is no more about the problem than the label itself.
        places = [v for k in _PLACE_LABELS if len(v := alert.labels.get(k, "")) >= 3]
        for key, value in alert.annotations.items():
            if key in RUNBOOK_ANNOTATIONS or _NOT_TEXT.match(value):
                continue
            for place in places:
                value = value.replace(place, " ")
            weight = _SUMMARY_WEIGHT if key in _SUMMARY_ANNOTATIONS else _PROSE_WEIGHT
            # A link in the text ("See https://docs/.../troubleshooting/#slow-queries") is where
            # the alert points, not what it says: its words are left out, its link text kept.
            # So is a template's dump of the value and labels ("VALUE = 3  LABELS = map[...]").
            sources.append((key, _TEMPLATE_DUMP.sub(" ", without_links(value)), weight))
        sources += [
            (label, alert.labels[label], _LABEL_WEIGHT)
            for label in _IDENTIFYING_LABELS
            if alert.labels.get(label)
        ]
        scope = [alert.labels[name] for name in _SCOPE_LABELS if alert.labels.get(name)]
        return Query.build(sources, name=alert.name, scope_labels=scope)

    def search(self, alert: Alert, rule_names: Sequence[str] = ()) -> list[Hit]:
        """Every incident section with a positive score for `alert`, best first."""
        return self._index.rank(self.query(alert, rule_names))

    def find(
        self, alert: Alert, *, rule_runbook: str | None = None, rule_names: Sequence[str] = ()
    ) -> RunbookMatch:
        """The section for `alert`: by rule reference, annotation, confident search, or none.

        The answer depends only on the alert's name, annotations and identifying labels (what
        `query` reads) and on the rule's reference and names: alerts of a storm that say the same
        differ in other labels (instance, pod), and are searched once.
        """
        key = (
            alert.name,
            rule_runbook,
            tuple(rule_names),
            tuple(alert.annotations.items()),
            tuple(alert.labels.get(label) for label in _IDENTIFYING_LABELS),
        )
        found = self._found.get(key)
        if found is None:
            found = self._find(alert, rule_runbook, rule_names)
            self._found.put(key, found)
        return found

    def _find(
        self, alert: Alert, rule_runbook: str | None, rule_names: Sequence[str]
    ) -> RunbookMatch:
        query = self.query(alert, rule_names)
        hits = self._index.rank(query, limit=CANDIDATES)
        candidates = tuple(
            Candidate(
                hit.section,
                hit.score,
                confidence(hits, position),
                tuple(self._index.evidence(query, hit)),
            )
            for position, hit in enumerate(hits)
        )
        chosen: Section | None = None
        method: MatchMethod = "none"
        if rule_runbook:
            chosen = self.get(rule_runbook)
            method = "rule"
        if chosen is None:
            for name in RUNBOOK_ANNOTATIONS:
                link = alert.annotations.get(name)
                if link and (chosen := self.resolve_url(link)) is not None:
                    method = "annotation"
                    break
        if chosen is not None:
            return RunbookMatch(chosen, method, 1.0, 1.0, candidates)
        best = candidates[0] if candidates else None
        if best is not None and best.confidence >= ATTACH_CONFIDENCE:
            return RunbookMatch(best.section, "search", best.score, best.confidence, candidates)
        return RunbookMatch(
            None,
            "none",
            best.score if best else 0.0,
            best.confidence if best else 0.0,
            candidates,
        )


def confidence_features(hits: Sequence[Hit], position: int) -> tuple[float, ...]:
    """What the confidence of `hits[position]` depends on (search.Hit): its margin over the best
    other hit (negative below the first; its whole score when it is alone), whether the section
    holds every term of the alert's name, how much of the section's heading the alert says, and
    how nearly the heading is the alert's name (a margin that a heading sharing some of the name's
    words earned, `KubeAggregatedAPIDown` against "KubeAPIDown", is worth less than one the text
    earned), and whether the heading is the name of another alert: a runbook that titles its
    sections with alert names says which alert each is for, and an alert that only words the same
    problem otherwise is right half as often."""
    hit = hits[position]
    best_other = next((h.score for i, h in enumerate(hits[:CANDIDATES]) if i != position), 0.0)
    return (
        hit.score - best_other,
        1.0 if hit.name_coverage >= _WHOLE else 0.0,
        hit.heading_coverage,
        hit.heading_match,
        1.0 if hit.heading_match < 1.0 and looks_like_alert_name(hit.section.heading) else 0.0,
    )


def confidence(hits: Sequence[Hit], position: int) -> float:
    """The calibrated probability that `hits[position]` is the right section (confidence.py)."""
    return MODEL.probability(*confidence_features(hits, position))


def _clean_anchor(anchor: str) -> str:
    """An anchor as GitHub serves it: no `#`, no `user-content-` prefix, no percent-escapes."""
    anchor = unquote(anchor.strip().lstrip("#")).lower()
    return anchor.removeprefix("user-content-")
