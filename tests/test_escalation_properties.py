"""The escalation core tested directly: no database, no loop; the plan is the engine's own decisions.

- `plan_timeline` (what `route` shows) runs the state machine on a virtual clock; here it is
  checked against the closed-form schedule written out independently below, over random policies,
  business hours and time zones, and against the real service on SQLite with a moved clock.
- Table-driven checks of the state machine's transitions, and of the retry policy's delays.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from router.app import RouterService
from router.incidents import escalation
from router.incidents.escalation import Context, IncidentState, NextAction, Progress, plan_timeline
from router.incidents.schedule import BusinessHours
from router.ingest.payloads import parse_alertmanager
from router.outbox.dispatcher import RetryPolicy
from router.rules import SeverityPolicy, Step

from .scenario import FakeClock, alert, alertmanager_body, router_fixture, send

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


def closed_form(
    policy: SeverityPolicy, hours: BusinessHours | None, opened_at: datetime
) -> list[tuple[int, int, tuple[str, ...], datetime, bool]]:
    """The schedule as the rules describe it, written independently of the state machine:
    every step, then `repeat` pages of the last; each due `ack_within` after the page before;
    outside business hours a page waits for the opening; no `ack_within` ends it."""
    pages = [(i + 1, 0, s) for i, s in enumerate(policy.steps)]
    pages += [(len(policy.steps), r + 1, policy.steps[-1]) for r in range(policy.repeat)]
    planned = []
    due = opened_at
    for number, round_, step in pages if policy.steps else []:
        at = hours.next_open(due) if hours is not None else due
        planned.append((number, round_, tuple(step.tiers), at, at != due))
        if step.ack_within is None:
            break
        due = at + step.ack_within
    return planned


steps = st.lists(
    st.builds(
        Step,
        st.lists(st.sampled_from(["oncall", "lead", "manager", "cto"]), min_size=1, max_size=2).map(
            tuple
        ),
        st.one_of(
            st.none(),
            st.integers(min_value=1, max_value=3 * 24 * 60).map(lambda m: timedelta(minutes=m)),
        ),
    ),
    min_size=1,
    max_size=4,
)
policies = st.builds(
    SeverityPolicy,
    steps.map(tuple),
    st.integers(min_value=0, max_value=3),
    st.one_of(st.none(), st.integers(1, 600).map(lambda m: timedelta(minutes=m))),
)
business_hours = st.one_of(
    st.none(),
    st.builds(
        lambda days, start, length, zone: BusinessHours(
            frozenset(days), time(start), time(min(start + length, 23), 59), ZoneInfo(zone)
        ),
        st.sets(st.integers(0, 6), min_size=1),
        st.integers(0, 20),
        st.integers(1, 12),
        st.sampled_from(ZONES),
    ),
)
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(policies, business_hours, instants)
def test_the_plan_is_the_schedule_the_rules_describe(
    policy: SeverityPolicy, hours: BusinessHours | None, opened_at: datetime
) -> None:
    planned = [
        (p.step, p.round, p.tiers, p.at, p.waited_for_business_hours)
        for p in plan_timeline(policy, hours, opened_at)
    ]
    assert planned == closed_form(policy, hours, opened_at)


@settings(max_examples=200, deadline=None)
@given(policies, business_hours, instants)
def test_every_planned_page_is_inside_business_hours_and_in_order(
    policy: SeverityPolicy, hours: BusinessHours | None, opened_at: datetime
) -> None:
    planned = plan_timeline(policy, hours, opened_at)
    assert [p.at for p in planned] == sorted(p.at for p in planned)
    assert all(p.at >= opened_at for p in planned)
    if hours is not None:
        assert all(hours.is_open(p.at) for p in planned)
    assert len(planned) <= len(policy.steps) + policy.repeat


@settings(max_examples=200, deadline=None)
@given(policies, business_hours, instants)
def test_the_announced_next_escalation_is_the_next_planned_page(
    policy: SeverityPolicy, hours: BusinessHours | None, opened_at: datetime
) -> None:
    context = Context("P1", policy, hours)
    planned = plan_timeline(policy, hours, opened_at)
    decision = escalation.start(context, opened_at)
    for following in planned[1:]:
        while not decision.pages:  # waiting for the opening
            decision = escalation.when_due(
                decision.progress, context, decision.progress.next_action_at or opened_at
            )
        assert escalation.next_tiers(decision.progress, context) == following.tiers
        progress = decision.progress
        assert progress.next_action_at is not None
        decision = escalation.when_due(progress, context, progress.next_action_at)
    assert escalation.next_tiers(decision.progress, context) == ()


T0 = datetime(2024, 5, 13, 10, 0, tzinfo=UTC)
THREE = SeverityPolicy(
    (Step(("oncall",), timedelta(minutes=5)), Step(("lead",), timedelta(minutes=10))),
    repeat=1,
    ack_expires=timedelta(hours=1),
)
CONTEXT = Context("P0", THREE)


@pytest.mark.parametrize(
    ("progress", "call", "state", "next_action", "changed"),
    [
        # (from, what happens, to, what is due next, stored?)
        (None, "start", IncidentState.TRIGGERED, NextAction.ESCALATE, True),
        (Progress(IncidentState.TRIGGERED, 0, 0, NextAction.ESCALATE, T0), "due",
         IncidentState.TRIGGERED, NextAction.ESCALATE, True),
        (Progress(IncidentState.TRIGGERED, 1, 1, NextAction.ESCALATE, T0), "due",
         IncidentState.TRIGGERED, None, True),  # exhausted
        (Progress(IncidentState.TRIGGERED, 0, 0, NextAction.ESCALATE, T0), "ack",
         IncidentState.ACKNOWLEDGED, NextAction.ACK_EXPIRED, True),
        (Progress(IncidentState.ACKNOWLEDGED, 0, 0, NextAction.ACK_EXPIRED, T0), "ack",
         IncidentState.ACKNOWLEDGED, NextAction.ACK_EXPIRED, False),
        (Progress(IncidentState.ACKNOWLEDGED, 1, 0, NextAction.ACK_EXPIRED, T0), "due",
         IncidentState.TRIGGERED, NextAction.ESCALATE, True),  # re-triggered
        (Progress(IncidentState.ACKNOWLEDGED, 0, 0, NextAction.ESCALATE, T0), "due",
         IncidentState.ACKNOWLEDGED, NextAction.ESCALATE, False),  # stale after an ack: kept
        (Progress(IncidentState.TRIGGERED, 0, 0, NextAction.ESCALATE, T0), "resolve",
         IncidentState.RESOLVED, None, True),
        (Progress(IncidentState.RESOLVED), "ack", IncidentState.RESOLVED, None, False),
        (Progress(IncidentState.RESOLVED), "resolve", IncidentState.RESOLVED, None, False),
        (Progress(IncidentState.RESOLVED, 0, 0, NextAction.ESCALATE, T0), "due",
         IncidentState.RESOLVED, NextAction.ESCALATE, False),
    ],
)  # fmt: skip
def test_state_machine_transitions(
    progress: Progress | None,
    call: str,
    state: IncidentState,
    next_action: NextAction | None,
    changed: bool,
) -> None:
    if call == "start":
        decision = escalation.start(CONTEXT, T0)
    else:
        assert progress is not None
        decision = {
            "due": lambda: escalation.when_due(progress, CONTEXT, T0),
            "ack": lambda: escalation.acknowledge(progress, CONTEXT, T0, "alice"),
            "resolve": lambda: escalation.resolve(progress, "alice"),
        }[call]()
    assert (decision.progress.state, decision.progress.next_action, decision.changed) == (
        state,
        next_action,
        changed,
    )
    if not decision.changed:
        # Nothing to store: the progress is the one given, and nobody is paged.
        assert decision.progress is progress
        assert decision.pages == ()


@settings(max_examples=300)
@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=600),
    st.floats(min_value=0.0, max_value=0.5),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=2**32),
)
def test_retry_delays_double_up_to_the_cap_within_the_jitter(
    base: int, cap: int, jitter: float, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(timedelta(seconds=base), timedelta(seconds=cap), jitter)
    delay = policy.delay(attempt, random.Random(seed)).total_seconds()
    expected = min(base * 2 ** (attempt - 1), cap)
    # A timedelta holds microseconds: the delay may differ from the exact figure by one.
    assert expected * (1 - jitter) - 1e-6 <= delay <= expected * (1 + jitter) + 1e-6


# --- the plan route shows is what the real service does --------------------------------------

Client = TestClient[Any, Any]


router = router_fixture()


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("DataCorruption", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),  # P0, repeats
        ("SlowThing", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),  # P1
        ("SomethingElse", datetime(2026, 11, 27, 15, 30, tzinfo=UTC)),  # P2, Friday evening
        ("SomethingElse", datetime(2026, 11, 28, 11, 0, tzinfo=UTC)),  # P2, Saturday
    ],
)
async def test_the_plan_route_shows_is_what_the_service_does(
    router: RouterService, clock: FakeClock, name: str, start: datetime
) -> None:
    clock.now = start
    body = alertmanager_body(alert(name))
    (parsed,) = parse_alertmanager(body).alerts
    planned = router.routing.rules.plan(router.routing.route(parsed).classification, start)
    assert len(planned) >= 2
    async with TestClient(TestServer(router.web_app())) as client:
        await send(client, alert(name))
        await router.engine.run_once()
        for page in planned:  # the clock moves to each planned page, waits for hours included
            clock.now = page.at
            await router.engine.run_once()
        clock.now = planned[-1].at + timedelta(days=7)
        await router.engine.run_once()
    paged = [
        (page.step + 1, page.round, page.tier, page.created_at)
        for page in await router.store.list_pages()
    ]
    assert paged == [(p.step, p.round, tier, p.at) for p in planned for tier in p.tiers]


def test_an_unchanged_decision_cannot_page() -> None:
    with pytest.raises(ValueError, match="an unchanged decision pages nobody"):
        escalation.Decision(
            Progress(IncidentState.TRIGGERED),
            pages=(escalation.PageOrder(0, 0, ("oncall",), "trigger"),),
            changed=False,
        )
