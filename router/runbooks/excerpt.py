"""The runbook excerpt a page carries, cut to what each channel can hold.

Order of what goes in (docs/runbooks.md, "Excerpts and budgets"): the heading path; the Symptoms
(or, when a section has no such label, its text before the first labelled part); the Immediate
Actions or, when a section has none, the nearest equivalent (Mitigation, Resolution, Diagnosis,
Investigation Steps); then the rest of the section in document order while it fits. Blocks go in
whole: a code block, or a list item holding one, is never cut; a paragraph or a plain list item may
be shortened at a word when it is the one that does not fit. The link to the whole section always
closes the excerpt, and `len(excerpt) <= budget` always holds.
"""

from __future__ import annotations

import itertools
import re

from router.runbooks.sections import (
    DIAGNOSIS,
    IMMEDIATE_ACTIONS,
    INVESTIGATION,
    MITIGATION,
    RESOLUTION,
    SYMPTOMS,
    Block,
    Section,
)
from router.types import Style

# What stands in for Immediate Actions when a section has none, nearest first.
ACTION_PARTS = (IMMEDIATE_ACTIONS, MITIGATION, RESOLUTION, DIAGNOSIS, INVESTIGATION)
# A block shortened to fewer characters than this says too little to be worth its place.
_MIN_SHORTENED = 40
_ELLIPSIS = "…"
_PATH_SEPARATOR = " › "
_SKIPPED_KINDS = frozenset({"diagram", "html", "rule"})


def render_excerpt(section: Section, *, budget: int, link: str, style: Style = "markdown") -> str:
    """The excerpt of `section` for a page body, at most `budget` characters, ending in `link`."""
    footer = f"Runbook: {link}"
    title = _PATH_SEPARATOR.join(section.path) or section.heading
    header = f"**{title}**" if style == "markdown" else title
    if len(header) + 2 + len(footer) > budget:
        # The smallest forms, for tiny budgets: the heading and the link, the link alone, or
        # as much of the heading as fits.
        for tail in (footer, link):
            if len(section.heading) + 1 + len(tail) <= budget:
                return f"{section.heading}\n{tail}"
        if len(link) <= budget:
            return link
        return cut_at_word(section.heading, budget) if budget > 0 else ""

    writer = _Writer(budget - len("\n\n") - len(footer), header, style)
    own = _own(section)
    symptoms = [b for b in own if b.part == SYMPTOMS]
    if not symptoms:
        # No Symptoms label: the text before the first labelled part describes the problem.
        symptoms = list(itertools.takewhile(lambda b: b.part is None, own))
    action_part = next((part for part in ACTION_PARTS if any(b.part == part for b in own)), None)
    actions = [b for b in own if action_part is not None and b.part == action_part]
    shown_first = {id(b) for b in [*symptoms, *actions]}
    rest = [b for b in section.blocks if id(b) not in shown_first and b.kind not in _SKIPPED_KINDS]
    for group in (symptoms, actions, rest):
        writer.add_group([b for b in group if b.kind not in _SKIPPED_KINDS])
    if writer.omitted and writer.wrote_content:
        writer.add_marker(_ELLIPSIS)
    return f"{writer.text()}\n\n{footer}"


def _own(section: Section) -> list[Block]:
    return [b for b in section.blocks if not b.foreign]


class _Writer:
    """Collects chunks separated by blank lines while they fit in `room` characters."""

    def __init__(self, room: int, header: str, style: Style) -> None:
        self.room = room
        self.style = style
        self.chunks = [header]
        self.length = len(header)
        self.label: str | None = None
        self.omitted = False
        self.wrote_content = False
        self.last: Block | None = None

    def text(self) -> str:
        return "\n\n".join(self.chunks)

    def add_marker(self, marker: str) -> None:
        if self.chunks[-1].endswith(marker):
            return  # a shortened block already says that more follows
        if self.length + 2 + len(marker) <= self.room:
            self._append(marker)

    def add_group(self, blocks: list[Block]) -> None:
        for block in blocks:
            if not self._add_block(block):
                self.omitted = True
                return

    def _add_block(self, block: Block) -> bool:
        body = _render_block(block, self.style)
        if not body:
            return True
        label_line = ""
        if block.label is not None and block.label != self.label and not block.foreign:
            label_line = f"**{block.label}**" if self.style == "markdown" else f"{block.label}:"
        # Items of one list stay one list: joined by a line end, not a blank line.
        tight = (
            not label_line
            and block.kind == "list_item"
            and self.last is not None
            and self.last.kind == "list_item"
            and self.last.part == block.part
            and self.last.foreign == block.foreign
        )
        cost = (1 if tight else 2) + len(body) + (2 + len(label_line) if label_line else 0)
        if self.length + cost <= self.room:
            self._emit(label_line, body, block, tight)
            return True
        if block.has_code or block.kind in ("table", "heading", "code"):
            return False
        left = self.room - self.length - (cost - len(body))
        if left < _MIN_SHORTENED:
            return False
        self._emit(label_line, cut_at_word(body, left), block, tight)
        return False

    def _emit(self, label_line: str, body: str, block: Block, tight: bool) -> None:
        if label_line:
            self._append(label_line)
        if block.foreign or block.label is None:
            self.label = None
        else:
            self.label = block.label
        if tight:
            self.chunks[-1] += "\n" + body
            self.length += 1 + len(body)
        else:
            self._append(body)
        self.last = block
        self.wrote_content = True

    def _append(self, chunk: str) -> None:
        self.chunks.append(chunk)
        self.length += 2 + len(chunk)


def _render_block(block: Block, style: Style) -> str:
    if block.kind == "heading":
        heading = block.markdown.splitlines()[0].strip().lstrip("#").strip()
        return f"**{heading}**" if style == "markdown" else heading
    if style == "markdown":
        return block.markdown.strip("\n")
    return _plain(block.markdown).strip("\n")


_FENCE = re.compile(r"^\s*(```|~~~)")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_CODE_SPAN = re.compile(r"`([^`]+)`")


def _plain(markdown: str) -> str:
    """Markdown as plain text: fences and inline markup dropped, code lines kept verbatim."""
    lines: list[str] = []
    in_fence = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            lines.append(line)
            continue
        # Code spans keep their text verbatim; markup is only undone between them.
        pieces = _CODE_SPAN.split(line)
        for index in range(0, len(pieces), 2):
            piece = _IMAGE.sub(r"\1", pieces[index])
            piece = _LINK.sub(r"\1 (\2)", piece)
            pieces[index] = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3), piece)
        lines.append("".join(pieces))
    return "\n".join(lines)


def cut_at_word(text: str, limit: int, ellipsis: str = _ELLIPSIS) -> str:
    """`text` cut at a word to at most `limit` characters, ending in `ellipsis`; never leaves a
    code span open."""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[: max(limit, 0)]
    cut = text[: limit - len(ellipsis)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    if cut.count("`") % 2:
        cut = cut[: cut.rfind("`")]
    return cut.rstrip() + ellipsis
