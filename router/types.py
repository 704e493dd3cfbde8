"""Type aliases shared across layers, each written once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

# The time now, always timezone-aware; the runtime passes a clock so that tests can move it.
Clock = Callable[[], datetime]
# Text styles of a page: Markdown for chat and email, plain text for SMS, logs and PagerDuty.
Style = Literal["markdown", "text"]
# (budget in characters, style) -> the runbook excerpt with its link, or "" when the incident has
# no runbook section.
Excerpt = Callable[[int, str], str]
