"""What every channel implements: send one `Delivery`, or raise `DeliveryError`.

A channel knows its own wire format and nothing of the outbox: retries, backoff, deadlines and
recording are the dispatcher's (`router.outbox.dispatcher`). A channel says whether a failure is
worth retrying (`DeliveryError.retryable`) and gives a short `reason` for the metric label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from router.models import PageEvent
from router.outbox.context import PageContext
from router.rules import ChannelTarget
from router.types import Excerpt


def no_excerpt(_budget: int, _style: str) -> str:
    return ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One page to one channel target.

    `event` is `trigger` (first page), `escalate` (a later step, a repeat, a re-trigger or a
    severity raise), `acknowledge` or `resolve`. `context` is what the page says
    (router/outbox/context.py), as the incident service queued it.
    """

    page_id: int
    event: PageEvent
    tier: str
    target: ChannelTarget
    context: PageContext
    excerpt: Excerpt = no_excerpt
    # The rules' IANA time zone in force when the page is sent: its times are shown in it.
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class Sent:
    """What a channel sent, kept with the page in the outbox: a title and the body as sent."""

    title: str
    body: str


class Channel(Protocol):
    kind: str

    async def send(self, delivery: Delivery) -> Sent:
        """Deliver and say what was sent, or raise DeliveryError(retryable=..., reason=...)."""

    async def close(self) -> None:
        """Release connections and threads."""
