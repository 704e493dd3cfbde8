"""What a page says, per channel: Jinja2 templates, one per channel kind and event, cut to budgets.

Templates live in `<kind>/<event>.j2` (kinds `pagerduty`, `apprise`, `sms`, `log`; events `trigger`,
`escalate`, `acknowledge`, `resolve`, and `storm`, a tier's storm page). A file of the same relative
path in `ROUTER_RULES_DIR/templates/` overrides the shipped one. A template's output is the page
body; the page title is what the template sets with `{% set title %}...{% endset %}` (it is read
through Jinja's template module). PagerDuty's acknowledge and resolve events carry no text (Events
API v2: only `dedup_key`), so the `pagerduty` kind has no templates for them.

Each kind of target has a budget (`PageFormat`). The body is rendered once without the runbook
excerpt to learn how much room the rest takes; the excerpt is then asked for the room left (the
excerpt never cuts a code block). A body that is still too long is cut at a section boundary
(`fit.py`). What templates see is `view.py`'s.

Rendering is pure: no network, no clock. A template that fails is a permanent `DeliveryError` naming
the template; `template_checks.check_templates` finds such problems before a page needs them.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from router.errors import DeliveryError, FailureReason
from router.models import PageEvent
from router.outbox.budgets import (
    PAGERDUTY_SUMMARY_BUDGET,
)
from router.outbox.context import PageContext
from router.outbox.fit import fit
from router.outbox.view import label_pairs, page_view, shorten, when
from router.types import Excerpt, Style

EVENTS = tuple(PageEvent)
KINDS = ("pagerduty", "apprise", "sms", "log")
# PagerDuty's acknowledge and resolve events have no payload, so nothing to render for them.
TEMPLATE_EVENTS: Mapping[str, tuple[str, ...]] = {
    "pagerduty": (PageEvent.TRIGGER, PageEvent.ESCALATE, PageEvent.STORM),
    "apprise": EVENTS,
    "sms": EVENTS,
    "log": EVENTS,
}
# Kinds whose pages need a title: PagerDuty refuses an event without a summary, and a chat
# message or an email without one reads as noise.
TITLED_KINDS = frozenset({"pagerduty", "apprise", "log"})

# The shipped templates are package data, and only there: a rules directory holds the user's
# overrides alone, so that a fix to a shipped template reaches every deployment that did not
# override it (`runbook-router templates export DIR` copies them out to start an override).
PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "templates"
SHIPPED_TEMPLATES = PACKAGED_TEMPLATES


# An excerpt squeezed into less room than this would be the link alone; the link is in the page.
MIN_EXCERPT = 80


@dataclass(frozen=True, slots=True)
class PageFormat:
    """How one kind of target reads a page.

    `template` is the template folder; `body_budget` and `title_budget` are characters;
    `excerpt_budget` caps the runbook excerpt inside the body (None: whatever room is left).
    """

    template: str
    body_budget: int
    title_budget: int
    style: Style
    excerpt_budget: int | None = None


@dataclass(frozen=True, slots=True)
class RenderedPage:
    title: str
    body: str


PAGERDUTY_FORMAT = PageFormat("pagerduty", 0, PAGERDUTY_SUMMARY_BUDGET, "text")
LOG_FORMAT = PageFormat("log", 1_500, 300, "text", excerpt_budget=600)


# --- the renderer ----------------------------------------------------------------------------


class Renderer:
    """Renders pages from the user's templates over the shipped ones."""

    def __init__(self, templates_dir: Path | None = None, defaults: Path = SHIPPED_TEMPLATES):
        self.templates_dir = templates_dir
        self.defaults = defaults
        # Pages are Markdown or plain text, never HTML: escaping would garble them. Apprise turns
        # Markdown into HTML for HTML targets (email) itself, escaping as it goes.
        self._env = jinja2.Environment(
            loader=self._loader(),
            autoescape=False,  # noqa: S701
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters["shorten"] = shorten
        self._env.filters["when"] = when
        self._env.filters["label_pairs"] = label_pairs

    def _loader(self) -> jinja2.FileSystemLoader:
        search = [str(self.templates_dir)] if self.templates_dir is not None else []
        return jinja2.FileSystemLoader([*search, str(self.defaults)])

    def reload(self, templates_dir: Path | None) -> None:
        """Read the templates from `templates_dir` (over the shipped ones) from the next page on:
        edited files, new override files and removed ones alike."""
        self.templates_dir = templates_dir
        self._env.loader = self._loader()
        if self._env.cache is not None:
            self._env.cache.clear()

    def render(
        self,
        fmt: PageFormat,
        event: str,
        context: PageContext,
        excerpt: Excerpt | None = None,
        *,
        timezone: str = "UTC",
    ) -> RenderedPage:
        """The page for `event` in `fmt`, within its budgets, with its times in `timezone` (the
        rules'); DeliveryError if a template fails."""
        name = f"{fmt.template}/{event}.j2"
        view = page_view(event, context, fmt.body_budget, timezone)
        page = self._render(name, view)
        if excerpt is not None and fmt.body_budget > 0 and view["runbook"] is not None:
            page = self._with_excerpt(name, view, page, fmt, excerpt)
        body = fit(page.body, fmt.body_budget) if fmt.body_budget > 0 else page.body
        return RenderedPage(shorten(page.title, fmt.title_budget), body)

    def _with_excerpt(
        self,
        name: str,
        view: dict[str, Any],
        bare: RenderedPage,
        fmt: PageFormat,
        excerpt: Excerpt,
    ) -> RenderedPage:
        room = fmt.body_budget - len(bare.body) - 2
        if fmt.excerpt_budget is not None:
            room = min(room, fmt.excerpt_budget)
        page = bare
        # The words around the excerpt are only known once it is in; a second try takes them off.
        for _ in range(2):
            if room < MIN_EXCERPT:
                return bare
            text = excerpt(room, fmt.style)
            if not text:
                return bare
            page = self._render(name, {**view, "runbook_excerpt": text})
            over = len(page.body) - fmt.body_budget
            if over <= 0:
                return page
            room = len(text) - over
        return page

    def _render(self, name: str, view: Mapping[str, Any]) -> RenderedPage:
        try:
            template = self._env.get_template(name)
            try:
                module = template.make_module(dict(view))
            except Exception:
                # Re-raised with the template's own file and line in the traceback.
                self._env.handle_exception()
            body = str(module).strip()
            title = getattr(module, "title", "")
            return RenderedPage(" ".join(str(title).split()), body)
        except jinja2.TemplateNotFound as exc:
            raise DeliveryError(
                f"template {exc.name} not found (looked in {self._where()})",
                retryable=False,
                reason=FailureReason.TEMPLATE_ERROR,
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise DeliveryError(
                f"template {exc.filename or name}:{exc.lineno}: {exc.message}",
                retryable=False,
                reason=FailureReason.TEMPLATE_ERROR,
            ) from exc
        except Exception as exc:  # any failure inside a user's template is the template's
            raise DeliveryError(
                f"template {_failed_at(exc, name)}: {exc}",
                retryable=False,
                reason=FailureReason.TEMPLATE_ERROR,
            ) from exc

    def source_of(self, name: str) -> str:
        """The file the template `name` is loaded from (the user's, else the shipped one)."""
        return str(self._env.get_template(name).filename or name)

    def _where(self) -> str:
        places = [self.templates_dir, self.defaults] if self.templates_dir else [self.defaults]
        return ", ".join(str(p) for p in places)


def _failed_at(exc: BaseException, name: str) -> str:
    """`file:line` of the template line that failed (Jinja puts template lines in tracebacks)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{frame.filename}:{frame.lineno}"
    return name
