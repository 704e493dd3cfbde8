"""Channels that deliver pages: PagerDuty (Events API v2), Apprise targets, and the log.

`ChannelSet` holds one instance per channel kind and hands out the one a delivery needs.
"""

from __future__ import annotations

from router.channels.base import Channel, Delivery, Excerpt, no_excerpt
from router.channels.log import LogChannel
from router.errors import DeliveryError


class ChannelSet:
    """The channel for each kind; unknown kinds fail permanently."""

    def __init__(self, channels: dict[str, Channel]) -> None:
        self._channels = channels

    def for_kind(self, kind: str) -> Channel:
        try:
            return self._channels[kind]
        except KeyError:
            raise DeliveryError(
                f"no channel of kind {kind!r} is available", retryable=False, reason="no_channel"
            ) from None

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def log_only_channels() -> ChannelSet:
    return ChannelSet({"log": LogChannel()})


__all__ = [
    "Channel",
    "ChannelSet",
    "Delivery",
    "Excerpt",
    "LogChannel",
    "log_only_channels",
    "no_excerpt",
]
