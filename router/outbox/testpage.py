"""A test page: what `runbook-router test-page TIER` sends through every channel of a tier.

The page is the first page of an incident that does not exist, built as the incident service
builds one (`incident_context`) and marked as a test in its title, summary and acknowledgement
line. It goes through the tier's own channels and templates, one channel after another, and each
channel's outcome is returned: nothing is stored, no incident is opened, nothing is retried. Its
PagerDuty `dedup_key` (`rr-test:<tier>:<time>`) is its own, so it never joins a real incident's
alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from router.errors import DeliveryError
from router.models import PageEvent
from router.outbox.channels import ChannelSet, Delivery
from router.outbox.context import PageContext, incident_context
from router.rules import RuleSet

# ASCII only: a dash outside GSM-7 would turn an SMS into UCS-2 and halve its room.
TEST_TITLE = "TEST PAGE (no incident)"
ALERT_NAME = "RunbookRouterTestPage"
NOTHING_TO_ACKNOWLEDGE = "nothing to acknowledge: this is a test page"


@dataclass(frozen=True, slots=True)
class ChannelOutcome:
    """What one channel did with the test page: `error` is None when it was delivered."""

    channel: str
    title: str = ""
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.error is None


def test_page_context(ruleset: RuleSet, tier: str, severity: str, now: datetime) -> PageContext:
    """The test page of `tier` at `severity`, as a first page of an incident opened `now`."""
    opened_at = now.isoformat()
    alert = {
        "name": ALERT_NAME,
        "source": "runbook-router",
        "labels": {"alertname": ALERT_NAME, "severity": severity},
        "annotations": {
            "summary": TEST_TITLE,
            "description": f"Sent by runbook-router test-page to check that tier {tier} "
            "reaches you. No alert fired; nothing to do.",
        },
        "starts_at": opened_at,
    }
    context = incident_context(
        incident_id=None,
        incident_key=f"test-page|tier={tier}",
        title=TEST_TITLE,
        severity=severity,
        severity_rank=ruleset.rank(severity),
        opened_at=opened_at,
        reason="a test page sent by runbook-router test-page",
        matched_rules=(),
        alert=alert,
        runbook=None,
        candidates=(),
        incident_url=None,
    )
    return context.with_(
        dedup_key=f"rr-test:{tier}:{now:%Y%m%dT%H%M%SZ}",
        tier=tier,
        event=PageEvent.TRIGGER,
        step=1,
        round=0,
        ack_url=NOTHING_TO_ACKNOWLEDGE,
    )


async def send_test_page(
    ruleset: RuleSet, channels: ChannelSet, tier: str, severity: str, now: datetime
) -> list[ChannelOutcome]:
    """Send the test page through every channel of `tier`, in the rules' order; one outcome each.

    `tier` and `severity` must be the rules' own (KeyError otherwise).
    """
    context = test_page_context(ruleset, tier, severity, now)
    outcomes = []
    for target in ruleset.tiers[tier].channels:
        delivery = Delivery(0, PageEvent.TRIGGER, tier, target, context, timezone=ruleset.timezone)
        try:
            sent = await channels.for_kind(target.kind).send(delivery)
        except DeliveryError as exc:
            outcomes.append(ChannelOutcome(target.label, error=f"{exc.reason}: {exc}"))
        except Exception as exc:  # a channel bug: still report the tier's other channels
            outcomes.append(ChannelOutcome(target.label, error=f"unexpected error: {exc!r}"))
        else:
            outcomes.append(ChannelOutcome(target.label, title=sent.title))
    return outcomes
