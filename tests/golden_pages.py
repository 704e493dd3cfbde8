"""The golden pages of tests/fixtures/pages: what each template says for the sample incident.

`python -m tests.golden_pages` rewrites them after a deliberate change to a template; review the
diff before committing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.outbox.budgets import CHAT_BUDGET, SMS_BUDGET
from router.outbox.render import (
    LOG_FORMAT,
    PAGERDUTY_FORMAT,
    PageFormat,
    Renderer,
)

from .pages import page_context, runbook_excerpt

PAGES = Path(__file__).parent / "fixtures" / "pages"
FORMATS = {
    "pagerduty": PAGERDUTY_FORMAT,
    "apprise": PageFormat("apprise", CHAT_BUDGET, 250, "markdown"),
    "sms": PageFormat("sms", SMS_BUDGET, 0, "text"),
    "log": LOG_FORMAT,
}
# `EVENT.VARIANT.txt`: the sample incident changed so.
VARIANTS: dict[str, dict[str, Any]] = {
    "no-runbook": {"runbook": None},
    "by": {"by": "alice via api"},
    "last-step": {"next_escalation": None},
}


def render_golden(path: Path) -> str:
    kind = path.parent.name
    event, _, variant = path.stem.partition(".")
    context = page_context(event, **VARIANTS.get(variant, {}))
    page = Renderer().render(FORMATS[kind], event, context, runbook_excerpt)
    return f"title: {page.title}\n---\n{page.body}\n"


def main() -> None:
    for path in sorted(PAGES.glob("*/*.txt")):
        path.write_text(render_golden(path))


if __name__ == "__main__":
    main()
