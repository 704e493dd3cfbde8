"""The `storm:` settings of the rules: when one tier's pages fold into a storm page.

`storm: {threshold: 20, window: 60s, update_every: 5m}` (each key optional, these the defaults):
when more than `threshold` incidents are paged to one tier within `window`, that tier's further
pages fold into one storm page, updated at most every `update_every` (router/incidents/storms.py).
`threshold: 0` turns storm pages off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from router.incidents.schedule import format_duration
from router.rules.reader import STORM_KEYS, Reader, describe
from router.rules.source import Node, Where

DEFAULT_THRESHOLD = 20
DEFAULT_WINDOW = timedelta(seconds=60)
DEFAULT_UPDATE_EVERY = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class StormSettings:
    """`threshold` incidents per tier within `window`; 0 turns storm pages off."""

    threshold: int = DEFAULT_THRESHOLD
    window: timedelta = DEFAULT_WINDOW
    update_every: timedelta = DEFAULT_UPDATE_EVERY

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    def describe(self) -> str:
        """`more than 20 incidents to one tier within 1m, updated at most every 5m` (or off)."""
        if not self.enabled:
            return "storm pages off (storm: threshold 0)"
        return (
            f"more than {self.threshold} incidents paged to one tier within "
            f"{format_duration(self.window)} fold into one storm page, updated at most every "
            f"{format_duration(self.update_every)}"
        )


class StormSection(Reader):
    """Reads the top-level `storm:` mapping."""

    def storm(self, entry: tuple[Node, Where] | None) -> StormSettings:
        default = StormSettings()
        if entry is None:
            return default
        node = entry[0]
        settings = self.mapping(node, "storm", "a mapping such as {threshold: 20, window: 60s}")
        if settings is None:
            return default
        self.known_keys(node, STORM_KEYS, "storm")
        threshold = DEFAULT_THRESHOLD
        if "threshold" in settings:
            item = settings["threshold"]
            value = item.value
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.error(
                    item.where,
                    "storm: threshold",
                    f"must be a whole number, 0 or more (0 turns storm pages off), "
                    f"got {describe(item)}",
                )
            else:
                threshold = value
        window = self._duration(settings.get("window"), "storm: window", DEFAULT_WINDOW)
        update_every = self._duration(
            settings.get("update_every"), "storm: update_every", DEFAULT_UPDATE_EVERY
        )
        return StormSettings(threshold, window, update_every)

    def _duration(self, node: Node | None, path: str, default: timedelta) -> timedelta:
        if node is None:
            return default
        return self.duration(node, path) or default
