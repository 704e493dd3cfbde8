"""Page contexts and runbook excerpts for the channel and template tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from router.ingest.payloads import parse_alertmanager
from router.models import Notification
from router.outbox.channels import Delivery
from router.outbox.context import PageContext, dedup_key
from router.outbox.template_checks import sample_context
from router.rules import ChannelTarget

STARTED = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
ACK_URL = (
    "https://router.example.com/ack/12.1715000000.AAAAAAAAAAAAAAAAAAAAAA."
    "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)
RUNBOOK_LINK = "https://git.example.com/ops/runbooks/blob/main/zkp-ledger.md#slow-proof-generation"
# A runbook section as the runbook library cuts it: heading path, Symptoms, Immediate Actions with
# a code block, more text, and the link last.
RUNBOOK_BLOCKS = (
    "**Incidents › Slow Proof Generation**",
    "**Symptoms**\n\n- proof generation p99 above 10s\n- the prover queue grows",
    "**Immediate Actions**\n\n1. Check the prover pods:\n\n   ```sh\n"
    "   kubectl -n zkp get pods -l app=prover\n\n   kubectl -n zkp top pods -l app=prover\n   ```",
    "2. Scale the prover out if the queue keeps growing.",
    "**Investigation Steps**\n\n"
    + " ".join(["Look at the proving key cache hit rate and the GPU memory of the nodes."] * 6),
)


def runbook_excerpt(budget: int, style: str) -> str:
    """Like the runbook library: whole blocks while they fit, the link always last, ≤ budget."""
    footer = f"Runbook: {RUNBOOK_LINK}"
    if len(footer) > budget:
        return ""
    chunks: list[str] = []
    used = len(footer)
    for block in RUNBOOK_BLOCKS:
        text = block if style == "markdown" else block.replace("**", "")
        if used + len(text) + 2 > budget:
            break
        chunks.append(text)
        used += len(text) + 2
    return "\n\n".join([*chunks, footer])


def page_context(event: str, **overrides: Any) -> PageContext:
    """The sample page of incident 12; `overrides` are keys of the stored (JSON) form."""
    context = sample_context(event, ack_url=ACK_URL).to_json()
    context["runbook"]["link"] = RUNBOOK_LINK
    context["incident_id"] = 12
    context["dedup_key"] = dedup_key(12, context["incident_key"])
    context["incident_url"] = "https://router.example.com/api/v1/incidents/12"
    context.update(overrides)
    return PageContext.from_json(context)


def delivery(
    event: str, target: ChannelTarget, *, excerpt: bool = True, **overrides: Any
) -> Delivery:
    return Delivery(
        page_id=1,
        event=event,
        tier="oncall",
        target=target,
        context=page_context(event, **overrides),
        excerpt=runbook_excerpt if excerpt else (lambda _budget, _style: ""),
    )


def alertmanager(status: str, starts_at: datetime = STARTED) -> Notification:
    alert: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": "DiskFull", "service": "api", "instance": "db-1:9100"},
        "annotations": {"summary": "disk /var is 97% full"},
        "startsAt": starts_at.isoformat(),
        "endsAt": (starts_at + timedelta(hours=1)).isoformat()
        if status == "resolved"
        else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=disk",
        "fingerprint": "d15cf011",
    }
    return parse_alertmanager(
        {
            "version": "4",
            "groupKey": '{}:{alertname="DiskFull"}',
            "status": status,
            "receiver": "router",
            "groupLabels": {"alertname": "DiskFull"},
            "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager.example",
            "alerts": [alert],
        }
    )
