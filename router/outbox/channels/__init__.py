"""Channels that deliver pages: PagerDuty (Events API v2), Apprise targets, and the log.

`ChannelSet` holds one instance per channel kind and hands out the one a delivery needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from router.errors import DeliveryError, FailureReason
from router.outbox.channels.base import Channel, Delivery, Sent, no_excerpt
from router.outbox.channels.log import LogChannel
from router.outbox.render import Renderer
from router.rules import RuleSet
from router.settings import Settings
from router.types import Excerpt


class ChannelSet:
    """The channel for each kind; unknown kinds fail permanently."""

    def __init__(self, channels: dict[str, Channel], renderer: Renderer | None = None) -> None:
        self._channels = channels
        self._renderer = renderer

    def reload_templates(self, templates_dir: Path | None) -> None:
        """Read the page templates again (on SIGHUP, with the rules)."""
        if self._renderer is not None:
            self._renderer.reload(templates_dir)

    def for_kind(self, kind: str) -> Channel:
        try:
            return self._channels[kind]
        except KeyError:
            raise DeliveryError(
                f"no channel of kind {kind!r} is available",
                retryable=False,
                reason=FailureReason.NO_CHANNEL,
            ) from None

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def channel_problems(ruleset: RuleSet) -> list[str]:
    """`file:line: message` for every channel of the rules that could not send a page: an Apprise
    URL that Apprise itself refuses (its own parser, as at sending time). PagerDuty routing keys
    are checked by the loader already. `check`, `serve` and every reload refuse such rules."""
    from router.outbox.channels.apprise import url_problem

    problems = []
    for tier in ruleset.tiers.values():
        for channel in tier.channels:
            if channel.kind == "apprise" and (problem := url_problem(channel.target)):
                problems.append(f"{channel.where}: {problem}")
    return problems


def build_channels(
    settings: Settings,
    templates_dir: Path | None,
    *,
    severity_rank: Callable[[str], int | None] = lambda _severity: None,
) -> ChannelSet:
    """The log, PagerDuty and Apprise channels, rendering with `templates_dir` over the shipped
    templates. `severity_rank` (0 = most severe) maps severities other than P0..P3 to PagerDuty's.
    """
    # Imported here: they load pdpyras and Apprise's plugins, which only a daemon that pages needs.
    from router.outbox.channels.apprise import AppriseChannel
    from router.outbox.channels.pagerduty import PagerDutyChannel

    renderer = Renderer(templates_dir)
    return ChannelSet(
        {
            "log": LogChannel(renderer),
            "pagerduty": PagerDutyChannel(
                settings.pagerduty_events_url, renderer, severity_rank=severity_rank
            ),
            "apprise": AppriseChannel(renderer),
        },
        renderer,
    )


__all__ = [
    "Channel",
    "ChannelSet",
    "Delivery",
    "Excerpt",
    "LogChannel",
    "Sent",
    "build_channels",
    "channel_problems",
    "no_excerpt",
]
