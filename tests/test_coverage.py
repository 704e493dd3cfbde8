"""`runbook-router check --coverage`: rules and stored alerts that would page without a runbook
section, and `--fail-under` as a gate, over the history of tests/history.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.app import RouterService
from router.cli import main
from router.coverage import ChangedSection, coverage
from router.history import History, HistoryIncident
from router.routing import load_routing

from .conftest import ROOT
from .history import clean_env_fixture, recorded_fixture, rules_dir

clean_env = clean_env_fixture
recorded = recorded_fixture


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


# The history is of 2026-11-24: a period long enough to reach it from any day of the tests' life.
SINCE = ["--since", "100y"]


async def test_rules_in_force_page_p0_and_p1_without_a_section(
    recorded: RouterService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_force = str(tmp_path / "in-force")
    code, out, err = check(capsys, in_force, "--coverage", *SINCE, "--fail-under", "P1")
    assert (code, err) == (1, "")
    gaps = out[
        out.index(
            "runbook coverage: rules that name no runbook section and found none in the period"
        ) :
    ]
    assert [line.split()[:2] + line.split()[-1:] for line in gaps[1:4]] == [
        ["P0", "corruption", "1x"],
        ["P1", "slow", "1x"],
        ["P3", "disk", "2x"],
    ]
    alerts = out[
        out.index(next(line for line in out if line.startswith("alerts that would page"))) + 1 :
    ]
    assert [line.split() for line in alerts[:3]] == [
        ["P0", "DataCorruption", "rule", "corruption", "fired", "1x"],
        ["P1", "SlowThing", "rule", "slow", "fired", "1x"],
        ["P3", "DiskFull", "rule", "disk", "fired", "2x"],
    ]
    assert out[-1].startswith("coverage FAILED: 4 at P1 or above would page without a runbook")
    assert "rule corruption (P0, " in out[-1]
    assert "alert SlowThing (P1, fired 1x)" in out[-1]
    # Without --fail-under the report is information: exit 0.
    code, _out, _err = check(capsys, in_force, "--coverage", *SINCE)
    assert code == 0


async def test_a_section_for_every_p1_passes_the_p1_gate_but_not_p3(
    recorded: RouterService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = rules_dir(tmp_path / "new", new=True)
    rules = new / "rules.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace(
            "severity: P0\n", "severity: P0\n    runbook: ledger.md#slow-thing\n", 1
        ),
        encoding="utf-8",
    )
    code, out, err = check(capsys, str(new), "--coverage", *SINCE, "--fail-under", "P1")
    assert (code, err) == (0, "")
    assert out[-1] == "coverage OK: nothing at P1 or above pages without a runbook section"
    code, out, _ = check(capsys, str(new), "--coverage", *SINCE, "--fail-under", "P3")
    assert code == 1
    assert out[-1].startswith("coverage FAILED: 2 at P3 or above")


def test_without_a_history_the_rules_alone_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    in_force = rules_dir(tmp_path / "rules", new=False)
    code, out, err = check(capsys, str(in_force), "--coverage", "--fail-under", "P0")
    assert (code, err) == (1, "")
    assert any(line.startswith("no alert history: ROUTER_DATABASE_URL is unset") for line in out)
    assert out[-1] == (
        "coverage FAILED: 1 at P0 or above would page without a runbook section: "
        f"rule corruption (P0, {in_force / 'rules.yaml'}:42)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-under", "P1"], "--since and --fail-under go with --coverage"),
        (["--coverage", "--fail-under", "P9"], "--fail-under P9: no such severity"),
    ],
)
def test_bad_coverage_options_are_named(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    in_force = rules_dir(tmp_path / "rules", new=False)
    code, _out, err = check(capsys, str(in_force), *args)
    assert code == 2
    assert message in err


def test_sections_changed_since_incidents_carried_them_are_listed() -> None:
    routing = load_routing(ROOT / "rules", {}, strict_secrets=False)
    current = routing.runbooks.get("zkp-ledger.md#data-corruption-detected")
    assert current is not None
    at = datetime(2026, 11, 24, tzinfo=UTC)

    def incident(number: int, runbook: str, content_hash: str) -> HistoryIncident:
        return HistoryIncident(number, f"k{number}", "P0", at, None, None, runbook, content_hash)

    history = History(
        at,
        at,
        (),
        {
            1: incident(1, "zkp-ledger.md#data-corruption-detected", current.content_hash),
            2: incident(2, "zkp-ledger.md#data-corruption-detected", "0123456789abcdef"),
            3: incident(3, "zkp-ledger.md#data-corruption-detected", "0123456789abcdef"),
            4: incident(4, "zkp-ledger.md#a-section-since-removed", "fedcba9876543210"),
        },
    )
    assert coverage(routing, history).changed == (
        ChangedSection("zkp-ledger.md#a-section-since-removed", 1, gone=True),
        ChangedSection("zkp-ledger.md#data-corruption-detected", 2, gone=False),
    )
