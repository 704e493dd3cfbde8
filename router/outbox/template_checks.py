"""The shipped page templates checked, sampled and exported.

`check_templates` renders every template in force with sample incidents (`sample_context`) and
reports each problem as `file:line: message`; `export_templates` copies the shipped templates out
(`runbook-router templates export DIR`). Pure but for reading and writing template files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.errors import ConfigError, DeliveryError
from router.outbox.budgets import EMAIL_BUDGET, PAGERDUTY_SUMMARY_BUDGET
from router.outbox.context import PageContext
from router.outbox.render import (
    EVENTS,
    KINDS,
    SHIPPED_TEMPLATES,
    TEMPLATE_EVENTS,
    TITLED_KINDS,
    PageFormat,
    Renderer,
)


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
    if event == "storm":
        context["storm"] = {
            "storm_id": 0,
            "tier": tier,
            "incidents": 37,
            "span_seconds": 60,
            "by_severity": [["P1", 12], ["P2", 25]],
            "top_services": [["ledger", 20], ["api", 9]],
            "list_url": "http://router.example/incidents?state=open",
        }
    return PageContext.from_json(context)
