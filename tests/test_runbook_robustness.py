"""Bad input never crashes: any bytes read as a runbook give sections whose excerpts fit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.runbooks import render_excerpt
from router.runbooks.sections import parse_runbook
from router.runbooks.source import decode_runbook

MARKDOWN_PIECES = st.sampled_from(
    [
        "# Title\n", "## Section\n", "### 1. Step\n", "#### Symptoms\n", "**Symptoms:** x\n",
        "Immediate Actions:\n", "1. do\n", "   ```bash\n", "```\n", "- item\n", "| a | b |\n",
        "|---|---|\n", "---\n", "> quote\n", "<!-- c -->\n", "\r\n", "\n", "ðŸš¨ â†’ ", "é",
        "```mermaid\n", "Setext\n======\n", "    indented code\n", "**", "`", "[l](u)", "🚨 ",
    ]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(MARKDOWN_PIECES | st.text(max_size=20), max_size=40), st.integers(0, 400))
def test_any_markdown_parses_and_every_excerpt_fits(pieces: list[str], budget: int) -> None:
    text = decode_runbook("".join(pieces).encode("utf-8")).text
    for section in parse_runbook("fuzz.md", text):
        assert section.line_start <= section.line_end
        for style in ("markdown", "text"):
            excerpt = render_excerpt(
                section, budget=budget, link="https://x/fuzz.md#a", style=style
            )
            assert len(excerpt) <= budget


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode(data: bytes) -> None:
    decoded = decode_runbook(data)
    assert "\r" not in decoded.text
    parse_runbook("bytes.md", decoded.text)
