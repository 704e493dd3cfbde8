"""What a page says, per channel: Jinja2 templates, one per channel kind and event, cut to budgets.

Templates live in `<kind>/<event>.j2` (kinds `pagerduty`, `apprise`, `sms`, `log`; events `trigger`,
`escalate`, `acknowledge`, `resolve`). A file of the same relative path in
`ROUTER_RULES_DIR/templates/` overrides the shipped one. A template's output is the page body; the
page title is what the template sets with `{% set title %}...{% endset %}` (it is read through
Jinja's template module). PagerDuty's acknowledge and resolve events carry no text (Events API v2:
only `dedup_key`), so the `pagerduty` kind has no templates for them.

Each kind of target has a budget (`PageFormat`). The body is rendered once without the runbook
excerpt to learn how much room the rest takes; the excerpt is then asked for the room left (the
excerpt never cuts a code block). A body that is still too long is cut at a section boundary: the
blank-line separated sections outside code fences are kept in order while they fit, and one that
does not fit is left out whole.

Rendering is pure: no network, no clock. A template that fails is a permanent `DeliveryError` naming
the template; `check_templates` finds such problems before a page needs them.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from router.errors import ConfigError, DeliveryError, FailureReason
from router.outbox.budgets import (
    EMAIL_BUDGET,
    PAGERDUTY_SUMMARY_BUDGET,
)
from router.outbox.context import PageContext
from router.runbooks.excerpt import cut_at_word
from router.types import Excerpt, Style

EVENTS = ("trigger", "escalate", "acknowledge", "resolve")
KINDS = ("pagerduty", "apprise", "sms", "log")
# PagerDuty's acknowledge and resolve events have no payload, so nothing to render for them.
TEMPLATE_EVENTS: Mapping[str, tuple[str, ...]] = {
    "pagerduty": ("trigger", "escalate"),
    "apprise": EVENTS,
    "sms": EVENTS,
    "log": EVENTS,
}
# Kinds whose pages need a title: PagerDuty refuses an event without a summary, and a chat
# message or an email without one reads as noise.
TITLED_KINDS = frozenset({"pagerduty", "apprise", "log"})
STATUS = {
    "trigger": "triggered",
    "escalate": "escalated",
    "acknowledge": "acknowledged",
    "resolve": "resolved",
}

# The shipped templates are package data, and only there: a rules directory holds the user's
# overrides alone, so that a fix to a shipped template reaches every deployment that did not
# override it (`runbook-router templates export DIR` copies them out to start an override).
PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "templates"
SHIPPED_TEMPLATES = PACKAGED_TEMPLATES


def export_templates(directory: Path, *, force: bool = False) -> list[Path]:
    """Copy the shipped templates into `directory` (created if missing); the files written.

    An existing file is left alone unless `force`: ConfigError names the ones in the way.
    """
    shipped = sorted(SHIPPED_TEMPLATES.rglob("*.j2"))
    targets = [directory / path.relative_to(SHIPPED_TEMPLATES) for path in shipped]
    existing = [target for target in targets if target.exists()]
    if existing and not force:
        raise ConfigError(
            f"{len(existing)} template(s) already in {directory}; --force overwrites them",
            tuple(f"{target}: exists" for target in existing),
        )
    for source, target in zip(shipped, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    return targets


# An excerpt squeezed into less room than this would be the link alone; the link is in the page.
MIN_EXCERPT = 80
# Labels that say nothing an on-call reader does not see elsewhere in the page.
_DULL_LABELS = frozenset(
    {"alertname", "severity", "service", "__name__", "alertstate", "grafana_folder", "prometheus"}
)
# Labels that say where the problem is, most telling first.
_TELLING_LABELS = (
    "instance",
    "host",
    "pod",
    "node",
    "namespace",
    "cluster",
    "environment",
    "env",
    "region",
    "job",
    "container",
    "deployment",
    "component",
)
TELLING_LABEL_COUNT = 4


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


# --- the view a template sees ----------------------------------------------------------------


# How a page that is never sent (a dry run) names its incident.
DRY_RUN_INCIDENT = "(dry run)"


def page_view(event: str, context: PageContext, budget: int) -> dict[str, Any]:
    """The variables of a page template, from the page's context."""
    alert = context.alert
    labels = dict(alert.labels)
    annotations = dict(alert.annotations)
    runbook = context.runbook
    following = context.next_escalation
    return {
        "page": {
            "event": event,
            "status": STATUS.get(event, event),
            "tier": context.tier,
            "step": context.step,
            "round": context.round,
        },
        "incident": {
            "id": DRY_RUN_INCIDENT if context.incident_id is None else context.incident_id,
            "key": context.incident_key,
            "title": context.title or alert.name or "alert",
            "severity": context.severity or "?",
            "opened_at": context.opened_at,
            "url": context.incident_url,
            "reason": context.reason,
            "matched_rules": list(context.matched_rules),
        },
        "alert": {
            "name": alert.name,
            "source": alert.source,
            "labels": labels,
            "annotations": annotations,
            "summary": annotations.get("summary") or annotations.get("title") or "",
            "description": annotations.get("description") or annotations.get("message") or "",
            "value": alert.value or "",
            "service": labels.get("service") or "",
            "telling_labels": telling_labels(labels),
            "starts_at": alert.starts_at or context.opened_at,
            "generator_url": alert.generator_url or "",
            "dashboard_url": alert.dashboard_url or "",
            "panel_url": alert.panel_url or "",
        },
        "runbook": runbook.to_json() if runbook else None,
        "runbook_candidates": [
            {"heading": p.heading, "link": p.link, "confidence": p.confidence}
            for p in context.possible_sections
        ],
        "runbook_excerpt": "",
        "ack_url": context.ack_url,
        "next_escalation": (
            {"at": following.at, "tiers": list(following.tiers)} if following else None
        ),
        "by": context.by,
        "budget": budget,
    }


def telling_labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """The labels that best say where the problem is: known place labels first, then the rest."""
    chosen = [(name, labels[name]) for name in _TELLING_LABELS if labels.get(name)]
    rest = sorted(
        (name, value)
        for name, value in labels.items()
        if value and name not in _DULL_LABELS and name not in _TELLING_LABELS
    )
    return (chosen + rest)[:TELLING_LABEL_COUNT]


# --- filters ---------------------------------------------------------------------------------


def shorten(text: Any, limit: int, ellipsis: str = "…") -> str:
    """`text` on one line, cut at a word to at most `limit` characters, ending in `ellipsis`."""
    return cut_at_word(" ".join(str(text).split()), limit, ellipsis)


def when(value: Any) -> str:
    """An ISO 8601 time as `2024-05-06 10:00 UTC`; None as `unknown`; anything else unchanged."""
    if value is None or value == "":
        return "unknown"
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def label_pairs(pairs: Iterable[tuple[str, str]], separator: str = ", ") -> str:
    return separator.join(f"{name}={value}" for name, value in pairs)


# --- budgets ---------------------------------------------------------------------------------

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
    ) -> RenderedPage:
        """The page for `event` in `fmt`, within its budgets; DeliveryError if a template fails."""
        name = f"{fmt.template}/{event}.j2"
        view = page_view(event, context, fmt.body_budget)
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


def check_templates(templates_dir: Path | None, defaults: Path = SHIPPED_TEMPLATES) -> list[str]:
    """Every problem of the templates in force, as `file:line: message` (or `file: message`).

    Each template is rendered with sample pages with and without a runbook section, so that a
    misspelt variable is found here rather than at 3 am.
    """
    renderer = Renderer(templates_dir, defaults)
    problems: list[str] = []
    for kind, events in TEMPLATE_EVENTS.items():
        fmt = PageFormat(kind, EMAIL_BUDGET, PAGERDUTY_SUMMARY_BUDGET, "markdown")
        for event in events:
            for context in (sample_context(event), sample_context(event, runbook=False)):
                try:
                    page = renderer.render(fmt, event, context, _sample_excerpt)
                except DeliveryError as exc:
                    problems.append(str(exc).removeprefix("template "))
                    break
                if kind in TITLED_KINDS and not page.title:
                    problems.append(
                        f"{renderer.source_of(f'{kind}/{event}.j2')}: sets no title "
                        "({% set title %}...{% endset %})"
                    )
                    break
    if templates_dir is not None and templates_dir.is_dir():
        known = {
            f"{kind}/{event}.j2" for kind, events in TEMPLATE_EVENTS.items() for event in events
        }
        for path in sorted(templates_dir.rglob("*.j2")):
            relative = path.relative_to(templates_dir).as_posix()
            if relative not in known and not path.name.startswith("_"):
                problems.append(
                    f"{path}: not a page template (expected KIND/EVENT.j2 with KIND one of "
                    f"{', '.join(KINDS)} and EVENT one of {', '.join(EVENTS)}; "
                    "files starting with _ are for macros)"
                )
    return problems


def _sample_excerpt(budget: int, style: str) -> str:
    text = "**Symptoms**\n\n- the sample symptom\n\nRunbook: https://runbooks.example/sample.md#a"
    return text if len(text) <= budget else ""


def sample_context(
    event: str,
    *,
    severity: str = "P1",
    title: str = "ProofGenerationSlow: proof generation takes 14s",
    tier: str = "oncall",
    runbook: bool = True,
    ack_url: str = "<ack link>",
) -> PageContext:
    """A page context such as the incident service queues, for template checks and tests."""
    started = "2024-05-06T10:00:00+00:00"
    context: dict[str, Any] = {
        "incident_id": 0,
        "incident_key": "slow-proof-generation|alertname=ProofGenerationSlow|service=prover",
        "dedup_key": "rr-0:slow-proof-generation|alertname=ProofGenerationSlow|service=prover",
        "title": title,
        "severity": severity,
        "opened_at": started,
        "reason": f"{severity} by rule slow-proof-generation (value 14s > 10s)",
        "matched_rules": ["slow-proof-generation"],
        "alert": {
            "name": title.split(":", 1)[0],
            "source": "alertmanager",
            "labels": {"alertname": title.split(":", 1)[0], "service": "prover", "instance": "p1"},
            "annotations": {"summary": title.split(": ", 1)[-1]},
            "value": "14s",
            "generator_url": "http://prometheus.example/graph",
            "dashboard_url": None,
            "panel_url": None,
            "starts_at": started,
        },
        "runbook": (
            {
                "file": "zkp-ledger.md",
                "anchor": "slow-proof-generation",
                "heading": "Slow Proof Generation",
                "method": "rule",
                "link": "https://runbooks.example/zkp-ledger.md#slow-proof-generation",
            }
            if runbook
            else None
        ),
        # Without a section, the best searched sections as possible ones (a page shows them).
        "runbook_candidates": (
            []
            if runbook
            else [
                {
                    "heading": "Slow Proof Generation",
                    "link": "https://runbooks.example/zkp-ledger.md#slow-proof-generation",
                    "confidence": 0.62,
                },
                {
                    "heading": "Invalid Proofs",
                    "link": "https://runbooks.example/zkp-ledger.md#invalid-proofs",
                    "confidence": 0.21,
                },
            ]
        ),
        "incident_url": "http://router.example/api/v1/incidents/0",
        "tier": tier,
        "step": 1,
        "round": 0,
    }
    if event in ("trigger", "escalate"):
        context["ack_url"] = ack_url
        context["next_escalation"] = {"at": "2024-05-06T10:15:00+00:00", "tiers": ["team-lead"]}
    if event == "escalate":
        context["step"] = 2
    return PageContext.from_json(context)
