"""Runbook sections as HTML: CommonMark with tables, raw HTML in a runbook shown as text.

A runbook is written by many hands and may quote HTML; the page must never run it, so markdown-it
runs with `html` off (raw HTML is escaped). Its link check already drops `javascript:`,
`vbscript:`, `file:` and `data:` links.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def section_html(markdown: str) -> str:
    """The HTML of a section's Markdown; code blocks are `<pre><code>`."""
    html: str = _MARKDOWN.render(markdown)
    return html
