"""Loading the escalation half of the rules: severities, business hours, tiers and policies."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

from router.incidents.damping import NO_DAMPING
from router.incidents.schedule import MAX_DURATION, WEEKDAYS, BusinessHours, format_duration
from router.rules.damping_sections import DampingSections
from router.rules.model import (
    DEFAULT_POLICY,
    ChannelTarget,
    Policy,
    SeverityLevel,
    SeverityPolicy,
    Step,
    Tier,
)
from router.rules.reader import (
    BUSINESS_HOURS_KEYS,
    DEFAULT_BUSINESS_DAYS,
    DEFAULT_BUSINESS_END,
    DEFAULT_BUSINESS_START,
    DEFAULT_TIMEZONE,
    PAGERDUTY_KEYS,
    SEVERITY_KEYS,
    SEVERITY_POLICY_KEYS,
    STEP_KEYS,
    TIER_KEYS,
    Merged,
    describe,
    suggest,
)
from router.rules.schema import MAX_REPEAT
from router.rules.source import Node, Where

# An Events API v2 integration ("routing") key has 32 characters (PagerDuty, "Events API v2
# Overview"); anything else is refused by PagerDuty at the first page.
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


class EscalationSections(DampingSections):
    """`severities`, `default_severity`, `timezone`, `business_hours`, `runbook_base_url`,
    `tiers` and `policies`, each checked against the others it names."""

    # --- severities, time ----------------------------------------------------------------------

    def severities(self, merged: Merged, nowhere: Where) -> list[SeverityLevel]:
        entries = merged.sections["severities"]
        if not entries:
            self.error(nowhere, "", "no severities defined; add severities: (most severe first)")
        levels = []
        alias_places: dict[str, tuple[str, Where]] = {}
        for name, (node, where) in entries.items():
            path = f"severity {name}"
            aliases: list[str] = []
            hours: Literal["always", "business"] = "always"
            damping = NO_DAMPING
            settings = {} if node.value is None else self.mapping(node, path)
            if settings:
                self.known_keys(node, SEVERITY_KEYS, path)
                if "aliases" in settings:
                    aliases = [a for a, _ in self.strings(settings["aliases"], f"{path}: aliases")]
                if "hours" in settings:
                    hours_node = settings["hours"]
                    if hours_node.value == "business":
                        hours = "business"
                    elif hours_node.value != "always":
                        self.error(
                            hours_node.where,
                            f"{path}: hours",
                            f"must be always or business, got {describe(hours_node)}",
                        )
                damping = self.damping(settings, path)
            for word in [name, *aliases]:
                folded = word.casefold()
                if folded in alias_places and alias_places[folded][0] != name:
                    other, other_where = alias_places[folded]
                    self.error(
                        where,
                        path,
                        f'"{word}" already means {other} (at {other_where})',
                    )
                alias_places.setdefault(folded, (name, where))
            levels.append(SeverityLevel(name, tuple(aliases), hours, damping))
        return levels

    def default_severity(
        self, entry: tuple[Node, Where] | None, severities: list[SeverityLevel]
    ) -> str | None:
        if entry is None:
            return None
        node = entry[0]
        name = self.string(node, "default_severity")
        known = [level.name for level in severities]
        if name is not None and name not in known:
            self.error(
                node.where,
                "default_severity",
                f'unknown severity "{name}" ({suggest(name, known)})',
            )
            return None
        return name

    def timezone(self, entry: tuple[Node, Where] | None) -> tuple[str, zoneinfo.ZoneInfo]:
        utc = (DEFAULT_TIMEZONE, zoneinfo.ZoneInfo(DEFAULT_TIMEZONE))
        if entry is None:
            return utc
        node = entry[0]
        name = self.string(node, "timezone")
        if name is None:
            return utc
        try:
            return name, zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            self.error(
                node.where, "timezone", f'unknown time zone "{name}" (e.g. UTC, Europe/Berlin)'
            )
            return utc

    def business_hours(
        self, entry: tuple[Node, Where] | None, zone: zoneinfo.ZoneInfo
    ) -> BusinessHours:
        default = BusinessHours.from_names(
            DEFAULT_BUSINESS_DAYS, DEFAULT_BUSINESS_START, DEFAULT_BUSINESS_END, zone
        )
        if entry is None:
            return default
        node = entry[0]
        settings = self.mapping(node, "business_hours")
        if settings is None:
            return default
        self.known_keys(node, BUSINESS_HOURS_KEYS, "business_hours")
        days: list[str] = list(DEFAULT_BUSINESS_DAYS)
        if "days" in settings:
            days = []
            for index, (day, item) in enumerate(
                self.strings(settings["days"], "business_hours: days")
            ):
                if day.lower() in WEEKDAYS:
                    days.append(day.lower())
                else:
                    self.error(
                        item.where,
                        f"business_hours: days[{index}]",
                        f'unknown day "{day}" ({suggest(day.lower(), WEEKDAYS)})',
                    )
        start = self.clock(settings.get("start"), "business_hours: start", DEFAULT_BUSINESS_START)
        end = self.clock(settings.get("end"), "business_hours: end", DEFAULT_BUSINESS_END)
        if not days:
            self.error(node.where, "business_hours: days", "must name at least one day")
            return default
        if end <= start:
            self.error(
                node.where, "business_hours", f"end {end:%H:%M} must be after start {start:%H:%M}"
            )
            return default
        return BusinessHours.from_names(days, start, end, zone)

    def runbook_base_url(self, entry: tuple[Node, Where] | None) -> str:
        if entry is None:
            return ""
        node = entry[0]
        url = self.string(node, "runbook_base_url", empty_ok=True)
        if not url:
            return ""
        if not url.startswith(("http://", "https://")):
            self.error(node.where, "runbook_base_url", f'"{url}" is not an http:// or https:// URL')
            return ""
        # It is a prefix: the runbook file name is appended to it.
        return url if url.endswith("/") else url + "/"

    # --- tiers ---------------------------------------------------------------------------------

    def tiers(self, entries: dict[str, tuple[Node, Where]]) -> dict[str, Tier]:
        tiers = {}
        for name, (node, where) in entries.items():
            path = f"tier {name}"
            settings = self.mapping(node, path)
            if settings is None:
                continue
            errors_before = len(self.problems.errors)
            self.known_keys(node, TIER_KEYS, path)
            channels: list[ChannelTarget] = []
            configured = 0
            if "pagerduty" in settings:
                configured += 1
                channels += self.pagerduty(settings["pagerduty"], f"{path}: pagerduty")
            if "apprise" in settings:
                urls = self.strings(settings["apprise"], f"{path}: apprise")
                configured += len(urls)
                channels += self.apprise(urls, f"{path}: apprise")
            log_node = settings.get("log")
            if log_node is not None:
                if not isinstance(log_node.value, bool):
                    self.error(
                        log_node.where,
                        f"{path}: log",
                        f"must be true or false, got {describe(log_node)}",
                    )
                elif log_node.value:
                    configured += 1
                    channels.append(ChannelTarget("log", "", "log"))
            fallback = not channels
            if fallback:
                channels.append(ChannelTarget("log", "", "log"))
            if fallback and len(self.problems.errors) == errors_before:
                # A tier with a mistake of its own is reported for that mistake alone.
                reason = (
                    "its routing keys and URLs are empty or unset"
                    if configured
                    else "it names no channel"
                )
                self.problems.warning(
                    where, f"tier {name} has no channel left ({reason}); its pages go to the log"
                )
            tiers[name] = Tier(name, tuple(channels), falls_back_to_log=fallback)
        return tiers

    def pagerduty(self, node: Node, path: str) -> list[ChannelTarget]:
        settings = self.mapping(node, path, "a mapping with routing_key")
        if settings is None:
            return []
        self.known_keys(node, PAGERDUTY_KEYS, path)
        key_node = settings.get("routing_key")
        if key_node is None:
            self.error(node.where, path, "routing_key is missing")
            return []
        key = self.string(key_node, f"{path}: routing_key", empty_ok=True)
        if not key or not key.strip():
            return []
        key = key.strip()
        # A reference that could not be read is reported already, where it is written.
        if not ROUTING_KEY.match(key) and "${" not in key:
            # The key is not printed: it is a secret, and may be nearly right.
            self.error(
                key_node.where,
                f"{path}: routing_key",
                "not a PagerDuty Events API v2 integration key: it has 32 letters and digits "
                f"(this one has {len(key)} characters)",
            )
            return []
        return [ChannelTarget("pagerduty", key, "pagerduty", f"{key_node.where}: {path}")]

    def apprise(self, urls: list[tuple[str, Node]], path: str) -> list[ChannelTarget]:
        channels = []
        for index, (url, item) in enumerate(urls):
            url = url.strip()
            if not url:
                continue
            scheme, separator, _rest = url.partition("://")
            if not separator or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", scheme):
                # The URL is not printed: it may hold a token.
                self.error(item.where, f"{path}[{index}]", "not an Apprise URL (SCHEME://...)")
                continue
            channels.append(
                ChannelTarget(
                    "apprise", url, f"apprise:{scheme.lower()}", f"{item.where}: {path}[{index}]"
                )
            )
        return channels

    # --- policies --------------------------------------------------------------------------------

    def policies(
        self,
        entries: dict[str, tuple[Node, Where]],
        severities: set[str],
        tiers: Mapping[str, Tier],
    ) -> dict[str, Policy]:
        policies = {}
        for name, (node, _where) in entries.items():
            path = f"policy {name}"
            if isinstance(node.value, dict):
                # Rules are checked against what the policy names, even where its steps are bad,
                # so that one mistake is reported once.
                self.declared[name] = set(node.value)
            settings = self.mapping(node, path, "a mapping of severities to their escalation")
            if settings is None:
                continue
            by_severity = {}
            for severity, severity_node in settings.items():
                severity_path = f"{path}: {severity}"
                if severity not in severities:
                    self.error(
                        node.key_where(severity),
                        path,
                        f'unknown severity "{severity}" ({suggest(severity, sorted(severities))})',
                    )
                    continue
                built = self.severity_policy(severity_node, severity_path, tiers)
                if built is not None:
                    by_severity[severity] = built
            policies[name] = Policy(name, by_severity)
        return policies

    def severity_policy(
        self, node: Node, path: str, tiers: Mapping[str, Tier]
    ) -> SeverityPolicy | None:
        settings = self.mapping(node, path, "a mapping with steps:")
        if settings is None:
            return None
        self.known_keys(node, SEVERITY_POLICY_KEYS, path)
        errors_before = len(self.problems.errors)
        steps_node = settings.get("steps")
        if steps_node is None:
            self.error(node.where, path, "steps: is missing")
            return None
        step_nodes = self.items(steps_node, f"{path}: steps")
        if step_nodes is None:
            return None
        if not step_nodes:
            self.error(steps_node.where, f"{path}: steps", "must list at least one step")
            return None
        steps = []
        for index, step_node in enumerate(step_nodes):
            step = self.step(step_node, f"{path}: steps[{index}]", tiers)
            if step is None:
                continue
            if step.ack_within is None and index < len(step_nodes) - 1:
                self.error(
                    step_node.where,
                    f"{path}: steps[{index}]",
                    "ack_within is needed on every step but the last (it says when the next "
                    "step is paged)",
                )
            steps.append(step)
        repeat = 0
        if "repeat" in settings:
            repeat_node = settings["repeat"]
            value = repeat_node.value
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.error(
                    repeat_node.where,
                    f"{path}: repeat",
                    f"must be a whole number 0 or more, got {describe(repeat_node)}",
                )
            elif value > MAX_REPEAT:
                self.error(
                    repeat_node.where,
                    f"{path}: repeat",
                    f"must be at most {MAX_REPEAT}, got {value}",
                )
            else:
                repeat = value
                if steps and steps[-1].ack_within is None and repeat:
                    self.error(
                        repeat_node.where,
                        f"{path}: repeat",
                        "the last step needs ack_within to be repeated",
                    )
        ack_expires = None
        if "ack_expires" in settings:
            ack_expires = self.duration(settings["ack_expires"], f"{path}: ack_expires")
        if len(self.problems.errors) > errors_before:
            return None
        span = sum((step.ack_within or timedelta(0) for step in steps), timedelta(0))
        span += repeat * (steps[-1].ack_within or timedelta(0))
        if span > MAX_DURATION:
            self.error(
                node.where,
                path,
                f"its pages span {format_duration(span, years=True)}, longer than the longest "
                f"duration ({format_duration(MAX_DURATION, years=True)}, as in Prometheus)",
            )
            return None
        return SeverityPolicy(tuple(steps), repeat, ack_expires)

    def step(self, node: Node, path: str, tiers: Mapping[str, Tier]) -> Step | None:
        settings = self.mapping(node, path, "a mapping with notify: and ack_within:")
        if settings is None:
            return None
        self.known_keys(node, STEP_KEYS, path)
        notify_node = settings.get("notify")
        if notify_node is None:
            self.error(node.where, path, "notify: is missing (the tiers to page)")
            return None
        errors_before = len(self.problems.errors)
        names = self.strings(notify_node, f"{path}: notify")
        if notify_node.value == []:
            self.error(notify_node.where, f"{path}: notify", "must name at least one tier")
        for tier, item in names:
            if tier not in tiers:
                self.error(
                    item.where,
                    f"{path}: notify",
                    f'unknown tier "{tier}" ({suggest(tier, tiers)})',
                )
        ack_within = None
        if "ack_within" in settings:
            ack_within = self.duration(settings["ack_within"], f"{path}: ack_within")
        if len(self.problems.errors) > errors_before:
            return None
        return Step(tuple(tier for tier, _ in names), ack_within)

    def default_policy(
        self, merged: Merged, severities: list[SeverityLevel], nowhere: Where
    ) -> None:
        entry = merged.sections["policies"].get(DEFAULT_POLICY)
        if entry is None:
            self.error(
                nowhere,
                "",
                f'no "{DEFAULT_POLICY}" policy; alerts that no rule classifies, and rules that '
                "name no policy, use it",
            )
            return
        declared = self.declared.get(DEFAULT_POLICY)
        if declared is None:
            return  # not a mapping: reported already
        for level in severities:
            if level.name not in declared:
                self.error(
                    entry[1],
                    f"policy {DEFAULT_POLICY}",
                    f"has no {level.name}; it must cover every severity, since alerts that no "
                    "rule classifies may get any",
                )
