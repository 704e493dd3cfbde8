"""The escalation state machine, as pure functions of (incident progress, policy, now).

An incident's escalation position is a `Progress`: its state, the step it is on, how many times
the last step has been repeated, and the one thing due next (`NextAction`) with its time. Each
function here takes a Progress and returns a `Decision`: the new Progress, the steps to page now,
and timeline notes with the reason for every choice. Nothing here reads a clock, a database or
the network; the engine stores the Progress and acts on the Decision in one transaction.

Business hours: a severity with `hours: business` pages only while the window is open. A page that
falls outside it becomes a `PAGE` action at the next opening, and the timeline says so.

Flap damping (`router.incidents.damping`): with a pending period, a new incident opens `pending`
and pages nobody until `PENDING_END`; resolved before, nobody is paged at all. With flap
detection, an incident that resolved and fired again often enough within the window (`reopen`) is
held open as `flapping`: its alerts fire and resolve without paging until it has been quiet for
`QUIET_END`; then it resolves, or, still firing, pages again as a new trigger.

`plan_timeline` runs these same functions on a virtual clock: it is the plan `route` shows and the
"next escalation" a page announces (`next_tiers`), so they cannot disagree with the engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from router.incidents.damping import NO_DAMPING, Damping
from router.incidents.schedule import SeverityPolicyLike, format_duration, require_aware
from router.models import PageEvent


class IncidentState(enum.StrEnum):
    PENDING = "pending"  # open, inside its pending period: nobody paged yet
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    FLAPPING = "flapping"  # open, resolving and firing again: re-fires page nobody
    SUPPRESSED = "suppressed"  # opened inside a maintenance window: nobody paged until it ends
    RESOLVED = "resolved"


# Every state but resolved: the incident is open, and new alerts of its key join it.
OPEN_STATES = tuple(state for state in IncidentState if state is not IncidentState.RESOLVED)
# The filters of the incident lists (API, web pages, CLI): open, each state, all.
STATE_FILTERS: dict[str, tuple[IncidentState, ...] | None] = {
    "open": OPEN_STATES,
    **{state.value: (state,) for state in IncidentState},
    "all": None,
}


class NextAction(enum.StrEnum):
    PAGE = "page"  # page the current step: it waited for business hours
    ESCALATE = "escalate"  # the current step's ack_within lapses: page the next step
    ACK_EXPIRED = "ack_expired"  # an acknowledgement lapses while the incident still fires
    PENDING_END = "pending_end"  # the pending period ends: page if still firing
    QUIET_END = "quiet_end"  # a flapping incident has been quiet long enough: settle it
    WINDOW_ENDS = "window_ends"  # the maintenance window of a suppressed incident ends


class PolicyLike(SeverityPolicyLike, Protocol):
    """One severity's escalation (`router.rules.SeverityPolicy`), with its ack expiry."""

    @property
    def ack_expires(self) -> timedelta | None: ...


class HoursLike(Protocol):
    """Business hours: `router.incidents.schedule.BusinessHours`."""

    def is_open(self, at: datetime) -> bool: ...

    def next_open(self, at: datetime) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an incident stands in its escalation; stored with the incident."""

    state: IncidentState
    step: int = 0  # index into the policy's steps of the step paged last (or waiting to be)
    round: int = 0  # 0 on the first pass; n on the n-th repeat of the last step
    next_action: NextAction | None = None
    next_action_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PageOrder:
    """Page every channel of every tier of one step."""

    step: int
    round: int
    tiers: tuple[str, ...]
    kind: PageEvent  # TRIGGER for the first page, ESCALATE for later ones


@dataclass(frozen=True, slots=True)
class Note:
    """A timeline entry: what was decided and why."""

    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do: the new progress, the pages, the timeline notes; `Decision.unchanged` when
    nothing is to be stored (then the progress is the one given, and nothing is paged)."""

    progress: Progress
    pages: tuple[PageOrder, ...] = ()
    notes: tuple[Note, ...] = ()
    sla_breached_tiers: tuple[str, ...] = ()  # tiers whose ack_within lapsed
    escalated_tiers: tuple[str, ...] = ()  # tiers paged because of an escalation
    changed: bool = True  # False: nothing to store

    def __post_init__(self) -> None:
        if not self.changed and (self.pages or self.sla_breached_tiers or self.escalated_tiers):
            raise ValueError("an unchanged decision pages nobody")

    @classmethod
    def unchanged(cls, progress: Progress, *notes: Note) -> Decision:
        """Nothing to store: the progress stays as it is (notes may still say why)."""
        return cls(progress, notes=notes, changed=False)


@dataclass(frozen=True, slots=True)
class Context:
    """What every decision needs besides the progress: the policy, the hours, the severity."""

    severity: str
    policy: PolicyLike
    hours: HoursLike | None = None  # set only for severities with `hours: business`
    damping: Damping = NO_DAMPING  # the rule's pending period and flap detection


def _step_label(step: int, round_: int) -> str:
    return f"step {step + 1}" + (f" (repeat {round_})" if round_ else "")


def _page(
    context: Context,
    state: IncidentState,
    step: int,
    round_: int,
    now: datetime,
    kind: PageEvent,
    reason: str,
) -> Decision:
    """Page `step` now, or at the next business-hours opening when the window is closed."""
    tiers = tuple(context.policy.steps[step].tiers)
    label = _step_label(step, round_)
    if context.hours is not None and not context.hours.is_open(now):
        opens = context.hours.next_open(now)
        return Decision(
            progress=Progress(state, step, round_, NextAction.PAGE, opens),
            notes=(
                Note(
                    "waiting",
                    f"{reason}; {context.severity} pages wait for business hours: "
                    f"{label} ({', '.join(tiers)}) at {opens.isoformat()}",
                ),
            ),
        )
    ack_within = context.policy.steps[step].ack_within
    if ack_within is None:
        next_action, due, until = None, None, "no acknowledgement deadline"
    else:
        next_action, due = NextAction.ESCALATE, now + ack_within
        until = f"acknowledge within {format_duration(ack_within)}"
    return Decision(
        progress=Progress(state, step, round_, next_action, due),
        pages=(PageOrder(step, round_, tiers, kind),),
        notes=(Note("page", f"{reason}: paging {label}: {', '.join(tiers)}; {until}"),),
    )


def start(context: Context, now: datetime, reason: str = "incident opened") -> Decision:
    """A new incident: page the first step, or wait out the pending period first."""
    pending = context.damping.pending_period
    if pending is not None:
        ends = now + pending
        return Decision(
            progress=Progress(IncidentState.PENDING, 0, 0, NextAction.PENDING_END, ends),
            notes=(
                Note(
                    "pending",
                    f"{reason}; pending {format_duration(pending)}: pages at {ends.isoformat()} "
                    "if still firing, nobody if it resolves before",
                ),
            ),
        )
    return _page(context, IncidentState.TRIGGERED, 0, 0, now, PageEvent.TRIGGER, reason)


def suppress(until: datetime, note: str) -> Decision:
    """A maintenance window hides the incident until `until`: page nobody, look again then.

    `note` names the window (`maintenance.Cover.note`); the caller decides whether a window
    holds, since windows are made and ended at run time."""
    return Decision(
        progress=Progress(IncidentState.SUPPRESSED, 0, 0, NextAction.WINDOW_ENDS, until),
        notes=(Note("suppressed", note),),
    )


def unsuppress(context: Context, now: datetime, reason: str) -> Decision:
    """A suppressed incident pages after all, as a new trigger: the first step, from now."""
    return _page(context, IncidentState.TRIGGERED, 0, 0, now, PageEvent.TRIGGER, reason)


def joined_suppressed(
    progress: Progress, context: Context, now: datetime, hidden_until: datetime | None, joined: str
) -> Decision:
    """An alert (`joined`, described for people) joined a suppressed incident. Outside every
    window (`hidden_until` None) the incident pages now, as a new trigger; inside one it stays
    silent, and is looked at again when the first of the two windows ends."""
    if hidden_until is None:
        return unsuppress(context, now, f"{joined} joined outside any maintenance window")
    due = progress.next_action_at
    until = hidden_until if due is None else min(due, hidden_until)
    return Decision(replace(progress, next_action_at=until))


def when_due(
    progress: Progress, context: Context, now: datetime, *, firing: bool = True
) -> Decision:
    """The incident's next action fell due: page, escalate, re-trigger, end the pending period,
    end a maintenance window, or settle a flapping incident (`firing`: whether any of its alerts
    still fires; only read then).
    """
    action = progress.next_action
    if progress.state is IncidentState.RESOLVED or action is None:
        return Decision.unchanged(progress)
    if action is NextAction.PENDING_END:
        if progress.state is not IncidentState.PENDING:
            return Decision.unchanged(progress)
        pending = context.damping.pending_period
        waited = f"pending {format_duration(pending)}" if pending else "the pending period"
        return _page(
            context,
            IncidentState.TRIGGERED,
            0,
            0,
            now,
            PageEvent.TRIGGER,
            f"still firing after {waited}",
        )
    if action is NextAction.QUIET_END:
        return _quiet_ended(progress, context, now, firing)
    if action is NextAction.WINDOW_ENDS:
        if progress.state is not IncidentState.SUPPRESSED:
            return Decision.unchanged(progress)
        return unsuppress(context, now, "the maintenance window ended while it still fires")
    if action is NextAction.PAGE:
        kind = (
            PageEvent.TRIGGER if progress.step == 0 and progress.round == 0 else PageEvent.ESCALATE
        )
        return _page(
            context,
            progress.state,
            progress.step,
            progress.round,
            now,
            kind,
            "business hours began",
        )
    if action is NextAction.ACK_EXPIRED:
        return _acknowledgement_expired(progress, context, now)
    return _escalate(progress, context, now)


def _escalate(progress: Progress, context: Context, now: datetime) -> Decision:
    if progress.state is not IncidentState.TRIGGERED:
        # Acknowledged in the meantime; the acknowledgement replaced this action already.
        return Decision.unchanged(progress)
    steps = context.policy.steps
    step = min(progress.step, len(steps) - 1)
    lapsed = steps[step].ack_within or timedelta(0)
    breached = tuple(steps[step].tiers)
    if step + 1 < len(steps):
        next_step, next_round = step + 1, progress.round
    elif progress.round < context.policy.repeat:
        next_step, next_round = step, progress.round + 1
    else:
        pages_sent = len(steps) + context.policy.repeat
        return Decision(
            progress=Progress(IncidentState.TRIGGERED, step, progress.round),
            notes=(
                Note(
                    "exhausted",
                    f"ack SLA {format_duration(lapsed)} of {_step_label(step, progress.round)} "
                    "lapsed; "
                    f"escalation exhausted after {pages_sent} pages: nobody acknowledged",
                ),
            ),
            sla_breached_tiers=breached,
        )
    reason = f"ack SLA {format_duration(lapsed)} lapsed with no acknowledgement"
    decision = _page(
        context, IncidentState.TRIGGERED, next_step, next_round, now, PageEvent.ESCALATE, reason
    )
    return replace(
        decision,
        sla_breached_tiers=breached,
        escalated_tiers=tuple(steps[next_step].tiers) if decision.pages else (),
    )


def _acknowledgement_expired(progress: Progress, context: Context, now: datetime) -> Decision:
    if progress.state is not IncidentState.ACKNOWLEDGED:
        return Decision.unchanged(progress)
    expires = context.policy.ack_expires or timedelta(0)
    step = min(progress.step, len(context.policy.steps) - 1)
    reason = f"acknowledgement expired after {format_duration(expires)} while still firing"
    return _page(
        context, IncidentState.TRIGGERED, step, progress.round, now, PageEvent.ESCALATE, reason
    )


def acknowledge(progress: Progress, context: Context, now: datetime, who: str) -> Decision:
    """Stop escalating. Resolution wins: acknowledging a resolved incident changes nothing."""
    if progress.state is IncidentState.RESOLVED:
        return Decision.unchanged(
            progress, Note("ignored", f"acknowledgement by {who} ignored: already resolved")
        )
    if progress.state is IncidentState.ACKNOWLEDGED:
        return Decision.unchanged(progress)
    expires = context.policy.ack_expires
    if expires is None:
        next_action, due, note = None, None, f"acknowledged by {who}: escalation stopped"
    else:
        next_action, due = NextAction.ACK_EXPIRED, now + expires
        note = (
            f"acknowledged by {who}: escalation stopped; re-triggers at "
            f"{due.isoformat()} if still firing (ack_expires {format_duration(expires)})"
        )
    return Decision(
        progress=Progress(
            IncidentState.ACKNOWLEDGED, progress.step, progress.round, next_action, due
        ),
        notes=(Note("acknowledged", note),),
    )


def resolve(
    progress: Progress, who: str, context: Context | None = None, now: datetime | None = None
) -> Decision:
    """Resolve. A pending incident says how long it fired, from its pending period's end and
    length (`context`, `now`): nobody was paged."""
    if progress.state is IncidentState.RESOLVED:
        return Decision.unchanged(progress)
    detail = f"resolved by {who}"
    if progress.state is IncidentState.PENDING:
        pending = context.damping.pending_period if context else None
        ends = progress.next_action_at
        if pending is not None and ends is not None and now is not None:
            fired = max(now - (ends - pending), timedelta(0))
            detail += (
                f"; resolved after {format_duration(fired)}, inside pending "
                f"{format_duration(pending)}: nobody paged"
            )
        else:
            detail += "; resolved while pending: nobody paged"
    if progress.state is IncidentState.SUPPRESSED:
        detail += " inside its maintenance window: nobody was paged"
    return Decision(
        progress=Progress(IncidentState.RESOLVED, progress.step, progress.round),
        notes=(Note("resolved", detail),),
    )


def alerts_resolved(progress: Progress, context: Context, now: datetime, who: str) -> Decision:
    """Every alert of the incident resolved: it resolves, unless it is flapping, which keeps it
    open until it has been quiet long enough."""
    if progress.state is IncidentState.FLAPPING:
        return _still_flapping(progress, context, now)
    return resolve(progress, who, context, now)


def alert_joined(progress: Progress, context: Context, now: datetime) -> Decision:
    """An alert fired into the open incident. Only a flapping incident cares: its quiet time
    starts again."""
    if progress.state is IncidentState.FLAPPING:
        return _still_flapping(progress, context, now)
    return Decision.unchanged(progress)


def reopen(
    progress: Progress, context: Context, now: datetime, resolved_at: datetime, refires: int
) -> Decision:
    """A resolved incident with flap detection fired again within its window: it opens again,
    the alert joining it. `refires` counts this re-fire and the earlier ones within the window;
    at the rule's count the incident is flapping and pages nobody, below it this is a new trigger
    (with its pending period, if any)."""
    flapping = context.damping.flapping
    assert flapping is not None, "only incidents with flap detection reopen"
    after = format_duration(max(now - resolved_at, timedelta(0)))
    fired = (
        f"fired again {after} after it resolved ({refires} of {flapping.resolves} re-fires "
        f"within {format_duration(flapping.within)})"
    )
    if refires < flapping.resolves:
        return start(context, now, reason=fired)
    quiet = format_duration(flapping.quiet)
    return Decision(
        progress=Progress(
            IncidentState.FLAPPING,
            progress.step,
            progress.round,
            NextAction.QUIET_END,
            now + flapping.quiet,
        ),
        notes=(
            Note(
                "flapping",
                f"{fired}: flapping; its alerts join it and page nobody until it has been "
                f"quiet for {quiet}",
            ),
        ),
    )


def _still_flapping(progress: Progress, context: Context, now: datetime) -> Decision:
    """An alert of a flapping incident fired or resolved: the quiet time starts again."""
    flapping = context.damping.flapping
    if flapping is None:  # the rules no longer say so (a reload): settle at the time set before
        return Decision.unchanged(progress)
    return Decision(
        progress=replace(
            progress, next_action=NextAction.QUIET_END, next_action_at=now + flapping.quiet
        )
    )


def _quiet_ended(progress: Progress, context: Context, now: datetime, firing: bool) -> Decision:
    """A flapping incident was quiet long enough: resolved if nothing fires, else back to
    normal with a new first page (its channels were last told that it resolved)."""
    if progress.state is not IncidentState.FLAPPING:
        return Decision.unchanged(progress)
    flapping = context.damping.flapping
    quiet = f"quiet for {format_duration(flapping.quiet)}" if flapping else "quiet"
    if not firing:
        return Decision(
            progress=Progress(IncidentState.RESOLVED, progress.step, progress.round),
            notes=(Note("resolved", f"{quiet} after flapping, with no alert firing: resolved"),),
        )
    return _page(
        context,
        IncidentState.TRIGGERED,
        0,
        0,
        now,
        PageEvent.TRIGGER,
        f"{quiet} after flapping and still firing: flapping ended",
    )


def damping_outcome(before: IncidentState, after: IncidentState) -> tuple[str, str] | None:
    """What a change of state means for flap damping, as (`pending` or `flapping`, outcome), the
    labels of the damping metrics; None for any other change."""
    if before is IncidentState.PENDING and after is not IncidentState.PENDING:
        return "pending", {
            IncidentState.TRIGGERED: "paged",
            IncidentState.RESOLVED: "resolved",
        }.get(after, after.value)
    if after is IncidentState.FLAPPING and before is not IncidentState.FLAPPING:
        return "flapping", "started"
    if before is IncidentState.FLAPPING and after is not IncidentState.FLAPPING:
        return "flapping", {
            IncidentState.TRIGGERED: "still_firing",
            IncidentState.RESOLVED: "resolved",
        }.get(after, after.value)
    return None


def raise_severity(progress: Progress, context: Context, previous: str, now: datetime) -> Decision:
    """A more severe alert joined: page the current step again under the new severity's policy.
    A pending incident stays pending while the new severity has a pending period too; a flapping
    one stays flapping (its re-fires page nobody)."""
    reason = f"severity raised from {previous} to {context.severity}"
    if progress.state is IncidentState.PENDING and context.damping.pending_period is not None:
        return Decision(progress=progress, notes=(Note("pending", f"{reason}; still pending"),))
    if progress.state is IncidentState.FLAPPING:
        decision = _still_flapping(progress, context, now)
        return replace(
            decision,
            changed=True,
            notes=(Note("flapping", f"{reason}; flapping: nobody paged"),),
        )
    if progress.state is IncidentState.PENDING:  # nobody was paged yet: this is the first page
        return _page(context, IncidentState.TRIGGERED, 0, 0, now, PageEvent.TRIGGER, reason)
    step = min(progress.step, len(context.policy.steps) - 1)
    return _page(context, IncidentState.TRIGGERED, step, 0, now, PageEvent.ESCALATE, reason)


# --- the plan: the state machine run on a virtual clock ------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One page of the planned timeline.

    `step` is 1-based; `round` is 0 on the first pass through the steps and n on the n-th repeat
    of the last step after it, as in an incident's escalation progress. `waited_for_business_hours`
    says that the page waited for the next opening of business hours.
    """

    step: int
    round: int
    tiers: tuple[str, ...]
    at: datetime
    ack_within: timedelta | None
    waited_for_business_hours: bool


def plan_timeline(
    policy: PolicyLike,
    hours: HoursLike | None,
    opened_at: datetime,
    severity: str = "",
    damping: Damping = NO_DAMPING,
) -> list[PlannedStep]:
    """Every page an incident opened at `opened_at` gets if nobody acknowledges it (and it keeps
    firing), in order.

    This is `start` and then `when_due` at every due time, the decisions the engine takes, on a
    virtual clock: the plan cannot disagree with what the daemon does. (Step 1 at `opened_at`, or
    at the end of its pending period; each later page `ack_within` after the one before; with
    `hours`, a page outside business hours waits for the next opening; a step without
    `ack_within` ends the timeline.)
    """
    require_aware(opened_at)
    if not policy.steps:
        return []
    context = Context(severity, policy, hours, damping)
    planned: list[PlannedStep] = []
    now = wanted = opened_at
    decision = start(context, now)
    # Each decision either pages, waits once for the opening, or ends; the pending period adds
    # one wait at the start: this bounds the loop.
    for _ in range(2 * (len(policy.steps) + policy.repeat) + 3):
        planned += [
            PlannedStep(
                step=order.step + 1,
                round=order.round,
                tiers=order.tiers,
                at=now,
                ack_within=policy.steps[order.step].ack_within,
                waited_for_business_hours=now != wanted,
            )
            for order in decision.pages
        ]
        progress = decision.progress
        if progress.next_action is None or progress.next_action_at is None:
            break
        now = progress.next_action_at
        if progress.next_action is not NextAction.PAGE:
            wanted = now
        decision = when_due(progress, context, now)
    return planned


def next_tiers(progress: Progress, context: Context) -> tuple[str, ...]:
    """The tiers the next escalation pages if nobody acknowledges, or () when none follows: the
    decision `when_due` would take at the progress's due time (after any wait for the opening)."""
    if progress.next_action is not NextAction.ESCALATE or progress.next_action_at is None:
        return ()
    decision = when_due(progress, context, progress.next_action_at)
    waited = decision.progress
    if not decision.pages and waited.next_action is NextAction.PAGE and waited.next_action_at:
        decision = when_due(waited, context, waited.next_action_at)
    return decision.pages[0].tiers if decision.pages else ()
