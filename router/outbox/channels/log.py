"""The `log` channel: pages written to the log, for tiers with no PagerDuty or Apprise target.

`make run` with no secrets pages every tier here, so the whole flow can be watched. Each page is
one WARNING line that starts with `PAGE (log channel`, so it cannot be mistaken for a delivery.
What the page says comes from the `log` templates (see `router.outbox.render`), on one line.
"""

from __future__ import annotations

import logging

from router.logs import fields
from router.outbox.channels.base import Delivery, Sent
from router.outbox.render import LOG_FORMAT, Renderer

log = logging.getLogger("router.page")


class LogChannel:
    kind = "log"

    def __init__(self, renderer: Renderer | None = None) -> None:
        self._renderer = renderer or Renderer()

    async def send(self, delivery: Delivery) -> Sent:
        context = delivery.context
        page = self._renderer.render(
            LOG_FORMAT, delivery.event, context, delivery.excerpt, timezone=delivery.timezone
        )
        log.warning(
            "PAGE (log channel: no PagerDuty or Apprise target configured for this tier)",
            extra=fields(
                event=delivery.event,
                tier=delivery.tier,
                severity=context.severity,
                incident=context.incident_id,
                title=page.title,
                step=context.step,
                ack_url=context.ack_url,
                next_escalation=(
                    context.next_escalation.to_json() if context.next_escalation else None
                ),
                page=page.body.replace("\n", " ⏎ "),
            ),
        )
        return Sent(page.title, page.body)

    async def close(self) -> None:
        return None
