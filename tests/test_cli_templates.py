"""`runbook-router templates export DIR`: the shipped page templates, copied out to start an override."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from router.cli import main
from router.outbox.render import PACKAGED_TEMPLATES

ROOT = Path(__file__).resolve().parent.parent


def test_export_writes_every_template_and_check_accepts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    assert main(["templates", "export", str(rules / "templates")]) == 0
    out = capsys.readouterr().out.splitlines()
    count = len(list(PACKAGED_TEMPLATES.rglob("*.j2")))
    assert out[-1] == (
        f"{count} templates written; keep only the ones you change, the others then follow the "
        "shipped ones"
    )
    assert str(rules / "templates" / "log" / "trigger.j2") in out
    assert main(["check", str(rules)]) == 0


def test_export_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "log" / "trigger.j2"
    mine.parent.mkdir()
    mine.write_text("mine")
    assert main(["templates", "export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "1 template(s) already in" in err and "--force overwrites them" in err
    assert f"{mine}: exists" in err
    assert mine.read_text() == "mine"
    assert not (tmp_path / "apprise").exists(), "nothing is written when anything is in the way"
    assert main(["templates", "export", "--force", str(tmp_path)]) == 0
    assert mine.read_bytes() == (PACKAGED_TEMPLATES / "log" / "trigger.j2").read_bytes()
