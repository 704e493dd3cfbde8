"""The page context: everything a page says about its incident, typed, versioned and stored as JSON.

The incident service builds one when it queues a page (`incidents.py`), the dry run and the
template checks build one for a page that is never sent (`preview.py`, `render.sample_context`),
and every channel reads one (`render.page_view`, `channels/`). It travels through the outbox as
JSON (`to_json`/`from_json`), with a `version`, so that replicas of two releases sharing one
PostgreSQL database read each other's queued pages or know that they cannot:

- version 1 is the layout of this module;
- a context without `version` was queued before contexts had one: the same keys, read as version 1
  (a field it lacks takes its default);
- a newer version than this release knows is refused with `PageContextError`; the page is retried
  later, when a replica of the newer release can send it.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from router.errors import RouterError
from router.models import PageEvent
from router.runbooks.library import POSSIBLE_SECTIONS

PAGE_CONTEXT_VERSION = 1


class PageContextError(RouterError):
    """A stored page context this release cannot read."""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _strings(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        return MappingProxyType({})
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _event(value: Any) -> PageEvent | None:
    return PageEvent(value) if value in set(PageEvent) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class PageAlert:
    """What a page shows of the alert that opened the incident (`Alert.page_json`)."""

    name: str = ""
    source: str = ""
    fingerprint: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    value: str | None = None
    generator_url: str | None = None
    dashboard_url: str | None = None
    panel_url: str | None = None
    silence_url: str | None = None
    starts_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "generator_url": self.generator_url,
            "dashboard_url": self.dashboard_url,
            "panel_url": self.panel_url,
            "silence_url": self.silence_url,
            "starts_at": self.starts_at,
        }

    @classmethod
    def from_json(cls, data: Any) -> PageAlert:
        data = _mapping(data)
        return cls(
            name=_text(data.get("name")),
            source=_text(data.get("source")),
            fingerprint=_text(data.get("fingerprint")),
            labels=_strings(data.get("labels")),
            annotations=_strings(data.get("annotations")),
            value=_optional_text(data.get("value")),
            generator_url=_optional_text(data.get("generator_url")),
            dashboard_url=_optional_text(data.get("dashboard_url")),
            panel_url=_optional_text(data.get("panel_url")),
            silence_url=_optional_text(data.get("silence_url")),
            starts_at=_optional_text(data.get("starts_at")),
        )


@dataclass(frozen=True, slots=True)
class PageRunbook:
    """The runbook section a page carries, and how it was found (`routing.section_json`)."""

    file: str
    anchor: str
    heading: str = ""
    path: tuple[str, ...] = ()
    method: str = "search"
    score: float = 0.0
    link: str = ""
    confidence: float | None = None

    @property
    def reference(self) -> str:
        return f"{self.file}#{self.anchor}" if self.anchor else self.file

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "file": self.file,
            "anchor": self.anchor,
            "heading": self.heading,
            "path": list(self.path),
            "method": self.method,
            "score": self.score,
            "link": self.link,
        }
        if self.confidence is not None:
            found["confidence"] = self.confidence
        return found

    @classmethod
    def from_json(cls, data: Any) -> PageRunbook | None:
        data = _mapping(data)
        if not data.get("file"):
            return None
        return cls(
            file=_text(data.get("file")),
            anchor=_text(data.get("anchor")),
            heading=_text(data.get("heading")),
            path=tuple(_text(p) for p in _sequence(data.get("path"))),
            method=_text(data.get("method")) or "search",
            score=_float(data.get("score")) or 0.0,
            link=_text(data.get("link")),
            confidence=_float(data.get("confidence")),
        )


@dataclass(frozen=True, slots=True)
class PossibleSection:
    """A runbook section a page without one offers, with how sure the search was."""

    heading: str
    link: str
    confidence: float
    file: str = ""
    anchor: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "anchor": self.anchor,
            "heading": self.heading,
            "link": self.link,
            "confidence": self.confidence,
        }

    @classmethod
    def from_json(cls, data: Any) -> PossibleSection | None:
        data = _mapping(data)
        if not data:
            return None
        return cls(
            heading=_text(data.get("heading") or data.get("anchor")),
            link=_text(data.get("link")),
            confidence=_float(data.get("confidence")) or 0.0,
            file=_text(data.get("file")),
            anchor=_text(data.get("anchor")),
        )


@dataclass(frozen=True, slots=True)
class NextEscalation:
    """Whom the next step pages and when (an ISO 8601 time), unless somebody acknowledges."""

    at: str
    tiers: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "tiers": list(self.tiers)}

    @classmethod
    def from_json(cls, data: Any) -> NextEscalation | None:
        data = _mapping(data)
        if not data.get("at"):
            return None
        return cls(_text(data["at"]), tuple(_text(t) for t in _sequence(data.get("tiers"))))


@dataclass(frozen=True, slots=True)
class StormSummary:
    """What a tier's storm page says: how many incidents were paged to the tier since the storm
    began (counting from one `window` before it), by severity and by service, and where to see
    them. `headline` is the one sentence every channel shows."""

    storm_id: int
    tier: str
    incidents: int
    span_seconds: int
    by_severity: tuple[tuple[str, int], ...] = ()
    top_services: tuple[tuple[str, int], ...] = ()
    list_url: str = ""
    escalations: bool = False  # some were escalations to the tier rather than openings
    ended: bool = False

    @property
    def headline(self) -> str:
        """`37 incidents opened in 60 s: 12 P1, 25 P2; top services ledger (20), api (9); list:
        URL`."""
        verb = "opened or escalated" if self.escalations else "opened"
        text = f"{self.incidents} incidents {verb} in {_span(self.span_seconds)}"
        if self.by_severity:
            text += ": " + ", ".join(f"{count} {severity}" for severity, count in self.by_severity)
        if self.top_services:
            services = ", ".join(f"{name} ({count})" for name, count in self.top_services)
            text += f"; top services {services}"
        if self.list_url:
            text += f"; list: {self.list_url}"
        return text

    @property
    def dedup_key(self) -> str:
        """PagerDuty's dedup_key of the storm: updates of one storm de-duplicate into one alert."""
        return f"rr-storm-{self.storm_id}:{self.tier}"[:255]

    def to_json(self) -> dict[str, Any]:
        return {
            "storm_id": self.storm_id,
            "tier": self.tier,
            "incidents": self.incidents,
            "span_seconds": self.span_seconds,
            "by_severity": [list(pair) for pair in self.by_severity],
            "top_services": [list(pair) for pair in self.top_services],
            "list_url": self.list_url,
            "escalations": self.escalations,
            "ended": self.ended,
        }

    @classmethod
    def from_json(cls, data: Any) -> StormSummary | None:
        data = _mapping(data)
        if not data:
            return None
        return cls(
            storm_id=_int(data.get("storm_id")) or 0,
            tier=_text(data.get("tier")),
            incidents=_int(data.get("incidents")) or 0,
            span_seconds=_int(data.get("span_seconds")) or 0,
            by_severity=_counts(data.get("by_severity")),
            top_services=_counts(data.get("top_services")),
            list_url=_text(data.get("list_url")),
            escalations=data.get("escalations") is True,
            ended=data.get("ended") is True,
        )


def _counts(value: Any) -> tuple[tuple[str, int], ...]:
    return tuple(
        (_text(pair[0]), _int(pair[1]) or 0)
        for pair in _sequence(value)
        if isinstance(pair, list | tuple) and len(pair) == 2
    )


def _span(seconds: int) -> str:
    """`60 s` up to two minutes, then `7m`, `1h30m` (schedule.format_duration's units)."""
    if seconds < 120:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if hours and minutes else f"{hours}h" if hours else f"{minutes}m"


@dataclass(frozen=True, slots=True)
class PageContext:
    """What one page says: the incident, the alert, the runbook, and this page's place in it.

    `incident_id` is None for a page that is never sent (a dry run). `event` is `trigger`,
    `escalate`, `acknowledge`, `resolve` or `storm` (with `storm` set); `step` counts from 1 and
    `round` from 0, as the incident API shows them; `by` says who acknowledged or resolved.
    `severity_rank` is the severity's place in the rules (0 the most severe), for channels that map
    severities.
    """

    incident_key: str
    title: str
    severity: str
    opened_at: str
    alert: PageAlert
    incident_id: int | None = None
    dedup_key: str = ""
    severity_rank: int | None = None
    reason: str | None = None
    matched_rules: tuple[str, ...] = ()
    runbook: PageRunbook | None = None
    possible_sections: tuple[PossibleSection, ...] = ()
    incident_url: str | None = None
    tier: str | None = None
    event: PageEvent | None = None
    step: int | None = None
    round: int = 0
    ack_url: str | None = None
    next_escalation: NextEscalation | None = None
    by: str | None = None
    storm: StormSummary | None = None  # a storm page's summary (event `storm`)

    def with_(self, **changes: Any) -> PageContext:
        """A copy with some fields changed (`context.with_(tier="oncall")`)."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The stored form: the keys of version 1, and `version`."""
        return {
            "version": PAGE_CONTEXT_VERSION,
            "incident_id": self.incident_id,
            "incident_key": self.incident_key,
            "dedup_key": self.dedup_key,
            "title": self.title,
            "severity": self.severity,
            "severity_rank": self.severity_rank,
            "opened_at": self.opened_at,
            "reason": self.reason,
            "matched_rules": list(self.matched_rules),
            "alert": self.alert.to_json(),
            "runbook": self.runbook.to_json() if self.runbook else None,
            "runbook_candidates": [p.to_json() for p in self.possible_sections],
            "incident_url": self.incident_url,
            "tier": self.tier,
            "event": self.event,
            "step": self.step,
            "round": self.round,
            "ack_url": self.ack_url,
            "next_escalation": self.next_escalation.to_json() if self.next_escalation else None,
            "by": self.by,
            "storm": self.storm.to_json() if self.storm else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PageContext:
        """Read a stored context of this version or of the unversioned layout before it."""
        version = data.get("version", PAGE_CONTEXT_VERSION)
        if not isinstance(version, int) or version > PAGE_CONTEXT_VERSION:
            raise PageContextError(
                f"page context version {version!r} is newer than this release reads "
                f"({PAGE_CONTEXT_VERSION}); a replica of a newer release will send it"
            )
        alert = PageAlert.from_json(data.get("alert"))
        return cls(
            incident_key=_text(data.get("incident_key")),
            title=_text(data.get("title")) or alert.name or "alert",
            severity=_text(data.get("severity")) or "?",
            opened_at=_text(data.get("opened_at")),
            alert=alert,
            incident_id=_int(data.get("incident_id")),
            dedup_key=_text(data.get("dedup_key")),
            severity_rank=_int(data.get("severity_rank")),
            reason=_optional_text(data.get("reason")),
            matched_rules=tuple(_text(r) for r in _sequence(data.get("matched_rules"))),
            runbook=PageRunbook.from_json(data.get("runbook")),
            possible_sections=tuple(
                p
                for p in map(PossibleSection.from_json, _sequence(data.get("runbook_candidates")))
                if p is not None
            ),
            incident_url=_optional_text(data.get("incident_url")),
            tier=_optional_text(data.get("tier")),
            event=_event(data.get("event")),
            step=_int(data.get("step")),
            round=_int(data.get("round")) or 0,
            ack_url=_optional_text(data.get("ack_url")),
            next_escalation=NextEscalation.from_json(data.get("next_escalation")),
            by=_optional_text(data.get("by")),
            storm=StormSummary.from_json(data.get("storm")),
        )


def incident_context(
    *,
    incident_id: int | None,
    incident_key: str,
    title: str,
    severity: str,
    severity_rank: int | None,
    opened_at: str,
    reason: str | None,
    matched_rules: Sequence[str],
    alert: Mapping[str, Any],
    runbook: Mapping[str, Any] | None,
    candidates: Sequence[Mapping[str, Any]],
    incident_url: str | None,
) -> PageContext:
    """The context every page of an incident shares, from what routing decided (the alert's
    `page_json`, the runbook and candidates' JSON); each page adds its own part with `with_`."""
    section = PageRunbook.from_json(runbook)
    # Without a section, the page lists the best candidates to start from.
    possible = () if section else candidates[:POSSIBLE_SECTIONS]
    return PageContext(
        incident_id=incident_id,
        incident_key=incident_key,
        dedup_key=dedup_key(incident_id, incident_key),
        title=title,
        severity=severity,
        severity_rank=severity_rank,
        opened_at=opened_at,
        reason=reason,
        matched_rules=tuple(matched_rules),
        alert=PageAlert.from_json(alert),
        runbook=section,
        possible_sections=tuple(
            p for p in map(PossibleSection.from_json, possible) if p is not None
        ),
        incident_url=incident_url,
    )


def dedup_key(incident_id: int | None, incident_key: str) -> str:
    """PagerDuty's dedup_key for an incident: stable, unique per incident, at most 255 chars
    (`rr-?:...` for a page that is never sent)."""
    number = "?" if incident_id is None else str(incident_id)
    return f"rr-{number}:{incident_key}"[:255]


def incident_id_from_dedup_key(key: str) -> int | None:
    """The incident a dedup_key names (`rr-12:...` → 12), or None for another sender's key."""
    head, _, _ = key.partition(":")
    number = head.removeprefix("rr-")
    # ASCII digits only (str.isdigit takes "²" and "٣"), and within the store's BIGINT.
    if head.startswith("rr-") and _INCIDENT_NUMBER.match(number):
        return int(number)
    return None


_INCIDENT_NUMBER = re.compile(r"^[0-9]{1,18}$")
