"""Reading a runbook file into clean text: encoding, line ends, front matter and mojibake.

Runbooks are edited by many hands and tools, so this module accepts what those tools produce and
keeps line numbers stable, so that every later `file:line` points at the line a person sees:

- UTF-8 with or without a byte-order mark; bytes that are not UTF-8 are read as cp1252 (the
  Windows default that such files usually come from), and the library notes it;
- CRLF and lone CR line ends become LF;
- a YAML (`---`) or TOML (`+++`) front-matter block is blanked, not removed, so that Markdown
  does not take its closing `---` for a setext heading underline; its `title` is kept, since docs
  sites show it as the page's heading;
- text that was UTF-8 decoded once as Latin-1 / cp1252 (`â†’` for `→`, `ðŸš¨` for `🚨`) is repaired
  line by line with ftfy's `fix_encoding`, which only changes a sequence when the repair is
  unambiguous; it leaves correctly encoded text (`naïve café`) alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ftfy

# A common damaged form of `→` in the wild: the cp1252 right quote of `â†’` retyped as an ASCII
# apostrophe. No other character of U+2190..U+21FF decodes to `â†` followed by `'` (the left quote,
# 0x91, is `←` and is the other only candidate, written `â†‘`), so this one is unambiguous.
_RETYPED_MOJIBAKE = {"â†'": "→"}
_FRONT_MATTER_FENCES = {"---": ("---", "..."), "+++": ("+++",)}


@dataclass(frozen=True, slots=True)
class RunbookText:
    """A decoded runbook: its text (LF line ends) and what was done to read it."""

    text: str
    read_as_cp1252: bool = False
    first_bad_line: int | None = None
    repaired_lines: tuple[int, ...] = ()
    front_matter_lines: int = 0
    # The `title` of the front matter, which docs sites render as the page's heading.
    title: str | None = None


def decode_runbook(data: bytes) -> RunbookText:
    """Decode a runbook's bytes into text whose lines match the file's lines one for one."""
    read_as_cp1252 = False
    first_bad_line: int | None = None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        read_as_cp1252 = True
        first_bad_line = data.count(b"\n", 0, exc.start) + 1
        # cp1252 leaves five bytes undefined; "replace" keeps them visible instead of failing.
        text = data.decode("cp1252", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    title = _front_matter_title(lines)
    front_matter = _blank_front_matter(lines)
    repaired: list[int] = []
    for index, line in enumerate(lines):
        if line.isascii():
            continue
        fixed = ftfy.fix_encoding(line)
        for damaged, intended in _RETYPED_MOJIBAKE.items():
            fixed = fixed.replace(damaged, intended)
        if fixed != line and "\n" not in fixed:  # a repair must never move later lines
            lines[index] = fixed
            repaired.append(index + 1)
    return RunbookText(
        text="\n".join(lines),
        read_as_cp1252=read_as_cp1252,
        first_bad_line=first_bad_line,
        repaired_lines=tuple(repaired),
        front_matter_lines=front_matter,
        title=title if front_matter else None,
    )


_TITLE = re.compile(r"""^title\s*[:=]\s*(?P<quote>["']?)(?P<title>.*?)(?P=quote)\s*$""")


def _front_matter_title(lines: list[str]) -> str | None:
    """The `title:` (YAML) or `title =` (TOML) line of a front-matter block, unquoted."""
    if not lines or lines[0].rstrip() not in _FRONT_MATTER_FENCES:
        return None
    closers = _FRONT_MATTER_FENCES[lines[0].rstrip()]
    for line in lines[1:]:
        if line.rstrip() in closers:
            return None
        match = _TITLE.match(line.strip())
        if match and match["title"].strip():
            return match["title"].strip()
    return None


def _blank_front_matter(lines: list[str]) -> int:
    """Blank a front-matter block at the top of the file in place; return how many lines it had."""
    if not lines:
        return 0
    closers = _FRONT_MATTER_FENCES.get(lines[0].rstrip())
    if closers is None:
        return 0
    for index in range(1, len(lines)):
        if lines[index].rstrip() in closers:
            for blank in range(index + 1):
                lines[blank] = ""
            return index + 1
        if index == 1 and not re.match(r"^[\w\"'-]+\s*[:=]|^\s*$", lines[index]):
            return 0  # `---` followed by prose is a thematic break, not front matter
    return 0
