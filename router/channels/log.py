"""The `log` channel: pages written to the log, for tiers with no PagerDuty or Apprise target.

`make run` with no secrets pages every tier here, so the whole flow can be watched. Each page is
one WARNING line that starts with `PAGE (log channel)`, so it cannot be mistaken for a delivery.
"""

from __future__ import annotations

import logging

from router.channels.base import Delivery
from router.logs import fields

log = logging.getLogger("router.page")

# The excerpt a log line carries: enough to read, short enough for one line in a terminal.
LOG_EXCERPT_BUDGET = 600


class LogChannel:
    kind = "log"

    async def send(self, delivery: Delivery) -> None:
        context = delivery.context
        excerpt = delivery.excerpt(LOG_EXCERPT_BUDGET, "text")
        log.warning(
            "PAGE (log channel: no PagerDuty or Apprise target configured for this tier)",
            extra=fields(
                event=delivery.event,
                tier=delivery.tier,
                severity=context.get("severity"),
                incident=context.get("incident_id"),
                title=context.get("title"),
                step=context.get("step"),
                ack_url=context.get("ack_url"),
                next_escalation=context.get("next_escalation"),
                runbook=excerpt.replace("\n", " ⏎ ") if excerpt else None,
            ),
        )

    async def close(self) -> None:
        return None
