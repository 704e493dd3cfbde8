"""An error inside classification or runbook search loses no alert: it is paged with what is known.

The rules and the runbook library are given to `Routing` as they are in the daemon; the failing
ones are subclasses whose method raises, standing for a bug that real input could meet.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TypeVar, cast

from router.lru import LruCache
from router.models import Alert
from router.routing import Routing, load_routing
from router.rules import Classification, RuleSet
from router.runbooks import RunbookLibrary, RunbookMatch

from .alerts import make_alert
from .conftest import ROOT


class FailingRules(RuleSet):
    def classify(self, alert: Alert) -> Classification:
        raise OverflowError("date value out of range")


class FailingLibrary(RunbookLibrary):
    def find(
        self, alert: Alert, *, rule_runbook: str | None = None, rule_names: Sequence[str] = ()
    ) -> RunbookMatch:
        raise ValueError("broken section")


T = TypeVar("T")


def failing_copy(original: object, failing: type[T]) -> T:
    """`original` as it was loaded, with the one method of `failing` that raises."""
    copied = copy.copy(original)
    copied.__class__ = failing
    return cast(T, copied)


def shipped() -> Routing:
    return load_routing(ROOT / "rules", {}, strict_secrets=False)


def test_a_classification_error_pages_at_the_severity_label() -> None:
    routing = shipped()
    failing = Routing(failing_copy(routing.rules, FailingRules), routing.runbooks)
    alert = make_alert({"alertname": "LedgerDataCorruption", "severity": "critical"})
    routed = failing.route(alert)
    assert routed.classification.severity == "P0"
    assert "OverflowError: date value out of range" in routed.classification.reason
    assert routed.classification.incident_key.startswith("unclassified")
    assert routed.alert is alert
    assert routed.failure is not None
    assert routed.failure.startswith("error while classifying the alert:\nTraceback")


def test_a_search_error_keeps_the_classification() -> None:
    routing = shipped()
    failing = Routing(routing.rules, failing_copy(routing.runbooks, FailingLibrary))
    alert = make_alert({"alertname": "LedgerDataCorruption", "service": "ledger"})
    routed = failing.route(alert)
    assert routed.classification == routing.route(alert).classification
    assert routed.runbook is None
    assert routed.failure is not None
    assert "ValueError: broken section" in routed.failure


def test_a_repeated_alert_is_routed_from_memory_with_its_own_identity() -> None:
    routing = shipped()
    first = make_alert({"alertname": "LedgerDataCorruption", "service": "ledger"})
    again = make_alert({"alertname": "LedgerDataCorruption", "service": "ledger"})
    assert routing.route(first).classification is routing.route(again).classification
    assert routing.route(again).alert is again


def test_the_same_alert_on_another_instance_is_routed_from_memory() -> None:
    routing = shipped()
    labels = {"alertname": "LedgerDataCorruption", "service": "ledger"}
    first = make_alert({**labels, "pod": "ledger-0", "node": "node-a"})
    other = make_alert({**labels, "pod": "ledger-1", "node": "node-b"})
    assert routing.route(first).classification is routing.route(other).classification
    assert routing.route(other).alert is other
    # A label the search reads (service) decides: it is routed again.
    elsewhere = make_alert({**labels, "service": "api", "pod": "ledger-1"})
    assert routing.route(elsewhere).classification is not routing.route(first).classification


def test_an_alert_grouped_by_instance_is_routed_from_memory_per_instance() -> None:
    routing = shipped()
    # The shipped rule `slow-proof-generation` groups by alertname, service and instance.
    labels = {"alertname": "ProofGenerationSlow", "service": "prover"}
    value = {"value": "15s"}

    def route(**more: str) -> Classification:
        return routing.route(make_alert({**labels, **more}, value)).classification

    first = route(instance="a:9100")
    assert first.rule == "slow-proof-generation"
    assert first.group_values["instance"] == "a:9100"
    other = route(instance="b:9100")
    assert other.group_values["instance"] == "b:9100"
    assert other.incident_key != first.incident_key
    assert route(instance="a:9100", pod="p") is first


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
