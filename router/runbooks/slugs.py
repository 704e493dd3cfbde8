"""GitHub-style heading anchors, so that `file.md#anchor` means what it means on GitHub.

GitHub derives an anchor from a heading's rendered text with github-slugger: lowercase it; drop
every character that is not a letter, a combining mark, a decimal or letter number, a connector
(`_`), a hyphen or a space (so punctuation, symbols and emoji go); turn each space into a hyphen.
Spaces are not collapsed (`a  b` gives `a--b`), and a heading that starts with an emoji keeps the
hyphen its space became (`🚨 Alerts` gives `-alerts`). A heading whose slug was already used in the
same file gets `-1`, `-2`, ... (skipping any suffix that another heading already produced).
"""

from __future__ import annotations

import unicodedata

# The Unicode general categories github-slugger keeps; every other category is removed.
_KEPT_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "Pc"})


def slugify(heading: str) -> str:
    """The GitHub anchor of one heading's text, without duplicate numbering."""
    kept = (
        char
        for char in heading.lower()
        if char in " -" or unicodedata.category(char) in _KEPT_CATEGORIES
    )
    return "".join(kept).replace(" ", "-")


class Slugger:
    """Gives each heading of one document its anchor, numbering duplicates as GitHub does."""

    def __init__(self) -> None:
        self._occurrences: dict[str, int] = {}

    def slug(self, heading: str) -> str:
        original = slugify(heading)
        result = original
        while result in self._occurrences:
            self._occurrences[original] += 1
            result = f"{original}-{self._occurrences[original]}"
        self._occurrences[result] = 0
        return result
