"""Runbooks parse into the sections a person sees, in every house style teams write them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from router.runbooks import RunbookLibrary, Section
from router.runbooks.sections import parse_runbook, part_label
from router.runbooks.source import decode_runbook

STYLES = Path(__file__).parent / "fixtures" / "runbooks" / "styles"
STYLE_FILES = sorted(STYLES.glob("*.md"))


def _load_one(tmp_path: Path, fixture: Path) -> RunbookLibrary:
    shutil.copy(fixture, tmp_path / fixture.name)
    return RunbookLibrary.load(tmp_path)


@pytest.mark.parametrize("fixture", STYLE_FILES, ids=[f.stem for f in STYLE_FILES])
def test_style_fixture_parses_to_expected_sections(tmp_path: Path, fixture: Path) -> None:
    expected = yaml.safe_load(fixture.with_suffix(".expected.yaml").read_text(encoding="utf-8"))
    library = _load_one(tmp_path, fixture)

    got = [
        {
            "anchor": s.anchor,
            "path": list(s.path),
            "lines": [s.line_start, s.line_end],
            "parts": list(s.parts),
            "code_blocks": len(s.code_blocks),
            "steps": len(s.steps),
            **({"is_part": True} if s.is_part else {}),
        }
        for s in library.sections
    ]
    assert got == expected["sections"]
    assert [n.replace(f"{tmp_path}/", "") for n in library.notes] == expected["notes"]
    assert library.problems == []


def test_every_style_fixture_has_its_expectation() -> None:
    assert len(STYLE_FILES) >= 10
    for fixture in STYLE_FILES:
        assert fixture.with_suffix(".expected.yaml").is_file(), fixture.name


def _section(library: RunbookLibrary, anchor: str) -> Section:
    found = [s for s in library.sections if s.anchor == anchor]
    assert len(found) == 1, anchor
    return found[0]


def test_mojibake_is_repaired_in_headings_and_text(tmp_path: Path) -> None:
    library = _load_one(tmp_path, STYLES / "mojibake.md")
    sync = _section(library, "sync-stalled--restart")
    assert sync.heading == "Sync Stalled → Restart"
    assert sync.parts["Symptoms"] == "the node doesn’t follow the chain; “head” is stuck."
    assert "1. Check the peer → `ledgerctl peers`" in sync.text
    assert "the arrow as → (a retyped quote)" in sync.text
    assert "â" not in sync.text and "ð" not in sync.text
    assert library.sections[0].heading == "🚨 Ledger Alerts"
    # Text that was right to begin with is left alone.
    export = _section(library, "résumé-export")
    assert export.text == "Retry the export — it is idempotent."


def test_correct_utf8_is_not_touched() -> None:
    text = "# Café\n\nnaïve → “quoted” — 🚨 Ã is a letter too\n"
    assert decode_runbook(text.encode("utf-8")).text == text
    assert decode_runbook(text.encode("utf-8")).repaired_lines == ()


def test_cp1252_file_is_read_with_a_note(tmp_path: Path) -> None:
    library = _load_one(tmp_path, STYLES / "cp1252.md")
    assert library.notes == [f"{tmp_path}/cp1252.md:1: not valid UTF-8; read as cp1252"]
    espresso = _section(library, "espresso-machine-down")
    assert espresso.parts["Symptoms"] == "no coffee – the détartrage light is on."


def test_crlf_file_matches_its_lf_twin(tmp_path: Path) -> None:
    crlf_bytes = (STYLES / "crlf.md").read_bytes()
    assert b"\r\n" in crlf_bytes
    from_crlf = parse_runbook("x.md", decode_runbook(crlf_bytes).text)
    from_lf = parse_runbook("x.md", decode_runbook(crlf_bytes.replace(b"\r\n", b"\n")).text)
    assert from_crlf == from_lf
    restart = from_crlf[1]
    assert "\r" not in restart.text
    assert restart.code_blocks[0].code == "Restart-Service -Name api\nGet-Service -Name api\n"
    assert restart.code_blocks[0].language == "powershell"


def test_front_matter_is_not_a_heading_and_keeps_line_numbers(tmp_path: Path) -> None:
    library = _load_one(tmp_path, STYLES / "front-matter.md")
    assert [s.heading for s in library.sections] == ["Search Service", "Index Lag"]
    assert library.sections[0].line_start == 7


def test_thematic_break_at_the_top_is_not_front_matter() -> None:
    text = "---\nSome prose that starts the file.\n\n# Title\n"
    assert decode_runbook(text.encode()).text == text


def test_nested_code_in_lists_stays_with_its_step(tmp_path: Path) -> None:
    library = _load_one(tmp_path, STYLES / "numbered.md")
    down = _section(library, "1-sequencer-down")
    assert [c.code for c in down.code_blocks] == [
        "kubectl -n rollup get pods -l app=sequencer\n",
        "kubectl -n rollup rollout restart deploy/sequencer\n",
    ]
    assert down.steps[1].startswith("Restart it:\n   - on Kubernetes:\n     ```bash")
    assert down.steps[1].endswith("- on the VM fallback: `systemctl restart sequencer`")
    step_blocks = [b for b in down.blocks if b.kind == "list_item"]
    assert [b.has_code for b in step_blocks] == [True, True, False]


def test_sub_heading_parts_belong_to_their_incident_only(tmp_path: Path) -> None:
    library = _load_one(tmp_path, STYLES / "emoji.md")
    stuck = _section(library, "-invoice-generation-stuck")
    assert stuck.parts["Symptoms"] == "- Invoices stay in `pending`"
    assert stuck.parts["Immediate Actions"] == "```bash\nbillingctl jobs --stuck\n```"
    assert stuck.parts["Mitigation"] == "- Requeue: `billingctl requeue --all`"
    critical = _section(library, "-critical-alerts")
    assert dict(critical.parts) == {}


def test_mermaid_tables_and_html_are_kept_as_blocks(tmp_path: Path) -> None:
    library = _load_one(tmp_path, STYLES / "tables-mermaid.md")
    overview = _section(library, "overview")
    assert [b.kind for b in overview.blocks] == ["table", "diagram", "quote"]
    assert overview.code_blocks[0].language == "mermaid"
    gateway = _section(library, "gateway")
    assert gateway.blocks[0].kind == "html"


@pytest.mark.parametrize(
    ("label", "canonical"),
    [
        ("Symptoms", "Symptoms"),
        ("🩺 Symptoms:", "Symptoms"),
        ("Immediate Actions", "Immediate Actions"),
        ("1. Immediate Actions", "Immediate Actions"),
        ("Investigation Steps", "Investigation Steps"),
        ("Diagnostic Commands", "Diagnosis"),
        ("🔍 Diagnosis", "Diagnosis"),
        ("Mitigation Options", "Mitigation"),
        ("Resolution", "Resolution"),
        ("Escalation Path", "Escalation"),
        ("Prevention", "Prevention"),
        ("Slow Proof Generation", None),
        ("Symptoms {#symptoms}", "Symptoms"),
        ("Cause 2: EKS on a custom CNI", "Causes"),
        ("Other causes", "Causes"),
        ("Solution 1 - raise the limit", "Mitigation"),
        ("Incident 3: High error rate", None),
        ("Note", None),
        ("Longer Answer", "Symptoms"),
    ],
)
def test_part_labels(label: str, canonical: str | None) -> None:
    assert part_label(label) == canonical
