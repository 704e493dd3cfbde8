"""The page context: one typed shape, stored as versioned JSON, read back the same."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.models import PageEvent, PageState
from router.outbox.context import (
    PAGE_CONTEXT_VERSION,
    NextEscalation,
    PageContext,
    PageContextError,
    PageRunbook,
    PossibleSection,
    dedup_key,
    incident_id_from_dedup_key,
)
from router.outbox.template_checks import sample_context

from .conftest import FIXTURES

LEGACY = json.loads(
    (FIXTURES / "delivery" / "contexts-before-versions.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("runbook", [True, False])
@pytest.mark.parametrize("event", ["trigger", "escalate", "acknowledge", "resolve"])
def test_a_context_survives_the_outbox(event: str, runbook: bool) -> None:
    context = sample_context(event, runbook=runbook).with_(by="alice", severity_rank=1)
    stored = json.loads(json.dumps(context.to_json()))
    assert stored["version"] == PAGE_CONTEXT_VERSION
    assert PageContext.from_json(stored) == context


def test_the_layout_before_versions_reads_as_version_1() -> None:
    context = PageContext.from_json(LEGACY["pagerduty"])
    assert (context.incident_id, context.dedup_key, context.tier, context.step) == (
        1,
        "rr-1:disk-full|alertname=DiskFull|service=api",
        "oncall",
        1,
    )
    assert context.next_escalation == NextEscalation("2024-05-06T10:05:00+00:00", ("team-lead",))
    assert context.severity_rank is None and context.possible_sections == ()
    assert context.alert.labels["instance"] == "db-1:9100"
    # Written again, it is the same page with a version.
    rewritten = context.to_json()
    assert rewritten["version"] == 1
    assert {k: v for k, v in rewritten.items() if k in LEGACY["pagerduty"]} == {
        k: v for k, v in LEGACY["pagerduty"].items()
    }


def test_a_newer_version_is_refused_with_what_to_expect() -> None:
    with pytest.raises(PageContextError, match="version 2 is newer than this release reads"):
        PageContext.from_json({**LEGACY["pagerduty"], "version": 2})


def test_runbook_and_possible_sections_keep_their_fields() -> None:
    runbook = PageRunbook(
        "db.md", "slow", "Slow", ("DB", "Slow"), "search", 0.8, "https://x/db.md#slow", 0.97
    )
    assert PageRunbook.from_json(runbook.to_json()) == runbook
    assert runbook.reference == "db.md#slow"
    assert PageRunbook("alerts/disk.md", "").reference == "alerts/disk.md"
    possible = PossibleSection("Slow", "https://x/db.md#slow", 0.4, "db.md", "slow")
    assert PossibleSection.from_json(possible.to_json()) == possible
    assert PageRunbook.from_json(None) is None and PageRunbook.from_json({"file": ""}) is None


@given(st.integers(min_value=1, max_value=10**12), st.text(min_size=1, max_size=400))
def test_dedup_key_names_its_incident_within_pagerdutys_limit(number: int, key: str) -> None:
    made = dedup_key(number, key)
    assert len(made) <= 255
    assert incident_id_from_dedup_key(made) == number


def test_other_senders_keys_name_no_incident() -> None:
    assert incident_id_from_dedup_key("alertmanager/xyz") is None
    assert incident_id_from_dedup_key("rr-x:abc") is None
    # A storm page's key names a storm, not an incident: PagerDuty's webhook ignores it.
    assert incident_id_from_dedup_key("rr-storm-3:oncall") is None
    assert dedup_key(None, "k") == "rr-?:k"


def test_page_events_and_states_are_closed_vocabularies() -> None:
    events = ["trigger", "escalate", "acknowledge", "resolve", "storm"]
    assert [event.value for event in PageEvent] == events
    paging = [PageEvent.TRIGGER, PageEvent.ESCALATE, PageEvent.STORM]
    assert [event for event in PageEvent if event.pages] == paging
    states = {"pending", "sending", "delivered", "failed", "folded"}
    assert {state.value for state in PageState} == states
    assert PageContext.from_json({**LEGACY["pagerduty"], "event": "nonsense"}).event is None
    assert PageContext.from_json(LEGACY["apprise"]).event is PageEvent.TRIGGER
