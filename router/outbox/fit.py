"""Cutting a rendered page body to its budget without breaking it.

A body that is too long is cut at a section boundary: the blank-line separated sections outside
code fences are kept in order while they fit, and one that does not fit is left out whole. Pure.
"""

from __future__ import annotations

import re

from router.outbox.view import shorten

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def sections(text: str) -> list[str]:
    """`text` split at blank lines that are not inside a fenced code block."""
    found: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        marker = _FENCE.match(line)
        if marker:
            if fence is None:
                fence = marker.group(1)
            elif marker.group(1) == fence:
                fence = None
        if fence is None and not line.strip() and not marker:
            if current:
                found.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        found.append("\n".join(current))
    return found


def fit(text: str, budget: int) -> str:
    """`text` within `budget` characters, cut at section boundaries, never inside a code block.

    Sections are kept in order while they fit; one that does not fit is left out whole, and the
    later ones still get their chance (a short acknowledgement link after a long list). When even
    the first section does not fit it is shortened at a word: it is the headline.
    """
    if len(text) <= budget:
        return text
    parts = sections(text)
    if not parts:
        return ""
    head = parts[0] if len(parts[0]) <= budget else shorten(parts[0], budget)
    kept = [head]
    used = len(head)
    for part in parts[1:]:
        if used + 2 + len(part) <= budget:
            kept.append(part)
            used += 2 + len(part)
    return "\n\n".join(kept)
