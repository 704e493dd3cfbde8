"""The runbook library: every section under `RULES_DIR/runbooks/`, looked up and matched to alerts.

`RunbookLibrary.load` reads `**/*.md` under the runbooks directory (a missing directory gives an
empty library; a file that cannot be read is a problem, and the rest still loads). `find` chooses
the section for an alert in SPEC.md §4's order: the rule's `runbook:` reference, then the alert's
`runbook_url` / `runbook` annotation when it points at a section the library holds (by file name
and anchor, whatever the base URL), then search above `SEARCH_THRESHOLD`, else none.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from router.models import Alert
from router.runbooks.search import Query, SearchIndex
from router.runbooks.sections import Section, parse_runbook
from router.runbooks.source import decode_runbook

MatchMethod = Literal["rule", "annotation", "search", "none"]

# Calibrated on tests/fixtures/runbooks/search_quality.yaml (54 alerts with a section, 11 without,
# over the shipped and fixture runbooks): the best hit of an alert that has no section scored at
# most 0.32 (HighCPUUsage → "High Memory Usage"); the threshold sits just above it, below all but
# two correct hits. `python -m bench` prints the figures again.
SEARCH_THRESHOLD = 0.34

# Larger Markdown files are not runbooks a person keeps; refusing them bounds parse time.
MAX_RUNBOOK_BYTES = 2 * 1024 * 1024

# Annotation names that carry a runbook link: Prometheus' convention and the short form.
RUNBOOK_ANNOTATIONS = ("runbook_url", "runbook")

# Query weights: the alert's name and matched rule names say most, its prose less.
_NAME_WEIGHT = 1.0
_RULE_WEIGHT = 1.0
_SUMMARY_WEIGHT = 0.6
_DESCRIPTION_WEIGHT = 0.3
_SCOPE_LABELS = ("service", "job", "app")


@dataclass(frozen=True, slots=True)
class RunbookMatch:
    """The section chosen for an alert, how it was found, and the runner-up of the search.

    `score` is 1.0 for `rule` and `annotation`; for `search` and `none` it is the best search score
    (for `none`, below the threshold). `runner_up` is the best search hit other than `section`
    (for `none`, the best hit that fell short).
    """

    section: Section | None
    method: MatchMethod
    score: float
    runner_up: Section | None = None
    runner_up_score: float = 0.0


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
        self._index = SearchIndex([s for s in self.sections if not s.is_part])

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
            found = parse_runbook(relative, decoded.text)
            if not found:
                notes.append(f"{path}:1: no headings; nothing in it can be attached to a page")
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

    def search(self, alert: Alert, rule_names: Sequence[str] = ()) -> list[tuple[Section, float]]:
        """Every section with a positive score for `alert`, best first."""
        annotations = alert.annotations
        sources = [
            (alert.name, _NAME_WEIGHT),
            *((name, _RULE_WEIGHT) for name in rule_names),
            (annotations.get("summary", ""), _SUMMARY_WEIGHT),
            (annotations.get("title", ""), _SUMMARY_WEIGHT),
            (annotations.get("description", ""), _DESCRIPTION_WEIGHT),
            (annotations.get("message", ""), _DESCRIPTION_WEIGHT),
        ]
        scope = [alert.labels[name] for name in _SCOPE_LABELS if alert.labels.get(name)]
        return self._index.rank(Query.build(sources, scope))

    def find(
        self, alert: Alert, *, rule_runbook: str | None = None, rule_names: Sequence[str] = ()
    ) -> RunbookMatch:
        """The section for `alert`: by rule reference, annotation, search, or none."""
        ranked = self.search(alert, rule_names)
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
            runner_up = next(((s, score) for s, score in ranked if s is not chosen), None)
            return RunbookMatch(
                chosen,
                method,
                1.0,
                runner_up[0] if runner_up else None,
                runner_up[1] if runner_up else 0.0,
            )
        best = ranked[0] if ranked else None
        second = ranked[1] if len(ranked) > 1 else None
        if best is not None and best[1] >= SEARCH_THRESHOLD:
            return RunbookMatch(
                best[0],
                "search",
                best[1],
                second[0] if second else None,
                second[1] if second else 0.0,
            )
        return RunbookMatch(
            None,
            "none",
            best[1] if best else 0.0,
            best[0] if best else None,
            best[1] if best else 0.0,
        )


def _clean_anchor(anchor: str) -> str:
    """An anchor as GitHub serves it: no `#`, no `user-content-` prefix, no percent-escapes."""
    anchor = unquote(anchor.strip().lstrip("#")).lower()
    return anchor.removeprefix("user-content-")
