"""Runbooks: the Markdown library, finding the section for an alert, and the excerpt a page carries.

    source.py    bytes → text: encodings, CRLF, front matter, mojibake repair
    slugs.py     GitHub heading anchors
    sections.py  Markdown → sections with heading paths, anchors, line ranges and labelled parts
    roles.py     what a section is for: incident, part, container, navigation or reference
    search.py    BM25F ranking of incident sections against what an alert says, with evidence
    confidence.py  the calibrated probability that the first section is right
    library.py   RunbookLibrary: load a directory, resolve references and links, choose a section
    excerpt.py   the excerpt for a budget (router/outbox/budgets.py has the channels' figures)

All of it is pure: it reads files only in `RunbookLibrary.load` and never touches the network.
"""

from router.runbooks.confidence import ATTACH_CONFIDENCE
from router.runbooks.excerpt import render_excerpt
from router.runbooks.library import Candidate, RunbookLibrary, RunbookMatch
from router.runbooks.sections import CodeBlock, Section, part_label
from router.runbooks.slugs import Slugger, slugify

__all__ = [
    "ATTACH_CONFIDENCE",
    "Candidate",
    "CodeBlock",
    "RunbookLibrary",
    "RunbookMatch",
    "Section",
    "Slugger",
    "part_label",
    "render_excerpt",
    "slugify",
]
