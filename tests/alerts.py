"""Building alerts for tests, in the shape the payload parsers produce."""

from __future__ import annotations

from collections.abc import Mapping

from router.ingest.payloads import label_fingerprint
from router.models import Alert, AlertStatus, Source


def make_alert(
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    *,
    values: Mapping[str, float] | None = None,
    value_string: str | None = None,
    status: AlertStatus = AlertStatus.FIRING,
) -> Alert:
    source = Source.GRAFANA if values or value_string else Source.ALERTMANAGER
    return Alert(
        source=source,
        status=status,
        fingerprint=label_fingerprint(labels),
        labels=labels,
        annotations=annotations or {},
        starts_at=None,
        values=values or {},
        value_string=value_string,
    )
