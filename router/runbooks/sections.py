"""Markdown → sections: the tree of headings of one runbook, with their labelled parts.

A section is a heading and everything up to the next heading of the same or a higher level
(docs/runbooks.md). Besides its text, each section knows its heading path, its GitHub anchor, its
line range, and the parts that incident runbooks label: **Symptoms**, **Immediate Actions**,
**Investigation Steps**, **Diagnosis**, **Mitigation**, **Resolution**, **Escalation**,
**Prevention** and the variants teams write for them, whether as bold labels (`**Symptoms:**`) or
as sub-headings (`#### Symptoms`). A section's body is kept as blocks (paragraphs, list items, code
blocks, tables...) so that an excerpt can be cut between blocks and never inside a code block.

Parsing is markdown-it-py's CommonMark with GitHub tables; nothing here reads files.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.token import Token

from router.runbooks.roles import (
    SectionRole,
    looks_like_alert_name,
    looks_procedural,
    named_role,
    normalise_heading,
    shape_role,
    without_heading_id,
)
from router.runbooks.slugs import Slugger

SYMPTOMS = "Symptoms"
IMPACT = "Impact"
CAUSES = "Causes"
IMMEDIATE_ACTIONS = "Immediate Actions"
INVESTIGATION = "Investigation Steps"
DIAGNOSIS = "Diagnosis"
MITIGATION = "Mitigation"
RESOLUTION = "Resolution"
ESCALATION = "Escalation"
PREVENTION = "Prevention"
REFERENCES = "References"

# The labels teams write, normalised (lowercase, no emoji, numbering or punctuation), mapped to
# the canonical part they name. Kept to names that mean "a part of one incident" wherever they
# stand; a heading that names a chapter of its own (a glossary, a contact list) is in roles.py.
_LABELS: Mapping[str, str] = {
    **dict.fromkeys(
        [
            "symptoms",
            "symptom",
            "signs",
            "indicators",
            "how to recognise",
            "how to recognize",
            "meaning",
            "what it means",
            "what does this alert mean",
            "description",
            "problem",
            "problem description",
            "issue",
            "alert description",
            "explanation",
            "context",
            "understanding the alert",
            "about this alert",
            "about the alert",
            "what this alert means",
            "what is this alert",
            "alert details",
            "why this alert fires",
            # The answer under a documentation site's question ("Why are passwords on JKS
            # files not helpful?" › Simple Answer, Longer Answer) explains that question.
            "answer",
            "short answer",
            "simple answer",
            "long answer",
            "longer answer",
            "detailed answer",
        ],
        SYMPTOMS,
    ),
    **dict.fromkeys(
        ["impact", "user impact", "business impact", "customer impact", "why it matters"],
        IMPACT,
    ),
    **dict.fromkeys(
        [
            "cause",
            "causes",
            "possible causes",
            "probable causes",
            "likely causes",
            "common causes",
            "root cause",
            "root causes",
        ],
        CAUSES,
    ),
    **dict.fromkeys(
        [
            "immediate actions",
            "immediate action",
            "immediate steps",
            "immediate response",
            "first steps",
            "first response",
            "triage",
            "what to do",
        ],
        IMMEDIATE_ACTIONS,
    ),
    **dict.fromkeys(
        [
            "investigation steps",
            "investigation",
            "investigate",
            "troubleshooting",
            "troubleshooting steps",
            "how to investigate",
            "debugging",
        ],
        INVESTIGATION,
    ),
    **dict.fromkeys(
        [
            "diagnosis",
            "diagnostic commands",
            "diagnostics",
            "diagnostic steps",
            "diagnose",
            "possible checks",
            "checks",
            "what to check",
            "things to check",
            "verification",
        ],
        DIAGNOSIS,
    ),
    **dict.fromkeys(
        [
            "mitigation",
            "mitigation options",
            "mitigation steps",
            "workaround",
            "workarounds",
            "solution",
            "solutions",
            "possible solutions",
            "possible solution",
            "how to fix",
            "how to fix it",
            "next steps",
        ],
        MITIGATION,
    ),
    **dict.fromkeys(
        [
            "resolution",
            "resolution steps",
            "recovery",
            "recovery steps",
            "remediation",
            "fix",
            "steps to resolve",
        ],
        RESOLUTION,
    ),
    **dict.fromkeys(["escalation", "escalation path", "when to escalate", "escalate"], ESCALATION),
    **dict.fromkeys(
        ["prevention", "preventive measures", "follow-up", "follow up", "long-term fixes"],
        PREVENTION,
    ),
    **dict.fromkeys(
        ["related alerts", "see also", "references", "further reading", "related"], REFERENCES
    ),
}

BlockKind = Literal[
    "heading", "paragraph", "list_item", "code", "diagram", "table", "quote", "html", "rule"
]

# `**Symptoms:** text`, `**Symptoms**: text`, `__Symptoms__`, `*Symptoms:*`, or a bare `Symptoms:`.
_BOLD_LABEL = re.compile(
    r"^\s{0,3}(?:\*\*|__|\*|_)(?P<label>[^*_\n]{2,40}?)\s*:?\s*(?:\*\*|__|\*|_)"
    r"\s*:?[ \t]*(?P<rest>.*)$"
)
_BARE_LABEL = re.compile(r"^\s{0,3}(?P<label>[A-Za-z][A-Za-z /&-]{1,40}):[ \t]*(?P<rest>.*)$")
_LEADING_NUMBERING = re.compile(r"^(?:step\s+)?\d+(?:\.\d+)*[.):]?\s+", re.IGNORECASE)


# Words teams put around a part's name: "Potential resolution steps", "Suggested fix", "Other
# causes".
_QUALIFIERS = (
    "possible ",
    "potential ",
    "suggested ",
    "recommended ",
    "common ",
    "further ",
    "other ",
)
_NUMBERED_PART = re.compile(r"^(?P<label>[a-z]+(?: [a-z]+)?) #?\d+\b")
_TRAILERS = (" steps", " options")


def part_label(text: str) -> str | None:
    """The canonical part a label or heading names (`"🔍 Diagnostic Commands"` → Diagnosis)."""
    kept = "".join(
        char
        for char in without_heading_id(text).lower()
        if char in " -/&" or unicodedata.category(char)[0] in "LN"
    )
    kept = _LEADING_NUMBERING.sub("", " ".join(kept.split())).strip(" -/&")
    found = _LABELS.get(kept)
    if found is None:
        bare = next((kept[len(q) :] for q in _QUALIFIERS if kept.startswith(q)), kept)
        bare = next((bare[: -len(t)] for t in _TRAILERS if bare.endswith(t)), bare)
        found = _LABELS.get(bare)
    if found is None:
        # One of several numbered parts, named after the number: "Cause 2: EKS on a custom CNI",
        # "Solution 1 - raise the limit".
        numbered = _NUMBERED_PART.match(kept)
        found = _LABELS.get(numbered["label"]) if numbered else None
    return found


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """One fenced or indented code block; `line` is where its first line (the fence) is."""

    language: str
    code: str
    line: int


@dataclass(frozen=True, slots=True)
class Block:
    """One piece of a section's body that an excerpt takes whole or not at all.

    `markdown` is the block's source. `part` is the canonical part it belongs to (None outside
    any labelled part), and `label` the label as the runbook wrote it. `foreign` marks blocks of a
    sub-section that is not one of this section's parts. `has_code` is true when the block is or
    contains a code block.
    """

    kind: BlockKind
    markdown: str
    line: int
    part: str | None = None
    label: str | None = None
    foreign: bool = False
    has_code: bool = False
    heading_level: int = 0


@dataclass(frozen=True, slots=True)
class Section:
    """A heading and everything under it up to the next heading of the same or a higher level.

    `file` is the runbook's path under the runbooks directory (POSIX separators); `anchor` its
    GitHub slug; `path` the heading path from the outermost heading (a document's single H1 title
    is left out of its sub-sections' paths); `line_start`/`line_end` the 1-based inclusive lines
    from the heading to the last non-blank line; `text` the Markdown under the heading,
    sub-sections included; `parts` the labelled parts (canonical name → Markdown); `role` what
    the section is for (roles.py): only `incident` sections are attached to pages.
    """

    file: str
    anchor: str
    heading: str
    path: tuple[str, ...]
    level: int
    line_start: int
    line_end: int
    text: str
    parts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    code_blocks: tuple[CodeBlock, ...] = ()
    steps: tuple[str, ...] = ()
    blocks: tuple[Block, ...] = ()
    role: SectionRole = SectionRole.INCIDENT
    parent_anchor: str | None = None

    @property
    def content_hash(self) -> str:
        """A short hash of the section's heading and text: kept with each incident that carried
        the section, so that `check --coverage` can say which sections changed since."""
        digest = hashlib.sha256(f"{self.heading}\n{self.text}".encode())
        return digest.hexdigest()[:16]

    @property
    def is_part(self) -> bool:
        """True for a sub-heading that is a part of its incident (`#### Symptoms`)."""
        return self.role is SectionRole.PART

    @property
    def attachable(self) -> bool:
        """Only incident sections go into a page; parts go in with their incident."""
        return self.role is SectionRole.INCIDENT

    @property
    def reference(self) -> str:
        """`file#anchor`, as a rule's `runbook:` key writes it; `file` for a whole page."""
        return f"{self.file}#{self.anchor}" if self.anchor else self.file

    def link(self, base_url: str) -> str:
        """The section's URL: `runbook_base_url` + file + `#` + anchor."""
        if base_url and not base_url.endswith("/"):
            base_url += "/"
        return f"{base_url}{self.reference}"


@dataclass(slots=True)
class _Heading:
    index: int
    level: int
    text: str
    anchor: str
    first_line: int  # 0-based, inclusive
    after_line: int  # 0-based, first line after the heading's own lines
    parent: int | None
    part: str | None = None  # set when this heading is a part of its parent: the part's name
    role: SectionRole = SectionRole.INCIDENT


@dataclass(slots=True)
class _RawBlock:
    kind: BlockKind
    start: int  # 0-based, inclusive
    end: int  # 0-based, exclusive
    owner: int | None  # index of the innermost heading above, None before any heading
    heading: int | None = None  # for heading blocks, the heading's index
    has_code: bool = False


def _markdown_parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_PARSER = _markdown_parser()


def parse_runbook(file: str, text: str, *, page_title: str | None = None) -> tuple[Section, ...]:
    """Every section of one runbook, in document order. `text` has LF line ends.

    A page whose title is not a heading (docs sites put it in the front matter: `page_title`), or
    that has no heading at all, gets a section for the whole page: its heading is that title, or
    else the file's name, and its anchor is empty (`reference` is the file alone).
    """
    lines = text.split("\n")
    tokens = _PARSER.parse(text)
    headings = _headings(tokens, page_title)
    if _document_title(headings) is None and (page_title or (not headings and text.strip())):
        headings = _with_page_heading(headings, page_title or _file_title(file), lines)
    _assign_parts(headings, lines)
    raw_blocks = _raw_blocks(tokens, headings)
    code_blocks = _code_blocks(tokens)
    title = _document_title(headings)
    sections = []
    section_blocks = [_section_blocks(h, headings, raw_blocks, lines) for h in headings]
    _assign_roles(headings, section_blocks)
    for heading, blocks in zip(headings, section_blocks, strict=True):
        end = _section_end(heading, headings, lines)
        path = _path(heading, headings, title)
        parts: dict[str, list[str]] = {}
        for block in blocks:
            if block.part is not None and not block.foreign and block.kind != "heading":
                parts.setdefault(block.part, []).append(block.markdown)
        steps = tuple(
            _strip_list_marker(block.markdown)
            for block in blocks
            if block.kind == "list_item" and not block.foreign and _is_ordered(block.markdown)
        )
        sections.append(
            Section(
                file=file,
                anchor=heading.anchor,
                heading=heading.text,
                path=path,
                level=heading.level,
                line_start=heading.first_line + 1,
                line_end=end + 1,
                text="\n".join(lines[heading.after_line : end + 1]).strip("\n"),
                parts=MappingProxyType({k: "\n\n".join(v) for k, v in parts.items()}),
                code_blocks=tuple(c for c in code_blocks if heading.after_line < c.line <= end + 1),
                steps=steps,
                blocks=tuple(blocks),
                role=heading.role,
                parent_anchor=headings[heading.parent].anchor
                if heading.parent is not None
                else None,
            )
        )
    return tuple(sections)


# A heading that is a template expression (`# <%= current_page.data.title %>` in Middleman's
# GOV.UK tech docs, `# {{ page.title }}` in Jekyll, `# {{ .Title }}` in Hugo): the site renders
# the front matter's title there.
_TEMPLATE_HEADING = re.compile(r"<%=.*%>|\{\{.*\}\}")


def _headings(tokens: Sequence[Token], page_title: str | None = None) -> list[_Heading]:
    """Every heading of the page; one that is a template expression reads as `page_title`, the
    front matter's title, when the page has one."""
    slugger = Slugger()
    headings: list[_Heading] = []
    stack: list[_Heading] = []
    for position, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        level = int(token.tag[1:])
        text = _inline_text(tokens[position + 1])
        if page_title and _TEMPLATE_HEADING.fullmatch(text.strip()):
            text = page_title
        while stack and stack[-1].level >= level:
            stack.pop()
        parent = stack[-1] if stack else None
        heading = _Heading(
            index=len(headings),
            level=level,
            text=text,
            anchor=slugger.slug(text),
            first_line=token.map[0],
            after_line=token.map[1],
            parent=parent.index if parent else None,
        )
        headings.append(heading)
        stack.append(heading)
    return headings


# Parts that open an incident: a section whose first sub-heading is one of them describes a
# problem, whatever its other sub-headings are called.
_OPENING_PARTS = frozenset({SYMPTOMS, IMPACT, CAUSES})


def _assign_parts(headings: list[_Heading], lines: list[str]) -> None:
    """Mark the headings that are parts of an incident rather than sections of their own.

    A section holds parts when at least half its sub-headings are known part names (two at least
    under a document title), when its first sub-heading describes the problem (Symptoms, Impact),
    or when its heading is an alert name (`### LedgerSyncStalled`, as per-alert files title
    themselves). Steps of a procedure ("Check pod health") count as part names. Then every
    heading under it is a part, known by name or not ("Get Redis master" under an incident is one
    of its steps). An alert-named heading whose sub-sections have parts of their own holds
    incidents.
    """
    title = _document_title(headings)
    children: dict[int, list[_Heading]] = {}
    for heading in headings:
        if heading.parent is not None:
            children.setdefault(heading.parent, []).append(heading)
    for heading in headings:
        below = children.get(heading.index, [])
        if not below or heading.part is not None:
            continue
        known = [part_label(child.text) for child in below]
        # Steps of a procedure ("Check pod health", "Get Redis master") count as parts too.
        named = sum(
            label is not None or looks_procedural(child.text)
            for label, child in zip(known, below, strict=True)
        )
        is_title = heading.index == title
        # Named like an alert, a section holds parts unless its sub-sections have parts of their
        # own, as sub-headings or labels (then they are the incidents).
        grandparent = any(
            part_label(grandchild.text) is not None
            for child in below
            for grandchild in children.get(child.index, [])
        ) or any(_has_labels(child, headings, lines) for child in below)
        holds_parts = (
            (not grandparent and looks_like_alert_name(heading.text))
            or (named >= min(2 if is_title else 1, len(below)) and named * 2 >= len(below))
            or (not is_title and known[0] in _OPENING_PARTS)
        )
        if holds_parts:
            _make_parts(_descendants(heading, headings))
    # A sub-heading that recurs in the page under other headings ("Protocol Differences", "AMQP
    # 0-9-1", "Java Client" under each chapter of a guide) is a variant of the text above it,
    # not a problem of its own: its sub-section is a part of the section that holds it.
    names = [normalise_heading(h.text) for h in headings]
    recurring = Counter(name for name, h in zip(names, headings, strict=True) if h.level > 0)
    for heading, name in zip(headings, names, strict=True):
        if (
            heading.part is None
            and heading.parent is not None
            and heading.parent != title
            and recurring[name] > 1
        ):
            _make_parts([heading, *_descendants(heading, headings)])


def _make_parts(headings: Sequence[_Heading]) -> None:
    for heading in headings:
        heading.part = part_label(heading.text) or heading.text
        heading.role = SectionRole.PART


def _has_labels(heading: _Heading, headings: list[_Heading], lines: list[str]) -> bool:
    """True when the heading's own text (up to the next heading) opens a part with a label."""
    following = headings[heading.index + 1] if heading.index + 1 < len(headings) else None
    end = following.first_line if following is not None else len(lines)
    return any(_line_label(line) is not None for line in lines[heading.after_line : end])


def _descendants(heading: _Heading, headings: list[_Heading]) -> list[_Heading]:
    found = []
    for later in headings[heading.index + 1 :]:
        if later.level <= heading.level:
            break
        found.append(later)
    return found


# Characters of prose under a heading, before its sub-sections, that make it more than a chapter.
_CONTAINER_PROSE = 300


def _assign_roles(headings: list[_Heading], section_blocks: list[list[Block]]) -> None:
    """The role of every heading that is not a part: by name, by shape, else by its place."""
    has_children = {h.parent for h in headings if h.parent is not None}
    holding_parts = {h.parent for h in headings if h.role is SectionRole.PART}
    for heading, blocks in zip(headings, section_blocks, strict=True):
        if heading.role is SectionRole.PART:
            continue
        holds_parts = heading.index in holding_parts
        own = [b for b in blocks if not b.foreign]
        role = named_role(heading.text)
        if role is None and heading.index in has_children and not holds_parts:
            # A chapter over incidents says little itself; one that describes a problem at
            # length before its sub-sections is an incident too, beside them.
            prose = sum(len(b.markdown) for b in own if b.kind in ("paragraph", "list_item"))
            role = SectionRole.CONTAINER if prose < _CONTAINER_PROSE else None
        if role is None and not holds_parts:
            role = shape_role(own)
        heading.role = role or SectionRole.INCIDENT


def _inline_text(inline: Token) -> str:
    """A heading's text as GitHub renders it: markup dropped, code spans and link text kept."""
    pieces: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
    return "".join(pieces).strip()


def _raw_blocks(tokens: Sequence[Token], headings: list[_Heading]) -> list[_RawBlock]:
    heading_at = {h.first_line: h for h in headings if h.level > 0}
    blocks: list[_RawBlock] = []
    # Text before the first heading belongs to the page's own section when it has one.
    owner: int | None = 0 if headings and headings[0].level == 0 else None
    position = 0
    while position < len(tokens):
        token = tokens[position]
        close = _closing(tokens, position)
        if token.level != 0 or token.map is None:
            position = close + 1
            continue
        start, end = token.map
        if token.type == "heading_open":
            heading = heading_at[start]
            owner = heading.index
            blocks.append(_RawBlock("heading", start, end, owner, heading=heading.index))
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            for inner in range(position + 1, close):
                item = tokens[inner]
                if item.type == "list_item_open" and item.level == 1 and item.map:
                    item_close = _closing(tokens, inner)
                    has_code = any(
                        t.type in ("fence", "code_block") for t in tokens[inner:item_close]
                    )
                    start, end = item.map
                    blocks.append(_RawBlock("list_item", start, end, owner, has_code=has_code))
        else:
            blocks.append(_RawBlock(_block_kind(token, tokens[position:close]), start, end, owner))
            if blocks[-1].kind in ("code", "diagram"):
                blocks[-1].has_code = True
        position = close + 1
    return blocks


def _block_kind(token: Token, inner: Sequence[Token]) -> BlockKind:
    if token.type == "fence":
        return "diagram" if token.info.strip().lower() == "mermaid" else "code"
    if token.type == "code_block":
        return "code"
    if token.type == "table_open":
        return "table"
    if token.type == "blockquote_open":
        return "quote"
    if token.type == "html_block":
        return "html"
    if token.type == "hr":
        return "rule"
    return "paragraph"


def _closing(tokens: Sequence[Token], position: int) -> int:
    """The index of the token closing the one at `position` (itself when it opens nothing)."""
    if tokens[position].nesting != 1:
        return position
    depth = 0
    for index in range(position, len(tokens)):
        depth += tokens[index].nesting
        if depth == 0:
            return index
    return len(tokens) - 1


def _code_blocks(tokens: Sequence[Token]) -> list[CodeBlock]:
    return [
        CodeBlock(
            language=token.info.strip().split(" ")[0], code=token.content, line=token.map[0] + 1
        )
        for token in tokens
        if token.type in ("fence", "code_block") and token.map is not None
    ]


def _with_page_heading(headings: list[_Heading], title: str, lines: list[str]) -> list[_Heading]:
    """`headings` under a level-0 heading for the whole page (see `parse_runbook`)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    page = _Heading(
        index=0, level=0, text=title, anchor="", first_line=first, after_line=first, parent=None
    )
    shifted = [page]
    for heading in headings:
        heading.index += 1
        heading.parent = heading.parent + 1 if heading.parent is not None else 0
        heading.part = None
        heading.role = SectionRole.INCIDENT
        shifted.append(heading)
    return shifted


def _file_title(file: str) -> str:
    """A page's name from its file: `alerts/low-disk-space.html.md` → `low disk space`."""
    name = file.rsplit("/", 1)[-1].split(".", 1)[0]
    return " ".join(name.replace("_", " ").replace("-", " ").split()) or name


def _document_title(headings: list[_Heading]) -> int | None:
    """The index of a document title: a page heading, or a first heading that is the only H1."""
    if headings and headings[0].level == 0:
        return 0
    top = [h for h in headings if h.level == 1]
    if len(top) == 1 and headings[0].level == 1:
        return headings[0].index
    return None


def _path(heading: _Heading, headings: list[_Heading], title: int | None) -> tuple[str, ...]:
    chain = [heading.text]
    parent = heading.parent
    while parent is not None:
        if parent != title:
            chain.append(headings[parent].text)
        parent = headings[parent].parent
    return tuple(reversed(chain))


def _section_end(heading: _Heading, headings: list[_Heading], lines: list[str]) -> int:
    """The 0-based last line of a section, trailing blank lines and rules left out."""
    end = len(lines) - 1
    for later in headings[heading.index + 1 :]:
        if later.level <= heading.level:
            end = later.first_line - 1
            break
    while end >= heading.after_line and lines[end].strip() in ("", "---", "***", "___"):
        end -= 1
    # A heading's own lines at least; a page section (no heading line) its first line.
    return max(end, heading.first_line + max(heading.after_line - heading.first_line, 1) - 1)


def _section_blocks(
    heading: _Heading, headings: list[_Heading], raw_blocks: list[_RawBlock], lines: list[str]
) -> list[Block]:
    end = _section_end(heading, headings, lines)
    blocks: list[Block] = []
    current: tuple[str, str] | None = None  # (canonical part, label as written)
    last_owner: int | None = heading.index
    for raw in raw_blocks:
        if raw.start < heading.after_line or raw.start > end:
            continue
        if raw.owner != last_owner:
            last_owner = raw.owner
            current = None
        direct = _direct_child(raw.owner, heading.index, headings)
        foreign = direct is not None and headings[direct].part is None
        if direct is not None and not foreign:
            part_heading = headings[direct]
            assert part_heading.part is not None
            if current is None:
                current = (part_heading.part, part_heading.text)
        markdown = "\n".join(lines[raw.start : raw.end]).rstrip()
        if raw.kind == "heading":
            assert raw.heading is not None
            if raw.heading == direct and not foreign:
                continue  # a part's own sub-heading: the part's label stands for it
            blocks.append(
                Block(
                    "heading",
                    markdown,
                    raw.start + 1,
                    part=current[0] if current else None,
                    label=current[1] if current else None,
                    foreign=foreign,
                    heading_level=headings[raw.heading].level,
                )
            )
            continue
        if raw.kind == "paragraph" and not foreign:
            for piece_line, piece, label in _split_labels(lines[raw.start : raw.end], raw.start):
                if label is not None:
                    current = label
                if piece:
                    blocks.append(
                        Block(
                            "paragraph",
                            piece,
                            piece_line + 1,
                            part=current[0] if current else None,
                            label=current[1] if current else None,
                        )
                    )
            continue
        blocks.append(
            Block(
                raw.kind,
                markdown,
                raw.start + 1,
                part=current[0] if current else None,
                label=current[1] if current else None,
                foreign=foreign,
                has_code=raw.has_code,
            )
        )
    return blocks


def _direct_child(owner: int | None, section: int, headings: list[_Heading]) -> int | None:
    """The child heading of `section` under which `owner` sits (None when `owner` is `section`)."""
    child: int | None = None
    while owner is not None and owner != section:
        child = owner
        owner = headings[owner].parent
    return child


def _split_labels(lines: list[str], first: int) -> list[tuple[int, str, tuple[str, str] | None]]:
    """Split a paragraph at lines that open a labelled part (`**Symptoms:** ...`).

    Returns (0-based line, Markdown after the label, (canonical, label) or None) pieces; a label
    on a line of its own gives an empty piece that only switches the part.
    """
    pieces: list[tuple[int, str, tuple[str, str] | None]] = []
    buffer: list[str] = []
    start = first
    label: tuple[str, str] | None = None
    for offset, line in enumerate(lines):
        found = _line_label(line)
        if found is None:
            buffer.append(line)
            continue
        if buffer or label is not None:
            pieces.append((start, "\n".join(buffer).strip(), label))
        label = (found[0], found[1])
        buffer = [found[2]] if found[2].strip() else []
        start = first + offset
    pieces.append((start, "\n".join(buffer).strip(), label))
    return pieces


def _line_label(line: str) -> tuple[str, str, str] | None:
    """(canonical part, label as written, the rest of the line) when the line opens a part."""
    for pattern in (_BOLD_LABEL, _BARE_LABEL):
        match = pattern.match(line)
        if match:
            canonical = part_label(match["label"])
            if canonical is not None:
                return canonical, match["label"].strip(), match["rest"]
    return None


_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+")


def _is_ordered(markdown: str) -> bool:
    return bool(re.match(r"^\s*\d{1,9}[.)]", markdown))


def _strip_list_marker(markdown: str) -> str:
    return _LIST_MARKER.sub("", markdown, count=1)
