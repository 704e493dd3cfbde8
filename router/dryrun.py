"""The `route` dry run: what the router would decide for each alert of a webhook payload.

For every alert: the rules that held, the severity and why, the incident key, the policy, the
maintenance window that would hide it (and until when: its pages are planned from then), and the
escalation timeline planned from `at` with business hours taken into account, and the runbook
section the page would carry (how it was found, its confidence, and the three best candidates with
the alert terms each holds), and the page each
channel of the first step would receive, rendered with the templates in force; and how flap
damping (a pending period, flap detection) would change what is paged. Nothing is sent and
nothing is stored.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from router.incidents.damping import Damping
from router.incidents.escalation import PlannedStep
from router.incidents.schedule import format_duration
from router.ingest.payloads import decode_json, parse_alertmanager, parse_grafana
from router.maintenance.windows import Cover, Window, cover
from router.models import Alert, Notification
from router.outbox.context import PageRunbook
from router.outbox.preview import PreviewPage, format_pages, preview_pages
from router.outbox.render import Renderer
from router.routing import Routing, candidate_json, format_evidence, percent, section_json
from router.rules import Classification, RuleSet
from router.rules.heartbeats import Heartbeat
from router.runbooks import ATTACH_CONFIDENCE, RunbookMatch, Section


def parse_payload(body: bytes) -> Notification:
    """An Alertmanager (`"version": "4"`) or else Grafana webhook body; PayloadError if bad."""
    document = decode_json(body)
    if document.get("version") == "4":
        return parse_alertmanager(document)
    return parse_grafana(document)


@dataclass(frozen=True, slots=True)
class AlertRoute:
    """The decision for one alert: its classification and, when firing, its planned pages."""

    alert: Alert
    classification: Classification
    timeline: tuple[PlannedStep, ...]
    runbook: RunbookMatch
    pages: tuple[PreviewPage, ...]
    damping: Damping
    damping_effects: tuple[str, ...]  # what the damping changes in what is paged, for people
    # The heartbeat this alert beats when it fires: then it opens no incident and pages nobody.
    heartbeat: Heartbeat | None = None

    # The maintenance window that hides the alert at `at`: nobody is paged before `until`.
    hidden: Cover | None = None


def damping_effects(damping: Damping, firing: bool) -> tuple[str, ...]:
    """How a pending period and flap detection change what an alert pages, one sentence each."""
    effects = []
    pending = damping.pending_period
    if pending is not None:
        waits = format_duration(pending)
        effects.append(
            f"pending {waits}: step 1 pages only if the alert still fires {waits} after it "
            "opened; resolved before, nobody is paged"
            if firing
            else f"pending {waits}: a firing alert of this kind would wait {waits} before paging"
        )
    flapping = damping.flapping
    if flapping is not None:
        within = format_duration(flapping.within)
        effects.append(
            f"flap detection: resolved and fired again {flapping.resolves} time"
            f"{'s' if flapping.resolves != 1 else ''} within {within}, the incident is held "
            f"as flapping and its re-fires page nobody until it has been quiet for "
            f"{format_duration(flapping.quiet)}; then it resolves, or pages again if still firing"
        )
    return tuple(effects)


def route_notification(
    routing: Routing,
    notification: Notification,
    at: datetime,
    renderer: Renderer,
    windows: Sequence[Window] = (),
) -> list[AlertRoute]:
    """Classify every alert of `notification`, find its runbook section, plan the pages of the
    firing ones from `at` (or from the end of the maintenance window that hides one: the rules'
    and `windows`, those made at run time), and render what the first step's channels would
    receive."""
    routes = []
    in_force = (*routing.rules.maintenance, *windows)
    for alert in notification.alerts:
        routed = routing.route(alert)
        classification = routed.classification
        heartbeat = routing.rules.heartbeat_for(alert) if alert.firing else None
        pages_someone = alert.firing and heartbeat is None
        hidden = None
        if pages_someone:
            most_severe = routing.rank(classification.severity) == 0
            hidden = cover(in_force, alert.labels, most_severe=most_severe, at=at)
        # Hidden by a window, its pages are planned from the window's end.
        starts = hidden.until if hidden is not None else at
        timeline = tuple(routing.rules.plan(classification, starts)) if pages_someone else ()
        pages: list[PreviewPage] = []
        if timeline:
            following = timeline[1] if len(timeline) > 1 else None
            pages = preview_pages(
                routing.rules,
                alert,
                classification,
                timeline[0].tiers,
                timeline[0].at,
                renderer,
                runbook=routed.runbook,
                candidates=routed.candidates,
                excerpt=functools.partial(routing.excerpt, PageRunbook.from_json(routed.runbook)),
                next_escalation=(following.at, following.tiers) if following else None,
            )
        assert routed.match is not None
        damping = routing.rules.damping(classification.rule, classification.severity)
        routes.append(
            AlertRoute(
                alert,
                classification,
                timeline,
                routed.match,
                tuple(pages),
                damping,
                damping_effects(damping, alert.firing),
                heartbeat,
                hidden,
            )
        )
    return routes


def _maintenance_json(hidden: Cover | None) -> dict[str, Any] | None:
    if hidden is None:
        return None
    return {
        "window": hidden.window.name,
        "reason": hidden.window.reason,
        "until": hidden.until.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def _section_json(section: Section | None, score: float, method: str) -> dict[str, Any] | None:
    return None if section is None else section_json(section, method, score)


def _offset_seconds(step: PlannedStep, at: datetime) -> int:
    return round((step.at - at).total_seconds())


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else round(value.total_seconds())


def routes_to_json(routes: list[AlertRoute], ruleset: RuleSet, at: datetime) -> dict[str, Any]:
    """The `route --json` document: `{"alerts": [...]}`."""
    return {
        "alerts": [
            {
                "fingerprint": route.alert.fingerprint,
                "alertname": route.alert.name,
                "status": route.alert.status.value,
                "severity": route.classification.severity,
                "rule": route.classification.rule,
                "rules": list(route.classification.matched_rules),
                "reason": route.classification.reason,
                "incident_key": route.classification.incident_key,
                "group_values": dict(route.classification.group_values),
                "policy": route.classification.policy,
                "heartbeat": route.heartbeat.name if route.heartbeat else None,
                "maintenance": _maintenance_json(route.hidden),
                "timeline": [
                    {
                        "step": step.step,
                        "round": step.round,
                        "tiers": list(step.tiers),
                        "at": step.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                        "at_seconds": _offset_seconds(step, at),
                        "ack_within_seconds": (
                            round(step.ack_within.total_seconds()) if step.ack_within else None
                        ),
                        "waited_for_business_hours": step.waited_for_business_hours,
                    }
                    for step in route.timeline
                ],
                "pending_seconds": _seconds(route.damping.pending_period),
                "flapping": (
                    {
                        "resolves": flapping.resolves,
                        "within_seconds": _seconds(flapping.within),
                        "quiet_seconds": _seconds(flapping.quiet),
                    }
                    if (flapping := route.damping.flapping)
                    else None
                ),
                "damping": list(route.damping_effects),
                "storm": _storm_json(ruleset, route),
                "runbook": _section_json(
                    route.runbook.section, route.runbook.score, route.runbook.method
                ),
                "runbook_confidence": round(route.runbook.confidence, 3),
                "runbook_candidates": [candidate_json(c) for c in route.runbook.candidates],
                "runbook_reference": route.classification.runbook,
                "pages": [page.to_json() for page in route.pages],
            }
            for route in routes
        ],
    }


def format_routes(routes: list[AlertRoute], ruleset: RuleSet, at: datetime) -> str:
    """The human-readable `route` output: one block per alert."""
    if not routes:
        return "the payload holds no alerts\n"
    zone = ruleset.business_hours.tz
    blocks = []
    for number, route in enumerate(routes, start=1):
        alert, decision = route.alert, route.classification
        lines = [
            f"alert {number} of {len(routes)}: {alert.name or '(no alertname)'} "
            f"({alert.status.value}, fingerprint {alert.fingerprint})",
            f"  severity  {decision.severity}",
            f"  reason    {decision.reason}",
            f"  rules     {', '.join(decision.matched_rules) or 'none held'}",
            f"  incident  {decision.incident_key}",
            f"  policy    {decision.policy}",
        ]
        if route.hidden is not None:
            lines.append(
                f"  window    suppressed by maintenance window {route.hidden.window.describe()} "
                f"until {route.hidden.until.astimezone(zone):%a %Y-%m-%d %H:%M %Z}: nobody is "
                "paged before; if it still fires then, the timeline starts then"
            )
        if route.heartbeat is not None:
            beat = route.heartbeat
            lines.append(
                f"  heartbeat a beat of heartbeat {beat.name}: stored, no incident, nobody paged; "
                f"with no beat for {format_duration(beat.interval)}, a {beat.severity} incident "
                f"opens under policy {beat.policy}"
            )
            lines.append("  timeline  none: a heartbeat's beat pages nobody")
        elif alert.firing:
            lines.append(f"  timeline  opened {at.astimezone(zone):%a %Y-%m-%d %H:%M %Z}")
            for step in route.timeline:
                offset = "+" + format_duration(step.at - at)
                again = " again" if step.round > 0 else ""
                ack = (
                    f"ack within {format_duration(step.ack_within)}"
                    if step.ack_within
                    else "no escalation"
                )
                waited = ", waited for business hours" if step.waited_for_business_hours else ""
                lines.append(
                    f"    {offset:<9} {step.at.astimezone(zone):%a %H:%M}  "
                    f"step {step.step}{again:<6} {', '.join(step.tiers):<14} {ack}{waited}"
                )
            lines.append(f"  storm     {_storm_note(ruleset, decision.severity)}")
        else:
            lines.append("  timeline  none: a resolved alert pages nobody")
        lines += [f"  damping   {effect}" for effect in route.damping_effects]
        lines += _runbook_lines(route.runbook)
        if route.pages:
            lines.append("  pages     what the first step's channels would receive:")
            lines += format_pages(route.pages)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _folds_in_storms(ruleset: RuleSet, severity: str) -> bool:
    """Whether pages of `severity` fold into a storm page: the top severity never does."""
    return ruleset.storm.enabled and ruleset.rank(severity) != 0


def _storm_json(ruleset: RuleSet, route: AlertRoute) -> dict[str, Any] | None:
    """The storm settings that apply to a firing alert's pages; None where none do (storm
    pages off, a resolved alert, a heartbeat's beat)."""
    settings = ruleset.storm
    if not settings.enabled or not route.alert.firing or route.heartbeat is not None:
        return None
    return {
        "folds": _folds_in_storms(ruleset, route.classification.severity),
        "threshold": settings.threshold,
        "window_seconds": _seconds(settings.window),
        "update_every_seconds": _seconds(settings.update_every),
    }


def _storm_note(ruleset: RuleSet, severity: str) -> str:
    """What an alert storm would change; a dry run has no database, so it cannot know whether
    a tier is in one now (router/incidents/storms.py)."""
    settings = ruleset.storm
    if not settings.enabled:
        return settings.describe()
    if not _folds_in_storms(ruleset, severity):
        return f"{severity} is paged on its own even in an alert storm"
    return (
        f"beyond {settings.threshold} incidents to a tier in "
        f"{format_duration(settings.window)}, folded into its storm page "
        "(a dry run cannot see a storm in progress)"
    )


def _runbook_lines(match: RunbookMatch) -> list[str]:
    def describe(section: Section) -> str:
        return f"{section.reference} ({' › '.join(section.path) or section.heading})"

    if match.section is None:
        lines = [
            f"  runbook   none attached (best confidence {percent(match.confidence)}, below "
            f"{ATTACH_CONFIDENCE:.0%}); the page lists the possible sections"
        ]
    elif match.method == "search":
        lines = [
            f"  runbook   {describe(match.section)}, by search, "
            f"confidence {percent(match.confidence)} (score {match.score:.2f})"
        ]
    else:
        lines = [f"  runbook   {describe(match.section)}, by {match.method}"]
    for rank, candidate in enumerate(match.candidates, start=1):
        confidence = percent(candidate.confidence)
        lines.append(
            f"    {rank}. {describe(candidate.section)}: confidence {confidence}, "
            f"score {candidate.score:.2f}"
        )
        if candidate.evidence:
            lines.append(f"       matched {format_evidence(candidate.evidence)}")
    return lines
