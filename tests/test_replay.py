"""`runbook-router replay`: the history of tests/history.py, recorded by the real service on a
moved clock, replayed through changed rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from router.app import RouterService
from router.cli import main

from .history import clean_env_fixture, recorded_fixture, rules_dir
from .scenario import SCENARIO_RULES

PERIOD = ["--from", "2026-11-24T08:00:00Z", "--to", "2026-11-25T08:00:00Z"]


clean_env = clean_env_fixture
recorded = recorded_fixture


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
    on_sqlite = recorded.settings.database_url.startswith("sqlite")
    before = sqlite_files(recorded) if on_sqlite else {}
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
