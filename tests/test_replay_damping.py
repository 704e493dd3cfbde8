"""Replay with flap damping and maintenance windows: a history recorded by the real service on
rules that damp and suppress, replayed through the same rules, pages what the daemon paged; replayed
through rules without them, it shows the pages they saved.

The history (Tuesday 2026-11-24 from 09:00 UTC, one engine pass a minute):
- LinkFlap (P0, `flapping: {resolves: 1, within: 30m, quiet: 15m}`) fires at 09:00 (paged),
  resolves at 09:05, fires again at 09:10 (flapping: silent), resolves at 09:12: quiet from 09:27.
- SlowThing (P1, pending 2m) fires at 09:00 and resolves at 09:01 (nobody paged); on service
  `pay` it fires at 09:20 and is paged at 09:22, then escalates to `lead` at 09:37.
- SlowNow (P1) fires at 09:15 on `vault`, which the rules' window hides until 09:40: paged then.
- A window made at run time at 09:30 for service `db`, ended early at 09:50: SlowNow on `db` fires
  at 09:35 (suppressed) and pages at 09:50.
Every P0 and P1 page escalates to `lead` when its `ack_within` lapses: nobody acknowledges.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.maintenance.service import NewWindow
from router.replay import replay, simulate
from router.routing import Routing, load_routing
from router.store.history import read_history

from .scenario import FakeClock, alert, running_router, send

Client = TestClient[Any, Any]
DAMPING_RULES = Path(__file__).parent / "fixtures" / "rules" / "damping" / "rules.yaml"
WINDOW = """
maintenance:
  - name: vault-rotation
    matchers: ['service="vault"']
    starts_at: "2026-11-24T09:10:00Z"
    ends_at: "2026-11-24T09:40:00Z"
    reason: key rotation
"""
# Without damping: no pending period, no flap detection, no window.
UNDAMPED = {
    "P1: {aliases: [high], pending: 2m}": "P1: {aliases: [high]}",
    "    flapping: {resolves: 1, within: 30m, quiet: 15m}\n": "",
}


def rules(path: Path, *, damped: bool) -> Routing:
    text = DAMPING_RULES.read_text(encoding="utf-8")
    if damped:
        text += WINDOW
    else:
        for old, new in UNDAMPED.items():
            assert old in text
            text = text.replace(old, new)
    path.mkdir(parents=True)
    (path / "rules.yaml").write_text(text, encoding="utf-8")
    return load_routing(path, os.environ, strict_secrets=False)


def fired(name: str, minute: int, **labels: str) -> dict[str, Any]:
    return alert(name, starts=f"2026-11-24T09:{minute:02d}:00Z", **labels)


def ended(firing: dict[str, Any]) -> dict[str, Any]:
    return {**firing, "status": "resolved"}


async def record(service: RouterService, client: Client, clock: FakeClock) -> None:
    async def at(minute: int) -> None:
        while (clock.now.hour - 9) * 60 + clock.now.minute < minute:
            clock.advance(minutes=1)
            await service.engine.run_once()

    flap, flap_again = fired("LinkFlap", 0, service="net"), fired("LinkFlap", 10, service="net")
    slow_short, slow = fired("SlowThing", 0), fired("SlowThing", 20, service="pay")
    vault, db = fired("SlowNow", 15, service="vault"), fired("SlowNow", 35, service="db")
    await send(client, flap, slow_short)
    await at(1)
    await send(client, ended(slow_short))
    await at(5)
    await send(client, ended(flap))
    await at(10)
    await send(client, flap_again)
    await at(12)
    await send(client, ended(flap_again))
    await at(15)
    await send(client, vault)
    await at(20)
    await send(client, slow)
    await at(30)
    wanted = NewWindow(('service="db"',), clock.now + timedelta(hours=1), name="db-move")
    await service.maintenance.add(wanted, "alice", clock.now)
    await at(35)
    await send(client, db)
    await at(50)
    await service.maintenance.end("db-move", clock.now)
    await service.engine.run_once()  # woken by the early end, as the daemon's loop is
    await at(90)


async def test_replay_applies_pending_flapping_and_windows_as_the_daemon_did(
    tmp_path: Path, database: str
) -> None:
    damped = rules(tmp_path / "damped", damped=True)
    clock = FakeClock()
    async with running_router(tmp_path, clock, database, rules_dir=tmp_path / "damped") as service:
        async with TestClient(TestServer(service.web_app())) as client:
            await record(service, client, clock)
        real = sorted(
            (page.created_at, page.tier, page.event.value)
            for page in await service.store.list_pages()
            if page.event.pages
        )
        start = clock.now.replace(hour=8, minute=0)
        history = read_history(service.settings.database_url, start, start + timedelta(days=1))
    assert [window.name for window in history.windows] == ["db-move"]

    replayed = sorted(
        (page.at, page.tier, page.event)
        for incident in simulate(history, damped)
        for page in incident.pages
    )
    assert replayed == real
    minutes = [(at.strftime("%H:%M"), tier, event) for at, tier, event in replayed]
    assert minutes == [
        ("09:00", "oncall", "trigger"),  # LinkFlap; its re-fire at 09:10 flaps silently
        ("09:05", "lead", "escalate"),
        ("09:22", "oncall", "trigger"),  # SlowThing on pay, after its pending 2m
        ("09:37", "lead", "escalate"),
        ("09:40", "oncall", "trigger"),  # SlowNow on vault, when the rules' window ends
        ("09:50", "oncall", "trigger"),  # SlowNow on db, when the run-time window was ended
        ("09:55", "lead", "escalate"),
        ("10:05", "lead", "escalate"),
    ]

    report = replay(history, damped, rules(tmp_path / "undamped", damped=False))
    assert (report.pages_before, report.pages_after) == (8, 10)
    added = sorted(
        (page.at.strftime("%H:%M"), page.tier) for diff in report.diffs for page in diff.pages_added
    )
    # Undamped: the short SlowThing and the re-fired LinkFlap page at once, vault when it fires
    # (the rules' window is gone; the run-time one still hides db), pay two minutes earlier.
    assert added == [
        ("09:00", "oncall"),
        ("09:10", "oncall"),
        ("09:15", "oncall"),
        ("09:20", "oncall"),
        ("09:30", "lead"),
        ("09:35", "lead"),
    ]
