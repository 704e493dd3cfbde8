"""Loading `heartbeats:`: each heartbeat's name, matchers, interval, severity and policy."""

from __future__ import annotations

from collections.abc import Mapping

from router.rules.heartbeats import Heartbeat
from router.rules.model import Policy
from router.rules.reader import HEARTBEAT_KEYS
from router.rules.rule_sections import RuleSections
from router.rules.source import Node, Where


class HeartbeatSections(RuleSections):
    """`heartbeats:` entries, checked against the severities and policies as rules are."""

    def heartbeats(
        self, nodes: list[tuple[Node, int]], severities: set[str], policies: Mapping[str, Policy]
    ) -> tuple[Heartbeat, ...]:
        found = []
        seen: dict[str, Where] = {}
        for node, index in nodes:
            settings = self.mapping(node, f"heartbeats[{index}]")
            if settings is None:
                continue
            path = f"heartbeats[{index}]"
            errors_before = len(self.problems.errors)
            name = None
            name_node = settings.get("name")
            if name_node is None:
                self.error(node.where, path, "name: is missing")
            else:
                name = self.name(name_node, f"{path}: name")
            if name is not None and name_node is not None:
                path = f"heartbeat {name}"
                if name in seen:
                    self.error(name_node.where, path, f"the name is already used at {seen[name]}")
                else:
                    seen[name] = name_node.where
            self.known_keys(node, HEARTBEAT_KEYS, path)
            interval = None
            interval_node = settings.get("interval")
            if interval_node is None:
                self.error(node.where, path, "interval: is missing")
            else:
                interval = self.duration(interval_node, f"{path}: interval")
            severity = self.severity(settings.get("severity"), node.where, path, severities)
            policy = self.policy(
                settings.get("policy"), path, severity, severities, policies, kind="heartbeat"
            )
            # Without matchers, only `POST /heartbeats/{name}` beats it.
            matchers = self.matchers(settings.get("matchers"), f"{path}: matchers")
            if (
                name is None
                or interval is None
                or severity is None
                or len(self.problems.errors) > errors_before
            ):
                continue
            found.append(
                Heartbeat(
                    name=name,
                    matchers=tuple(matchers),
                    interval=interval,
                    severity=severity,
                    policy=policy,
                    source=str(node.where),
                )
            )
        return tuple(found)
