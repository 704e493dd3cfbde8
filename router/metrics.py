"""Every Prometheus metric of runbook-router, in one object built on an injected registry.

Tests build a `Metrics` on a fresh `CollectorRegistry`; the daemon builds one on its own registry
and serves it at `/metrics` with prometheus-client's aiohttp handler. The registry also holds
`router_build_info` and the standard `process_*`, `python_info` and `python_gc_*` series. Label
values known up front are initialised to zero, so that dashboards and `rate()` see a series before
the first event, but only the combinations that can occur: a rule opens incidents at its own
severity only, and a tier is escalated to or misses its deadline only where a policy's steps put it.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from router.models import AlertStatus, Source
from router.rules import RuleSet

# Counters and histograms would each carry a `_created` series (the time the series was made):
# twice the series for nothing a dashboard or alert here reads. prometheus-client's switch for
# it is process-wide, and the router's is the only registry in its process.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Reasons a webhook is refused; each is a value of router_webhook_rejected_total's `reason`.
REJECT_REASONS = (
    "unauthorized",
    "too_large",
    "unsupported_media_type",
    "malformed",
    "store_unavailable",
    "shutting_down",
)
RUNBOOK_METHODS = ("rule", "annotation", "search", "none")
PAGE_OUTCOMES = ("delivered", "retried", "failed")
# Results of an outbound heartbeat ping: sent, refused or unreachable, or not sent because the
# router is not ready (its database refuses writes, or it is stopping).
OUTBOUND_RESULTS = ("sent", "failed", "not_ready")
# The states of an open incident (router_open_incidents) and the flap damping outcomes.
OPEN_STATES = ("pending", "triggered", "acknowledged", "flapping")
PENDING_OUTCOMES = ("paged", "resolved", "acknowledged")
FLAPPING_EVENTS = ("started", "resolved", "still_firing", "acknowledged")

# Acknowledgement times span seconds to a business day.
_ACK_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# How the rules name an incident no rule classified, in router_incidents_opened_total.
NO_RULE = "none"


def build_version() -> str:
    """The installed runbook-router's version (its package metadata)."""
    try:
        return metadata.version("runbook-router")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class Metrics:
    """Every metric of the README's metrics table, with the `router_` prefix."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        Info("router_build", "The running runbook-router.", registry=r).info(
            {"version": build_version()}
        )
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.alerts_received = Counter(
            "router_alerts_received_total",
            "Alerts received in webhooks and stored.",
            ["source", "status"],
            registry=r,
        )
        self.webhook_rejected = Counter(
            "router_webhook_rejected_total",
            "Webhook requests refused, by reason.",
            ["source", "reason"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "router_webhook_duration_seconds",
            "Time to answer a webhook request, storage included.",
            ["source"],
            buckets=_WEBHOOK_BUCKETS,
            registry=r,
        )
        self.incidents_opened = Counter(
            "router_incidents_opened_total",
            "Incidents opened, by severity and the rule that classified them.",
            ["severity", "rule"],
            registry=r,
        )
        self.open_incidents = Gauge(
            "router_open_incidents",
            "Incidents not yet resolved, by severity and state.",
            ["severity", "state"],
            registry=r,
        )
        self.pending_ended = Counter(
            "router_pending_ended_total",
            "Incidents whose pending period ended, by severity and outcome: paged (still "
            "firing), resolved (nobody paged), acknowledged.",
            ["severity", "outcome"],
            registry=r,
        )
        self.flapping = Counter(
            "router_flapping_total",
            "Flapping incidents by severity and event: started, and how they settled: "
            "resolved (quiet, nothing firing), still_firing (paged again), acknowledged.",
            ["severity", "event"],
            registry=r,
        )
        self.alerts_suppressed = Counter(
            "router_alerts_suppressed_total",
            "Firing alerts a maintenance window kept from paging, by window.",
            ["window"],
            registry=r,
        )
        self.maintenance_windows_active = Gauge(
            "router_maintenance_windows_active",
            "Maintenance windows in force now, from the rules and made at run time.",
            registry=r,
        )
        self.pages = Counter(
            "router_pages_total",
            "Page deliveries by tier, channel and outcome.",
            ["tier", "channel", "outcome"],
            registry=r,
        )
        self.shadow_decisions = Counter(
            "router_shadow_decisions_total",
            "Firing alerts routed by the shadow rules too, by whether their decision differs.",
            ["outcome"],
            registry=r,
        )
        for outcome in ("same", "differs"):
            self.shadow_decisions.labels(outcome=outcome)
        self.escalations = Counter(
            "router_escalations_total",
            "Escalations to a further step, by severity and the tier paged.",
            ["severity", "tier"],
            registry=r,
        )
        self.storms = Counter(
            "router_storms_total",
            "Alert storms begun: a tier paged for more incidents within the window than the "
            "rules' storm threshold.",
            ["tier"],
            registry=r,
        )
        self.pages_folded = Counter(
            "router_pages_folded_total",
            "Pages not sent because their tier was in a storm; its storm page tells of them.",
            ["tier"],
            registry=r,
        )
        self.storming_tiers = Gauge(
            "router_storming_tiers", "Tiers in an alert storm now.", registry=r
        )
        self.ack_seconds = Histogram(
            "router_ack_seconds",
            "Time from an incident's opening to its acknowledgement.",
            ["severity"],
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self.ack_sla_breaches = Counter(
            "router_ack_sla_breaches_total",
            "Steps whose acknowledgement deadline lapsed, by severity and the tier that missed it.",
            ["severity", "tier"],
            registry=r,
        )
        self.runbook_matches = Counter(
            "router_runbook_matches_total",
            "How the runbook section of an alert was found.",
            ["method"],
            registry=r,
        )
        self.escalation_lag = Histogram(
            "router_escalation_lag_seconds",
            "How late escalations fired after they fell due.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.notification_queue_depth = Gauge(
            "router_notification_queue_depth",
            "Pages waiting in the outbox to be delivered.",
            registry=r,
        )
        self.delivery_duration = Histogram(
            "router_delivery_duration_seconds",
            "Time one delivery attempt to a channel took.",
            ["channel"],
            registry=r,
        )
        self.channel_up = Gauge(
            "router_channel_up",
            "1 unless the last delivery to the channel failed for a reason that may clear "
            "(5xx, 429, time-out, network); 0 while it keeps failing so.",
            ["channel"],
            registry=r,
        )
        self.heartbeat_last_beat = Gauge(
            "router_heartbeat_last_beat_timestamp_seconds",
            "When each heartbeat of the rules last beat (Unix time); absent until its first beat.",
            ["heartbeat"],
            registry=r,
        )
        self.heartbeats_missed = Counter(
            "router_heartbeats_missed_total",
            "Heartbeats missed: no beat for their interval, so an incident was opened.",
            ["heartbeat"],
            registry=r,
        )
        self.outbound_heartbeats = Counter(
            "router_outbound_heartbeats_total",
            "The router's own heartbeat pings (ROUTER_OUTBOUND_HEARTBEAT_URL), by result.",
            ["result"],
            registry=r,
        )
        self._channels_seen: set[str] = set()
        self._initialise_static_labels()

    def _initialise_static_labels(self) -> None:
        # The series every webhook touches, looked up once: `labels()` costs a few µs a call.
        self._webhook_seconds = {
            source: self.webhook_duration.labels(source=source.value) for source in Source
        }
        self._received = {
            (source, status): self.alerts_received.labels(source=source.value, status=status.value)
            for source in Source
            for status in AlertStatus
        }
        for source in Source:
            for reason in REJECT_REASONS:
                self.webhook_rejected.labels(source=source.value, reason=reason)
        for method in RUNBOOK_METHODS:
            self.runbook_matches.labels(method=method)
        for result in OUTBOUND_RESULTS:
            self.outbound_heartbeats.labels(result=result)

    def webhook_seconds(self, source: Source) -> Histogram:
        """router_webhook_duration_seconds of one source."""
        return self._webhook_seconds[source]

    def received(self, source: Source, status: AlertStatus) -> Counter:
        """router_alerts_received_total of one source and status."""
        return self._received[(source, status)]

    def initialise_routing_labels(self, rules: RuleSet) -> None:
        """Zero the series that depend on the rules, for the combinations they make possible."""
        severities = [level.name for level in rules.severities]
        for severity in severities:
            self.ack_seconds.labels(severity=severity)
            for state in OPEN_STATES:
                self.open_incidents.labels(severity=severity, state=state)
            for outcome in PENDING_OUTCOMES:
                self.pending_ended.labels(severity=severity, outcome=outcome)
            for event in FLAPPING_EVENTS:
                self.flapping.labels(severity=severity, event=event)
            # An alert no rule holds for takes its severity label's severity, or the default.
            self.incidents_opened.labels(severity=severity, rule=NO_RULE)
        for rule in rules.rules:
            self.incidents_opened.labels(severity=rule.severity, rule=rule.name)
        for window in rules.maintenance:
            self.alerts_suppressed.labels(window=window.name)
        for policy in rules.policies.values():
            for severity, escalation in policy.by_severity.items():
                steps = escalation.steps
                # Escalations page every step but the first, and the last again when repeated.
                escalated = [*steps[1:], *(steps[-1:] if escalation.repeat else [])]
                for step in escalated:
                    for name in step.tiers:
                        self.escalations.labels(severity=severity, tier=name)
                # Only a step with a deadline can miss it.
                for step in steps:
                    if step.ack_within is not None:
                        for name in step.tiers:
                            self.ack_sla_breaches.labels(severity=severity, tier=name)
        for name in rules.heartbeats:
            self.heartbeats_missed.labels(heartbeat=name)
        for tier in rules.tiers.values():
            self.storms.labels(tier=tier.name)
            self.pages_folded.labels(tier=tier.name)
            for channel in tier.channels:
                self.delivery_duration.labels(channel=channel.kind)
                for outcome in PAGE_OUTCOMES:
                    self.pages.labels(tier=tier.name, channel=channel.kind, outcome=outcome)

    def initialise_channels(self, labels: Iterable[str]) -> None:
        """Series of `router_channel_up` for channels not seen before start at 1 (up); a reload
        leaves the state of the others as the deliveries set it."""
        for label in labels:
            if label not in self._channels_seen:
                self._channels_seen.add(label)
                self.channel_up.labels(channel=label).set(1)
