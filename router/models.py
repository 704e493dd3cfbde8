"""The data every layer shares: alerts as received, normalised to one shape for every source.

These are plain frozen dataclasses: no I/O, no framework, safe to pass between threads and tasks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


class Source(enum.StrEnum):
    """Where a webhook came from."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class PageEvent(enum.StrEnum):
    """What a page announces: the first page, a later step (or repeat, re-trigger or severity
    raise), or the news that the incident was acknowledged or resolved; or a tier's storm page,
    which stands for the pages folded into it (router/incidents/storms.py)."""

    TRIGGER = "trigger"
    ESCALATE = "escalate"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    STORM = "storm"

    @property
    def pages(self) -> bool:
        """True for the events that page someone (not the notices)."""
        return self in (PageEvent.TRIGGER, PageEvent.ESCALATE, PageEvent.STORM)


class PageState(enum.StrEnum):
    """Where a page stands in the outbox."""

    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a dispatcher until its lease runs out
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: a permanent error, or its deadline passed
    FOLDED = "folded"  # not sent: its tier was in a storm, the storm page tells of it


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


# The values of every alert that has none (all but Grafana's): one read-only mapping, shared.
_NO_VALUES: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert from any source, in one shape.

    `fingerprint` identifies the alert's label set: Alertmanager's and Grafana's own, or for legacy
    Grafana bodies computed the way Alertmanager does it (see `payloads.label_fingerprint`).
    `starts_at` is None only for legacy Grafana, which sends no times.
    """

    source: Source
    status: AlertStatus
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime | None
    ends_at: datetime | None = None
    generator_url: str | None = None
    dashboard_url: str | None = None
    panel_url: str | None = None
    silence_url: str | None = None
    image_url: str | None = None
    values: Mapping[str, float] = field(default_factory=lambda: _NO_VALUES)
    value_string: str | None = None
    group_key: str | None = None

    def __post_init__(self) -> None:
        # Freeze the mappings so that an Alert can be shared without defensive copies.
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))
        if self.values is not _NO_VALUES:
            object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def firing(self) -> bool:
        return self.status is AlertStatus.FIRING

    @property
    def description(self) -> str:
        """What a timeline calls the alert:
        `alertmanager alert LedgerDown (ledger, ledger-0:9100, 9f3c2a1b7e5d4c60)`."""
        labels = self.labels
        where = [labels[name] for name in ("service", "job", "instance") if labels.get(name)]
        where = list(dict.fromkeys(where))  # job and service are often the same
        return (
            f"{self.source.value} alert {self.name or 'without alertname'} "
            f"({', '.join([*where, self.fingerprint]) if where else self.fingerprint})"
        )

    @property
    def title(self) -> str:
        """What a page calls the alert: its name and, when it has one, its summary."""
        summary = self.annotations.get("summary") or self.annotations.get("title") or ""
        name = self.name or "alert"
        return f"{name}: {summary}"[:500] if summary else name

    def page_json(self) -> dict[str, object]:
        """What a page shows of the alert (the `alert` of a page's context)."""
        return {
            "name": self.name,
            "source": self.source.value,
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value_string,
            "generator_url": self.generator_url,
            "dashboard_url": self.dashboard_url,
            "panel_url": self.panel_url,
            "silence_url": self.silence_url,
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
        }

    def to_json(self) -> dict[str, object]:
        """The alert as a JSON-ready dict (for storage and the API)."""
        return {
            "source": self.source.value,
            "status": self.status.value,
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            **self.details_json(),
        }

    def details_json(self) -> dict[str, object]:
        """What the alert carries beyond its identity, labels, annotations and times: links,
        values and group key (the store keeps them as the alert's details)."""
        return {
            "generator_url": self.generator_url,
            "dashboard_url": self.dashboard_url,
            "panel_url": self.panel_url,
            "silence_url": self.silence_url,
            "image_url": self.image_url,
            "values": dict(self.values),
            "value_string": self.value_string,
            "group_key": self.group_key,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook delivery: the alerts it carried and the envelope around them."""

    source: Source
    alerts: tuple[Alert, ...]
    receiver: str | None = None
    group_key: str | None = None
    external_url: str | None = None
    truncated_alerts: int = 0
