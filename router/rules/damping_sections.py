"""Loading flap damping: `pending:` and `flapping:` of a severity or a rule (docs/rules.md)."""

from __future__ import annotations

from datetime import timedelta

from router.incidents.damping import NO_DAMPING, Damping, Flapping
from router.incidents.schedule import parse_duration
from router.rules.reader import FLAPPING_KEYS, Reader, describe
from router.rules.source import Node


class DampingSections(Reader):
    """The damping settings of one severity or rule, each problem at its `file:line`."""

    def damping(self, settings: dict[str, Node], path: str) -> Damping:
        if "pending" not in settings and "flapping" not in settings:
            return NO_DAMPING
        pending = None
        if "pending" in settings:
            pending = self.pending(settings["pending"], f"{path}: pending")
        flapping = None
        if "flapping" in settings:
            flapping = self.flapping(settings["flapping"], f"{path}: flapping")
        return Damping(pending, flapping)

    def pending(self, node: Node, path: str) -> timedelta | None:
        # 0s is allowed here, unlike other durations: on a rule it turns its severity's off.
        if isinstance(node.value, str):
            try:
                if parse_duration(node.value) == timedelta(0):
                    return timedelta(0)
            except ValueError:
                pass  # reported by `duration`, with the reason
        return self.duration(node, path)

    def flapping(self, node: Node, path: str) -> Flapping | None:
        settings = self.mapping(node, path, "a mapping with resolves:, within: and quiet:")
        if settings is None:
            return None
        self.known_keys(node, FLAPPING_KEYS, path)
        errors_before = len(self.problems.errors)
        for key in FLAPPING_KEYS:
            if key not in settings:
                self.error(node.where, path, f"{key}: is missing")
        resolves = 0
        resolves_node = settings.get("resolves")
        if resolves_node is not None:
            value = resolves_node.value
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.error(
                    resolves_node.where,
                    f"{path}: resolves",
                    f"must be a whole number 1 or more, got {describe(resolves_node)}",
                )
            else:
                resolves = value
        within = quiet = None
        if "within" in settings:
            within = self.duration(settings["within"], f"{path}: within")
        if "quiet" in settings:
            quiet = self.duration(settings["quiet"], f"{path}: quiet")
        if len(self.problems.errors) > errors_before or within is None or quiet is None:
            return None
        return Flapping(resolves, within, quiet)
