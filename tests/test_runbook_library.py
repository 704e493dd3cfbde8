"""Loading the runbook library, resolving references and links, and choosing a section."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.models import Alert, AlertStatus, Source
from router.runbooks import ATTACH_CONFIDENCE, RunbookLibrary

SHIPPED = Path(__file__).parent.parent / "rules" / "runbooks"

# The catalogue: rule name, its runbook reference, the heading it must resolve to, and the example
# alert (name, labels, annotations).
CATALOGUE = [
    ("service-outage", "incident-response.md#incident-1-complete-service-outage",
     "Incident 1: Complete Service Outage", "ServiceDown", {"service": "api"}, {}),
    ("outage-text", "incident-response.md#incident-1-complete-service-outage",
     "Incident 1: Complete Service Outage", "CheckoutAvailability", {},
     {"summary": "complete outage of checkout"}),
    ("data-corruption", "zkp-ledger.md#data-corruption-detected", "Data Corruption Detected",
     "LedgerDataCorruption", {}, {}),
    ("data-corruption-text", "zkp-ledger.md#data-corruption-detected", "Data Corruption Detected",
     "LedgerAuditMismatch", {}, {"description": "possible data corruption in ledger"}),
    ("security-breach", "security.md#data-breach-or-key-compromise",
     "Data Breach or Key Compromise", "SigningKeyCompromise", {}, {}),
    ("invalid-proofs", "zkp-ledger.md#invalid-proofs", "Invalid Proofs", "InvalidProofsDetected",
     {}, {}),
    ("slow-proof-generation", "zkp-ledger.md#slow-proof-generation", "Slow Proof Generation",
     "ProofGenerationSlow", {"value": "12.4s"}, {}),
    ("high-error-rate", "incident-response.md#incident-2-high-error-rate",
     "Incident 2: High Error Rate", "HighErrorRate", {"value": "35%"}, {}),
    ("storage-errors", "database.md#1-storage-errors", "1. Storage Errors", "StorageErrors",
     {}, {}),
    ("database-performance", "database.md#scenario-2-database-performance",
     "Scenario 2: Database Performance", "DatabaseSlowQueries", {}, {}),
    ("high-memory", "platform.md#high-memory-usage", "High Memory Usage", "HighMemoryUsage",
     {"value": "9.1GB"}, {}),
    ("queue-backlog", "platform.md#queue-backlog", "Queue Backlog", "QueueDepthHigh",
     {"value": "250"}, {}),
    ("elevated-latency", "platform.md#elevated-latency", "Elevated Latency", "HighLatency",
     {"value": "2.5s"}, {}),
    ("metric-gaps", "platform.md#metric-gaps", "Metric Gaps", "MetricsMissing", {}, {}),
    ("documentation", "platform.md#documentation-issues", "Documentation Issues",
     "DocumentationOutdated", {}, {}),
]  # fmt: skip


def alert(name: str, labels: dict[str, str] | None = None, **annotations: str) -> Alert:
    return Alert(
        source=Source.ALERTMANAGER,
        status=AlertStatus.FIRING,
        fingerprint="0" * 16,
        labels={"alertname": name, **(labels or {})},
        annotations=annotations,
        starts_at=None,
    )


@pytest.fixture(scope="module")
def shipped() -> RunbookLibrary:
    return RunbookLibrary.load(SHIPPED)


def test_shipped_runbooks_load_cleanly(shipped: RunbookLibrary) -> None:
    assert shipped.problems == []
    assert shipped.notes == []
    assert set(shipped.files) == {
        "incident-response.md",
        "zkp-ledger.md",
        "database.md",
        "security.md",
        "platform.md",
    }


@pytest.mark.parametrize(
    ("rule", "reference", "heading", "name", "labels", "annotations"),
    CATALOGUE,
    ids=[row[0] for row in CATALOGUE],
)
def test_catalogue_alert_finds_its_section(
    shipped: RunbookLibrary,
    rule: str,
    reference: str,
    heading: str,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> None:
    assert shipped.missing_reference(reference) is None
    example = alert(name, labels, **annotations)

    by_rule = shipped.find(example, rule_runbook=reference, rule_names=[rule])
    assert by_rule.method == "rule"
    assert by_rule.section is not None and by_rule.section.heading == heading
    assert by_rule.score == 1.0

    # Without the rule's reference, the search alone ranks the same section first: attached
    # when it is confident enough, else the first of the possible sections the page lists.
    by_search = shipped.find(example, rule_runbook=None, rule_names=[rule])
    assert by_search.candidates[0].section.reference == reference
    if by_search.confidence >= ATTACH_CONFIDENCE:
        assert (by_search.method, by_search.section) == ("search", by_search.candidates[0].section)
    else:
        assert (by_search.method, by_search.section) == ("none", None)
        assert by_search.possible[0].section.reference == reference
    scores = [c.score for c in by_search.candidates]
    assert scores == sorted(scores, reverse=True)
    assert len({c.section.reference for c in by_search.candidates}) == len(scores)


def test_missing_directory_gives_an_empty_library(tmp_path: Path) -> None:
    library = RunbookLibrary.load(tmp_path / "nowhere")
    assert library.sections == ()
    assert library.problems == []
    match = library.find(alert("ServiceDown"), rule_runbook="x.md#y", rule_names=[])
    assert (match.section, match.method, match.score, match.candidates) == (None, "none", 0.0, ())


def test_a_file_in_place_of_the_directory_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "runbooks").write_text("# not a directory\n")
    library = RunbookLibrary.load(tmp_path / "runbooks")
    assert library.problems == [f"{tmp_path}/runbooks:1: not a directory"]


def test_oversized_and_headingless_files(tmp_path: Path) -> None:
    (tmp_path / "huge.md").write_bytes(b"# Huge\n" + b"x" * (2 * 1024 * 1024))
    (tmp_path / "notes.md").write_text("Only prose, no heading.\n")
    (tmp_path / "good.md").write_text("# Good\n\ntext\n")
    library = RunbookLibrary.load(tmp_path)
    assert library.problems == [
        f"{tmp_path}/huge.md:1: runbook is 2097159 bytes, more than 2097152; skipped"
    ]
    assert library.notes == [
        f"{tmp_path}/notes.md:1: no headings; the whole file is one section, named after it"
    ]
    assert [s.reference for s in library.sections] == ["good.md#good", "notes.md"]
    assert library.get("notes.md") is library.sections[1]
    assert library.sections[1].heading == "notes"


def test_runbooks_in_sub_folders_keep_their_path(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "db.md").write_text("# DB\n\n## Slow Queries\n\ntext\n")
    library = RunbookLibrary.load(tmp_path)
    section = library.get("team/db.md#slow-queries")
    assert section is not None
    assert section.link("https://git.example.com/ops/blob/main") == (
        "https://git.example.com/ops/blob/main/team/db.md#slow-queries"
    )


def test_get_by_reference(shipped: RunbookLibrary) -> None:
    slow = shipped.get("zkp-ledger.md#slow-proof-generation")
    assert slow is not None and slow.heading == "Slow Proof Generation"
    assert shipped.get("./zkp-ledger.md#Slow-Proof-Generation") is slow
    assert shipped.get("zkp-ledger.md#user-content-slow-proof-generation") is slow
    first = shipped.get("zkp-ledger.md")
    assert first is not None and first.heading == "ZKP Ledger Runbook"
    assert shipped.get("zkp-ledger.md#nope") is None
    assert shipped.get("nope.md") is None


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("zkp-ledger.md#slow-proof-generation", None),
        ("zkp-ledger.md", None),
        (
            "zkp-ledger.md#slow-proof",
            "runbook zkp-ledger.md has no heading with anchor #slow-proof "
            "(did you mean #slow-proof-generation?)",
        ),
        (
            "zkp-ledger.md#invalid-proof",
            "runbook zkp-ledger.md has no heading with anchor #invalid-proof "
            "(did you mean #invalid-proofs?)",
        ),
        (
            "database.md#storage-errors",
            "runbook database.md has no heading with anchor #storage-errors "
            "(did you mean #1-storage-errors?)",
        ),
        ("zkp-ledger.md#zzzz", "runbook zkp-ledger.md has no heading with anchor #zzzz"),
        ("zkp_ledger.md#invalid-proofs", f"runbook zkp_ledger.md not found under {SHIPPED} "
         "(did you mean zkp-ledger.md?)"),
        ("#invalid-proofs",
         "runbook reference '#invalid-proofs' names no file (write file.md#anchor)"),
    ],
)  # fmt: skip
def test_missing_reference_messages(
    shipped: RunbookLibrary, reference: str, message: str | None
) -> None:
    assert shipped.missing_reference(reference) == message


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/ops/blob/main/rules/runbooks/zkp-ledger.md#slow-proof-generation",
        "https://wiki.internal/runbooks/zkp-ledger.md#slow-proof-generation",
        "http://git.example.com/ops/zkp-ledger.md?plain=1#user-content-slow-proof-generation",
        "zkp-ledger.md#slow-proof-generation",
        "https://git.example.com/ops/blob/main/zkp-ledger.md#Slow-Proof-Generation",
    ],
)
def test_runbook_annotation_is_resolved_whatever_the_base_url(
    shipped: RunbookLibrary, url: str
) -> None:
    match = shipped.find(alert("Anything", runbook_url=url), rule_runbook=None, rule_names=[])
    assert match.method == "annotation"
    assert match.section is shipped.get("zkp-ledger.md#slow-proof-generation")


def test_short_runbook_annotation_and_file_without_anchor(shipped: RunbookLibrary) -> None:
    match = shipped.find(alert("Anything", runbook="https://x/database.md"), rule_names=[])
    assert (match.method, match.section) == ("annotation", shipped.get("database.md"))


def test_annotation_to_an_unknown_section_falls_back_to_search(shipped: RunbookLibrary) -> None:
    example = alert(
        "StorageErrors", runbook_url="https://wiki.example.com/db/postgres-storage.md#errors"
    )
    match = shipped.find(example, rule_names=[])
    assert match.method == "search"
    assert match.section is shipped.get("database.md#1-storage-errors")


def test_rule_reference_wins_over_annotation(shipped: RunbookLibrary) -> None:
    example = alert("StorageErrors", runbook_url="zkp-ledger.md#invalid-proofs")
    match = shipped.find(example, rule_runbook="database.md#1-storage-errors", rule_names=[])
    assert (match.method, match.section) == ("rule", shipped.get("database.md#1-storage-errors"))


def test_broken_rule_reference_falls_back(shipped: RunbookLibrary) -> None:
    match = shipped.find(
        alert("StorageErrors", runbook_url="zkp-ledger.md#invalid-proofs"),
        rule_runbook="database.md#gone",
        rule_names=[],
    )
    assert (match.method, match.section) == (
        "annotation",
        shipped.get("zkp-ledger.md#invalid-proofs"),
    )


def test_an_alert_without_a_section_gets_none_with_the_best_candidates(
    shipped: RunbookLibrary,
) -> None:
    # A CPU alert shares "high" and "usage" with "High Memory Usage": a near miss, offered as a
    # possible section, never attached.
    match = shipped.find(alert("HighCPUUsage", summary="CPU usage is 97%"), rule_names=[])
    assert (match.method, match.section) == ("none", None)
    assert match.confidence < ATTACH_CONFIDENCE
    assert match.candidates and match.candidates[0].score == match.score
    assert match.candidates[0].confidence == match.confidence
    # The page lists the best two as possible sections, with their confidence.
    assert match.possible == match.candidates[:2]
    # An alert that shares no word with any section has no candidate at all.
    nothing = shipped.find(alert("Watchdog", summary="the alerting pipeline works"), rule_names=[])
    assert (nothing.method, nothing.section, nothing.candidates, nothing.possible) == (
        "none",
        None,
        (),
        (),
    )


def test_a_section_named_after_another_alert_is_less_sure(tmp_path: Path) -> None:
    # Runbooks titled with alert names, as kube-prometheus and the Mimir playbooks write them,
    # say which alert each section is for: "KubeAPIDown" found for KubeAggregatedAPIDown is for
    # another alert, and less sure than the same words written as a title ("Kube API Down").
    text = (
        "# Kubernetes\n\n"
        "## {api}\n\nThe API server disappeared from discovery. Check its pods.\n\n"
        "## {scheduler}\n\nNo scheduler is running: pods stay Pending.\n\n"
        "## Kubelet Down\n\nKubelets do not answer: check the nodes.\n"
    )
    confidence = {}
    for style, api, scheduler in (
        ("alert names", "KubeAPIDown", "KubeSchedulerDown"),
        ("titles", "Kube API Down", "Kube Scheduler Down"),
    ):
        folder = tmp_path / style.replace(" ", "-")
        folder.mkdir()
        (folder / "kubernetes.md").write_text(text.format(api=api, scheduler=scheduler))
        library = RunbookLibrary.load(folder)
        section = library.get("kubernetes.md#" + api.lower().replace(" ", "-"))
        own = library.find(alert("KubeAPIDown"), rule_names=[])
        assert (own.method, own.section) == ("search", section)
        other = library.find(alert("KubeAggregatedAPIDown"), rule_names=[])
        assert other.candidates[0].section == section
        confidence[style] = other.confidence
    assert confidence["alert names"] < confidence["titles"] - 0.01
