"""`runbook-router check`: golden messages over tests/fixtures/rules/, and loading behaviour.

Each `bad_*.yaml` (one defect each), `warn_*.yaml` and `several_*.yaml` fixture is checked together
with the valid files of `tests/fixtures/rules/base/`. Its last lines hold the exact expected output
and exit code:

    # expect exit 1:
    # | bad_example.yaml:4: rule x: ...
    # | rules invalid: 1 error

`UPDATE_GOLDEN=1 pytest tests/test_rules_check.py` rewrites those lines from the current output;
read the diff before committing it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from router.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
BASE = FIXTURES / "base"
CASES = sorted(
    path
    for pattern in ("bad_*.yaml", "warn_*.yaml", "several_*.yaml")
    for path in FIXTURES.glob(pattern)
)
EXPECT_MARK = "# expect exit "
LINE_MARK = "# | "


def split_expectation(text: str) -> tuple[str, int | None, list[str]]:
    """The fixture without its expectation, the expected exit code, and the expected lines."""
    head, mark, tail = text.partition(EXPECT_MARK)
    if not mark:
        return text, None, []
    first, *rest = tail.splitlines()
    code = int(first.rstrip(":"))
    return head, code, [line.removeprefix(LINE_MARK) for line in rest if line.startswith(LINE_MARK)]


@pytest.fixture
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(BASE, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("RULES_FIXTURE_"):
            monkeypatch.delenv(name)
    return tmp_path


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, captured.out.splitlines()


@pytest.mark.parametrize("fixture", CASES, ids=[path.name for path in CASES])
def test_check_messages(fixture: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = fixture.read_text(encoding="utf-8")
    head, expected_code, expected_lines = split_expectation(text)
    shutil.copy(fixture, rules_dir / fixture.name)
    code, lines = run_check(capsys, ".")
    if os.environ.get("UPDATE_GOLDEN"):
        expectation = [f"{EXPECT_MARK}{code}:", *(LINE_MARK + line for line in lines)]
        fixture.write_text(head.rstrip("\n") + "\n\n" + "\n".join(expectation) + "\n", "utf-8")
        return
    assert expected_code is not None, f"{fixture.name} has no '# expect exit N:' lines"
    assert (code, lines) == (expected_code, expected_lines)
    if fixture.name.startswith("bad_"):
        errors = [line for line in lines[:-1] if ": warning: " not in line]
        assert len(errors) == 1, "a bad_ fixture has exactly one defect"
        assert errors[0].startswith(f"{fixture.name}:")


def test_the_base_fixture_is_valid(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(capsys, ".") == (
        0,
        ["rules OK: 1 rules, 3 tiers, 1 policies, 4 severities, 1 runbooks (2 sections)"],
    )


def test_no_rules_is_a_warning(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = rules_dir / "00-base.yaml"
    text = base.read_text(encoding="utf-8")
    base.write_text(text[: text.index("rules:")], encoding="utf-8")
    assert run_check(capsys, ".") == (
        0,
        [
            "00-base.yaml: warning: no rules: every alert is classified by its severity label "
            "alone, else as P3 (default_severity)",
            "rules OK: 0 rules, 3 tiers, 1 policies, 4 severities, 1 runbooks (2 sections)",
        ],
    )


def test_a_yaml_error_does_not_hide_a_wrong_runbook_anchor_elsewhere(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = rules_dir / "00-base.yaml"
    text = base.read_text(encoding="utf-8")
    base.write_text(text.replace("service.md#service-down", "service.md#no-such-anchor"))
    (rules_dir / "10-broken.yaml").write_text('rules:\n  - name: x\n    matchers: [a="b"\n')
    code, lines = run_check(capsys, ".")
    assert code == 1
    assert lines[0].startswith("10-broken.yaml:4: YAML error: ")
    assert lines[1].startswith("00-base.yaml:") and "#no-such-anchor" in lines[1]
    assert lines[-1] == "rules invalid: 2 errors"
