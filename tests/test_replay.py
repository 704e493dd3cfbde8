"""`runbook-router replay`: a history recorded by the real service on a moved clock, replayed
through changed rules, on SQLite and PostgreSQL.

The history (Tuesday 2026-11-24, 09:00 UTC, inside business hours):
- 09:00 DataCorruption (P0) fires; acknowledged at 09:04; resolved at 09:20. Under the rules in
  force (step 1 `ack_within: 5m`) nobody but oncall is paged.
- 09:30 SlowThing (P1) fires; acknowledged at 09:40; resolved at 10:10.
- 09:45 DiskFull fires on service a, 09:46 on service b (P3, rule `disk`, grouped by alertname and
  service: two incidents); both resolve at 10:30; nobody acknowledges.

The new rules shorten P0's first `ack_within` to 3m, make SlowThing P2 with a runbook section, and
group DiskFull by alertname only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.app import RouterService
from router.cli import main

from .scenario import SCENARIO_RULES, FakeClock, alert, running_router, send

Client = TestClient[Any, Any]
PERIOD = ["--from", "2026-11-24T08:00:00Z", "--to", "2026-11-25T08:00:00Z"]

NEW_RULES_CHANGES = {
    "- {notify: [oncall], ack_within: 5m}": "- {notify: [oncall], ack_within: 3m}",
    """  - name: slow
    matchers: ['alertname="SlowThing"']
    severity: P1""": """  - name: slow
    matchers: ['alertname="SlowThing"']
    severity: P2
    runbook: ledger.md#slow-thing""",
}
DISK_RULE = """  - name: disk
    matchers: ['alertname="DiskFull"']
    severity: P3
"""
RUNBOOK = """# Ledger

## Slow Thing

Symptoms: the ledger is slow.

Immediate actions: restart the slow thing.
"""


def rules_dir(path: Path, *, new: bool) -> Path:
    """The scenario rules plus a DiskFull rule; with `new`, the changed rules and a runbook."""
    text = (SCENARIO_RULES / "rules.yaml").read_text(encoding="utf-8") + DISK_RULE
    if new:
        for old, changed in NEW_RULES_CHANGES.items():
            assert old in text
            text = text.replace(old, changed)
        text += "    group_by: [alertname]\n"
        (path / "runbooks").mkdir(parents=True)
        (path / "runbooks" / "ledger.md").write_text(RUNBOOK, encoding="utf-8")
    path.mkdir(parents=True, exist_ok=True)
    (path / "rules.yaml").write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("ROUTER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    yield


@pytest.fixture
async def recorded(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> AsyncIterator[RouterService]:
    """The service after the history above; ROUTER_DATABASE_URL and ROUTER_RULES_DIR point at
    its database and its rules."""
    in_force = rules_dir(tmp_path / "in-force", new=False)
    clock = FakeClock()
    async with running_router(tmp_path, clock, database, rules_dir=in_force) as service:
        async with TestClient(TestServer(service.web_app())) as client:
            await record_history(service, client, clock)
        monkeypatch.setenv("ROUTER_DATABASE_URL", service.settings.database_url)
        monkeypatch.setenv("ROUTER_RULES_DIR", str(in_force))
        yield service


async def record_history(service: RouterService, client: Client, clock: FakeClock) -> None:
    async def at(minute: int) -> None:
        while (clock.now.hour - 9) * 60 + clock.now.minute < minute:
            clock.advance(minutes=1)
            await service.engine.run_once()

    async def ack(incident: int) -> None:
        response = await client.post(f"/api/v1/incidents/{incident}/ack", json={"by": "alice"})
        assert response.status == 200

    corruption = alert("DataCorruption", starts="2026-11-24T09:00:00Z")
    slow = alert("SlowThing", starts="2026-11-24T09:30:00Z")
    disk_a = alert("DiskFull", starts="2026-11-24T09:45:00Z", service="a")
    disk_b = alert("DiskFull", starts="2026-11-24T09:46:00Z", service="b")
    await send(client, corruption)
    await at(4)
    await ack(1)
    await at(20)
    await send(client, resolved(corruption))
    await at(30)
    await send(client, slow)
    await at(40)
    await ack(2)
    await at(45)
    await send(client, disk_a)
    await at(46)
    await send(client, disk_b)
    await at(70)
    await send(client, resolved(slow))
    await at(90)
    await send(client, resolved(disk_a), resolved(disk_b))
    await at(180)


def resolved(fired: dict[str, Any]) -> dict[str, Any]:
    return {**fired, "status": "resolved", "endsAt": "2026-11-24T10:30:00Z"}


def replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["replay", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sqlite_files(service: RouterService) -> dict[str, str]:
    path = Path(service.settings.database_url.removeprefix("sqlite:///"))
    return {
        file.name: hashlib.sha256(file.read_bytes()).hexdigest()
        for file in sorted(path.parent.glob(path.name + "*"))
    }


async def test_unchanged_rules_replay_to_no_difference(
    recorded: RouterService, capsys: pytest.CaptureFixture[str]
) -> None:
    in_force = os.environ["ROUTER_RULES_DIR"]
    code, out, err = replay(capsys, "--rules", in_force, *PERIOD, "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["unchanged"] is True
    assert document["differences"] == []
    assert document["alerts"] == 4
    assert document["incidents"] == {"before": 4, "after": 4}
    # The replay of the rules in force pages what the daemon paged.
    real = [page for page in await recorded.store.list_pages() if page.event.pages]
    assert document["pages"] == {"before": len(real), "after": len(real)}
    code, out, _ = replay(capsys, "--rules", in_force, *PERIOD)
    assert code == 0
    assert "no difference" in out


async def test_changed_rules_show_every_difference(
    recorded: RouterService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = rules_dir(tmp_path / "new", new=True)
    before = sqlite_files(recorded) if recorded.store.dialect == "sqlite" else {}  # type: ignore[attr-defined]
    code, out, err = replay(capsys, "--rules", str(new), *PERIOD, "--json")
    assert (code, err) == (3, "")
    document = json.loads(out)
    assert document["incidents"] == {"before": 4, "after": 3}
    diffs = {(d["alertname"], d["opened_at"]): d for d in document["differences"]}
    assert sorted(diffs) == [
        ("DataCorruption", "2026-11-24T09:00:00Z"),
        ("DiskFull", "2026-11-24T09:45:00Z"),
        ("DiskFull", "2026-11-24T09:46:00Z"),
        ("SlowThing", "2026-11-24T09:30:00Z"),
    ]

    corruption = diffs[("DataCorruption", "2026-11-24T09:00:00Z")]
    assert corruption["changes"] == []
    assert corruption["pages_removed"] == []
    assert corruption["pages_added"] == [
        {
            "tier": "lead",
            "step": 2,
            "round": 0,
            "event": "escalate",
            "at": "2026-11-24T09:03:00Z",
            "minute": 3,
        }
    ]
    assert corruption["higher_tier"] == {
        "step_before": 1,
        "tiers_before": ["oncall"],
        "step_after": 2,
        "tiers_after": ["lead"],
        "reached_minute": 3,
        "acknowledged_minute": 4,
    }

    slow = diffs[("SlowThing", "2026-11-24T09:30:00Z")]
    assert slow["changes"] == [
        {"what": "severity", "before": "P1", "after": "P2"},
        {"what": "runbook", "before": None, "after": "ledger.md#slow-thing"},
    ]
    assert (slow["pages_added"], slow["pages_removed"], slow["higher_tier"]) == ([], [], None)

    first_disk = diffs[("DiskFull", "2026-11-24T09:45:00Z")]
    assert first_disk["changes"] == [
        {
            "what": "incident_key",
            "before": "disk|alertname=DiskFull|service=a",
            "after": "disk|alertname=DiskFull",
        },
        {"what": "alerts", "before": "1", "after": "2"},
    ]
    assert first_disk["pages_added"] == first_disk["pages_removed"] == []
    second_disk = diffs[("DiskFull", "2026-11-24T09:46:00Z")]
    assert second_disk["after"] is None
    assert second_disk["changes"] == [
        {"what": "opens", "before": "incident", "after": "joins disk|alertname=DiskFull"}
    ]
    assert second_disk["pages_added"] == []
    assert second_disk["pages_removed"] == [
        {
            "tier": "queue",
            "step": 1,
            "round": 0,
            "event": "trigger",
            "at": "2026-11-24T09:46:00Z",
            "minute": 0,
        }
    ]
    assert document["pages_per_day"] == [
        {"day": "2026-11-24", "tier": "lead", "before": 0, "after": 1},
        {"day": "2026-11-24", "tier": "oncall", "before": 2, "after": 2},
        {"day": "2026-11-24", "tier": "queue", "before": 2, "after": 1},
    ]

    code, out, err = replay(capsys, "--rules", str(new), *PERIOD)
    assert (code, err) == (3, "")
    assert "  + page  lead           step 2 at +3m (escalate, 2026-11-24 09:03 UTC)" in out
    assert "  escalates further: step 2 (lead) at +3m instead of step 1 (oncall); " in out
    assert "acknowledged at +4m" in out
    assert "  severity      P1 -> P2" in out
    assert "  2026-11-24  queue                 2      1  -1" in out
    # Read-only: the database files are byte for byte what they were.
    if before:
        assert sqlite_files(recorded) == before
    assert len(await recorded.store.list_incidents(None, 100)) == 4


async def test_a_period_without_alerts_replays_to_nothing(
    recorded: RouterService, capsys: pytest.CaptureFixture[str]
) -> None:
    period = ["--from", "2026-11-25T00:00:00Z", "--to", "2026-11-26T00:00:00Z"]
    code, out, _ = replay(capsys, "--rules", os.environ["ROUTER_RULES_DIR"], *period, "--json")
    assert code == 0
    assert json.loads(out)["alerts"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "7d", "--from", "2026-11-24T00:00:00Z"], "either --since or --from"),
        (["--from", "2026-11-24T00:00:00Z"], "--from and --to go together"),
        (["--from", "2026-11-25T00:00:00Z", "--to", "2026-11-24T00:00:00Z"], "must be before"),
    ],
)
def test_a_bad_period_names_the_option(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    code, out, err = replay(capsys, "--rules", str(SCENARIO_RULES), *args)
    assert code == 2
    assert message in err
    assert out == ""


def test_a_bad_since_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", "--rules", str(SCENARIO_RULES), "--since", "seven days"])
    assert exit_info.value.code == 2
    assert "--since" in capsys.readouterr().err


def test_bad_new_rules_name_the_option_and_the_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROUTER_RULES_DIR", str(SCENARIO_RULES))
    bad = tmp_path / "bad"
    shutil.copytree(SCENARIO_RULES, bad)
    (bad / "rules.yaml").write_text("severities: [", encoding="utf-8")
    code, _out, err = replay(capsys, "--rules", str(bad))
    assert code == 1
    assert f"--rules {bad}" in err
    assert "rules.yaml" in err


def test_a_missing_database_is_an_error_that_creates_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROUTER_RULES_DIR", str(SCENARIO_RULES))
    missing = tmp_path / "nowhere" / "router.db"
    monkeypatch.setenv("ROUTER_DATABASE_URL", f"sqlite:///{missing}")
    code, _out, err = replay(capsys, "--rules", str(SCENARIO_RULES))
    assert code == 1
    assert f"ROUTER_DATABASE_URL: no database file at {missing}" in err
    assert not missing.parent.exists()
