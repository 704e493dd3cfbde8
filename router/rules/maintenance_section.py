"""Loading `maintenance:`: windows with matchers, recurring `time_intervals` or a one-off span."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

# The module, not its names: maintenance.windows imports the rules' matchers, whose package
# imports this module, so either may be imported first.
from router.maintenance import windows as maintenance_windows
from router.maintenance.intervals import (
    Span,
    TimeInterval,
    TimeRange,
    parse_days_of_month,
    parse_location,
    parse_months,
    parse_time_range,
    parse_weekdays,
    parse_years,
)
from router.rules.reader import (
    MAINTENANCE_KEYS,
    TIME_INTERVAL_KEYS,
    TIME_RANGE_KEYS,
    describe,
)
from router.rules.rule_sections import RuleSections
from router.rules.source import Node, Where

_RANGE_FIELDS: dict[str, Callable[[str], Span]] = {
    "weekdays": parse_weekdays,
    "days_of_month": parse_days_of_month,
    "months": parse_months,
    "years": parse_years,
}


def parse_instant(text: str) -> datetime:
    """An RFC 3339 time with its offset (`Z` or `+01:00`); ValueError if bad or without one."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f'"{text}" is not a time such as 2026-12-01T14:00:00+01:00 (RFC 3339)'
        ) from None
    if at.tzinfo is None:
        raise ValueError(f'"{text}" has no offset: add Z or +01:00, so that it means one instant')
    return at


class MaintenanceSection(RuleSections):
    """`maintenance:`: each window's name, matchers, and when it holds."""

    def maintenance(self, nodes: list[tuple[Node, int]]) -> tuple[maintenance_windows.Window, ...]:
        windows = []
        seen: dict[str, Where] = {}
        for node, index in nodes:
            settings = self.mapping(node, f"maintenance[{index}]")
            if settings is None:
                continue
            name = None
            name_node = settings.get("name")
            if name_node is None:
                self.error(node.where, f"maintenance[{index}]", "name: is missing")
            else:
                name = self.name(name_node, f"maintenance[{index}]: name")
            path = f"maintenance {name}" if name else f"maintenance[{index}]"
            if name is not None and name_node is not None:
                if name in seen:
                    self.error(name_node.where, path, f"the name is already used at {seen[name]}")
                else:
                    seen[name] = name_node.where
            window = self.window(node, settings, path, name)
            if window is not None:
                windows.append(window)
        return tuple(windows)

    def window(
        self, node: Node, settings: dict[str, Node], path: str, name: str | None
    ) -> maintenance_windows.Window | None:
        self.known_keys(node, MAINTENANCE_KEYS, path)
        errors_before = len(self.problems.errors)
        matchers_node = settings.get("matchers")
        if matchers_node is None:
            # A window over every alert is one typo away from silencing the whole router.
            self.error(node.where, path, "matchers: is missing (a window names what it hides)")
        matchers = self.matchers(matchers_node, f"{path}: matchers")
        written = matchers_node.value if matchers_node is not None else []
        texts = (
            tuple(
                item.value
                for item in written
                if isinstance(item, Node) and isinstance(item.value, str)
            )
            if isinstance(written, list)
            else ()
        )

        location: tzinfo = ZoneInfo("UTC")
        if "location" in settings:
            location = self.location(settings["location"], f"{path}: location") or location
        intervals: tuple[TimeInterval, ...] = ()
        if "time_intervals" in settings:
            intervals = self.time_intervals(
                settings["time_intervals"], f"{path}: time_intervals", location
            )
        starts_at = self.instant(settings.get("starts_at"), f"{path}: starts_at")
        ends_at = self.instant(settings.get("ends_at"), f"{path}: ends_at")
        if "time_intervals" not in settings and "ends_at" not in settings:
            self.error(node.where, path, "give time_intervals (recurring) or ends_at (one-off)")
        if starts_at is not None and ends_at is not None and ends_at <= starts_at:
            self.error(settings["ends_at"].where, f"{path}: ends_at", "must be after starts_at")

        reason = ""
        if "reason" in settings:
            reason = self.string(settings["reason"], f"{path}: reason", empty_ok=True) or ""
        include_p0 = False
        if "include_p0" in settings:
            flag = settings["include_p0"]
            if isinstance(flag.value, bool):
                include_p0 = flag.value
            else:
                self.error(
                    flag.where,
                    f"{path}: include_p0",
                    f"must be true or false, got {describe(flag)}",
                )

        if name is None or len(self.problems.errors) > errors_before:
            return None
        return maintenance_windows.Window(
            name=name,
            matchers=tuple(matchers),
            matcher_texts=texts,
            intervals=intervals,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            include_p0=include_p0,
            source=str(node.where),
        )

    def location(self, node: Node, path: str) -> tzinfo | None:
        text = self.string(node, path)
        if text is None:
            return None
        try:
            return parse_location(text)
        except ValueError as exc:
            self.error(node.where, path, str(exc))
            return None

    def instant(self, node: Node | None, path: str) -> datetime | None:
        return self.condition(node, path, parse_instant)

    def time_intervals(self, node: Node, path: str, location: tzinfo) -> tuple[TimeInterval, ...]:
        found = []
        entries = self.items(node, path)
        if entries == []:
            self.error(node.where, path, "must list at least one interval")
        for index, entry in enumerate(entries or []):
            interval = self.time_interval(entry, f"{path}[{index}]", location)
            if interval is not None:
                found.append(interval)
        return tuple(found)

    def time_interval(self, node: Node, path: str, location: tzinfo) -> TimeInterval | None:
        settings = self.mapping(node, path)
        if settings is None:
            return None
        self.known_keys(node, TIME_INTERVAL_KEYS, path)
        errors_before = len(self.problems.errors)
        if "location" in settings:
            location = self.location(settings["location"], f"{path}: location") or location
        times = None
        if "times" in settings:
            times = self.times(settings["times"], f"{path}: times")
        spans: dict[str, tuple[Span, ...] | None] = {}
        for key, parse in _RANGE_FIELDS.items():
            if key in settings:
                spans[key] = self.spans(settings[key], f"{path}: {key}", parse)
        if len(self.problems.errors) > errors_before:
            return None
        return TimeInterval(times=times, location=location, **spans)

    def times(self, node: Node, path: str) -> tuple[TimeRange, ...]:
        found = []
        for index, entry in enumerate(self.items(node, path) or []):
            where = f"{path}[{index}]"
            settings = self.mapping(entry, where)
            if settings is None:
                continue
            self.known_keys(entry, TIME_RANGE_KEYS, where)
            ends = []
            for key in TIME_RANGE_KEYS:
                part = settings.get(key)
                if part is None:
                    self.error(entry.where, where, f"{key}: is missing")
                    continue
                # YAML 1.1 reads an unquoted 14:00 as the base-60 number 840: use the text.
                text = part.raw if isinstance(part.value, int) and part.raw else part.value
                if not isinstance(text, str):
                    self.error(
                        part.where, f"{where}: {key}", f'must be "HH:MM", got {describe(part)}'
                    )
                    continue
                ends.append((text, part))
            if len(ends) < 2:
                continue
            try:
                found.append(parse_time_range(ends[0][0], ends[1][0]))
            except ValueError as exc:
                self.error(ends[0][1].where, where, str(exc))
        return tuple(found)

    def spans(self, node: Node, path: str, parse: Callable[[str], Span]) -> tuple[Span, ...]:
        found = []
        for index, item in enumerate(self.items(node, path) or []):
            # `days_of_month: [1, -1]` and `years: [2026]` are YAML numbers; read them as written.
            text = item.raw if isinstance(item.value, int) and item.raw else item.value
            if not isinstance(text, str):
                self.error(
                    item.where, f"{path}[{index}]", f"must be a string, got {describe(item)}"
                )
                continue
            try:
                found.append(parse(text))
            except ValueError as exc:
                self.error(item.where, f"{path}[{index}]", str(exc))
        return tuple(found)
