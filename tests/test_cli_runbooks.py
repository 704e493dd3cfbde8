"""`runbook-router runbooks [DIR]` lists files, sections, anchors and line ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli import main

ROOT = Path(__file__).parent.parent


def test_lists_the_shipped_runbooks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbooks", str(ROOT / "rules")]) == 0
    out = capsys.readouterr().out.splitlines()
    runbooks = ROOT / "rules" / "runbooks"
    assert f"{runbooks}/zkp-ledger.md: 24 sections" in out
    assert (
        "  L83-109    #slow-proof-generation                    ⚠️ High Severity Incidents (P1) › "
        "Slow Proof Generation  [Symptoms, Immediate Actions, Diagnosis, Mitigation]"
    ) in out
    assert (
        "  L85-87     #symptoms-2                               ⚠️ High Severity Incidents (P1) › "
        "Slow Proof Generation › Symptoms  (part)"
    ) in out
    assert out[-1] == "5 files, 56 sections"


def test_notes_and_problems_go_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.md").write_text("# OK\n")
    (tmp_path / "big.md").write_bytes(b"# Big\n" + b"x" * (2 * 1024 * 1024 + 1))
    (tmp_path / "old.md").write_bytes("# Caf\u00e9\n".encode("cp1252"))
    assert main(["runbooks", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{tmp_path}/ok.md: 1 sections",
        "  L1-1       #ok                                       OK",
        f"{tmp_path}/old.md: 1 sections",
        "  L1-1       #café                                     Café",
        "2 files, 2 sections",
    ]
    assert captured.err.splitlines() == [
        f"note: {tmp_path}/old.md:1: not valid UTF-8; read as cp1252",
        f"{tmp_path}/big.md:1: runbook is 2097159 bytes, more than 2097152; skipped",
    ]


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbooks", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err == f"runbook-router: no runbooks directory at {tmp_path}/nope\n"


def test_default_directory_comes_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "a.md").write_text("# A\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROUTER_RULES_DIR", str(tmp_path))
    assert main(["runbooks"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 files, 1 sections"
