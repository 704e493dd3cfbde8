"""PagerDuty, all of it: sending pages through the Events API v2 and reading its webhooks.

events.py   the channel: trigger, acknowledge and resolve events, severities, the rate limit
webhook.py  webhooks (v3) in: the signature, and what an acknowledgement or resolution means

The incident's `dedup_key` is made with the page context (`router/outbox/context.py`), and the
settings are `ROUTER_PAGERDUTY_EVENTS_URL` and `ROUTER_PAGERDUTY_WEBHOOK_SECRET`.
"""

from router.outbox.channels.pagerduty.events import PagerDutyChannel, pagerduty_severity
from router.outbox.channels.pagerduty.webhook import (
    MAX_EVENT_AGE,
    Notice,
    read_notice,
    signature_valid,
)

__all__ = [
    "MAX_EVENT_AGE",
    "Notice",
    "PagerDutyChannel",
    "pagerduty_severity",
    "read_notice",
    "signature_valid",
]
