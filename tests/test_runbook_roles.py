"""Sections have roles: only incidents are attached; parts rank as their incident; evidence is specific."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.models import Alert
from router.runbooks import RunbookLibrary
from router.runbooks.roles import (
    SectionRole,
    looks_like_alert_name,
    looks_procedural,
    named_role,
    normalise_heading,
    shape_role,
)
from router.runbooks.search import terms
from router.runbooks.sections import Block, parse_runbook

from .alerts import make_alert

REDIS = """\
# Redis

## Topics

- [Redis down](#redis-down)
- [Replication broken](#replication-broken)
- [Memory full](#memory-full)

## Dashboards

- [Redis overview](https://grafana.example.com/d/redis-overview/redis?var-service=redis)
- [Redis latency](https://grafana.example.com/d/redis-latency/redis?var-service=redis)
- [Redis replication](https://grafana.example.com/d/redis-repl/redis?var-service=redis)

## Redis down

The primary does not answer PING and clients time out.

### Possible checks

- `redis-cli -h redis-primary PING`

### Get Redis master

```bash
redis-cli -p 26379 SENTINEL get-master-addr-by-name mymaster
```

### Solution

Fail over with Sentinel.

## Replication broken

A replica reports `master_link_status:down`.

## Cheat sheet

```bash
redis-cli INFO replication
redis-cli INFO memory
```
"""


def _sections(text: str, file: str = "redis.md") -> dict[str, tuple[SectionRole, tuple[str, ...]]]:
    return {s.anchor: (s.role, tuple(s.parts)) for s in parse_runbook(file, text)}


def test_roles_of_a_service_runbook() -> None:
    roles = _sections(REDIS)
    assert roles["redis"][0] is SectionRole.CONTAINER
    assert roles["topics"][0] is SectionRole.NAVIGATION
    assert roles["dashboards"][0] is SectionRole.REFERENCE
    assert roles["cheat-sheet"][0] is SectionRole.REFERENCE
    assert roles["replication-broken"][0] is SectionRole.INCIDENT
    # Known and unknown sub-headings of an incident are its parts, in its text.
    assert roles["redis-down"] == (
        SectionRole.INCIDENT,
        ("Diagnosis", "Get Redis master", "Mitigation"),
    )
    for part in ("possible-checks", "get-redis-master", "solution"):
        assert roles[part][0] is SectionRole.PART


def test_an_alert_named_heading_holds_its_sub_headings_as_parts() -> None:
    text = (
        "# Playbooks\n\n## Alerts\n\n### LedgerSyncStalled\n\nAn ingester is unhealthy.\n\n"
        "#### How the ring works\n\nText.\n\n#### Fixing it\n\nForget the ingester.\n\n"
        "### OtherAlertName\n\nText.\n"
    )
    roles = _sections(text, "playbooks.md")
    assert roles["ledgersyncstalled"][0] is SectionRole.INCIDENT
    assert roles["how-the-ring-works"][0] is SectionRole.PART
    assert roles["fixing-it"][0] is SectionRole.PART
    assert roles["alerts"][0] is SectionRole.CONTAINER
    assert roles["otheralertname"][0] is SectionRole.INCIDENT


def test_a_sub_heading_that_recurs_in_the_page_is_a_part_of_its_section() -> None:
    text = (
        "# Connections\n\n## Lifecycle\n\nConnections are long-lived.\n\n"
        "### Protocol Differences\n\n#### AMQP\n\nText.\n\n#### MQTT\n\nText.\n\n"
        "## Error Handling\n\nErrors close channels.\n\n"
        "### Protocol Differences\n\n#### AMQP\n\nText.\n\n"
        "## Connection Churn\n\nShort-lived connections exhaust sockets.\n"
    )
    roles = _sections(text, "connections.md")
    assert roles["lifecycle"][0] is SectionRole.INCIDENT
    assert roles["error-handling"][0] is SectionRole.INCIDENT
    for variant in ("protocol-differences", "amqp", "mqtt", "protocol-differences-1", "amqp-1"):
        assert roles[variant][0] is SectionRole.PART
    assert roles["connection-churn"][0] is SectionRole.INCIDENT


def test_the_answers_under_a_question_are_its_parts() -> None:
    text = (
        "# FAQ\n\n## Certificates\n\n### Why are passwords on key stores not helpful?\n\n"
        "#### Simple Answer\n\nThey protect nothing the Secret does not.\n\n"
        "#### Longer Answer\n\nThe password sits next to the file.\n\n"
        "### When do certificates get re-issued?\n\nBefore they expire.\n"
    )
    roles = _sections(text, "faq.md")
    question = roles["why-are-passwords-on-key-stores-not-helpful"]
    assert question == (SectionRole.INCIDENT, ("Symptoms",))
    assert roles["simple-answer"][0] is SectionRole.PART
    assert roles["longer-answer"][0] is SectionRole.PART


def test_a_per_alert_file_is_one_incident() -> None:
    text = "# KubeThingDown\n\n## Meaning\n\nIt is down.\n\n## Impact\n\nNone.\n\n## Mitigation\n\nRestart.\n"
    roles = _sections(text, "KubeThingDown.md")
    assert roles["kubethingdown"] == (SectionRole.INCIDENT, ("Symptoms", "Impact", "Mitigation"))


def test_a_front_matter_title_makes_the_page_a_section() -> None:
    sections = parse_runbook(
        "alerts/disk-full.html.md",
        "\n" * 4
        + "Description\n\nThe disk is full.\n\n## Potential resolution steps\n\nDelete logs.\n",
        page_title="Disk full",
    )
    page = sections[0]
    assert (page.heading, page.anchor, page.reference, page.level) == (
        "Disk full",
        "",
        "alerts/disk-full.html.md",
        0,
    )
    assert page.role is SectionRole.INCIDENT
    assert "The disk is full." in page.text


@pytest.mark.parametrize(
    "template", ["<%= current_page.data.title %>", "{{ page.title }}", "{{ .Title }}"]
)
def test_a_heading_that_is_a_template_expression_reads_as_the_front_matter_title(
    template: str,
) -> None:
    sections = parse_runbook(
        "velero.html.md",
        f"\n\n# {template}\n\nVelero backs the cluster up.\n\n## Failed backups\n\nRetry.\n",
        page_title="Velero - Cluster backups",
    )
    assert [(s.heading, s.anchor) for s in sections] == [
        ("Velero - Cluster backups", "velero---cluster-backups"),
        ("Failed backups", "failed-backups"),
    ]
    # Without a front matter title there is nothing to read it as: it stays as written.
    (untitled, _) = parse_runbook("velero.md", f"# {template}\n\nText.\n\n## Failed backups\n")
    assert untitled.heading == template


@pytest.mark.parametrize(
    ("heading", "role"),
    [
        ("Table of Contents", SectionRole.NAVIGATION),
        ("📚 Topics", SectionRole.NAVIGATION),
        ("Useful links", SectionRole.REFERENCE),
        ("Kafka cheat sheet", SectionRole.REFERENCE),
        ("2. Glossary", SectionRole.REFERENCE),
        ("Post-mortem", SectionRole.REFERENCE),
        ("Overview {#overview}", SectionRole.REFERENCE),
        ("Redis down", None),
        ("Dashboard not loading", None),
    ],
)
def test_named_roles(heading: str, role: SectionRole | None) -> None:
    assert named_role(heading) is role


def test_shape_roles() -> None:
    links = [
        Block("list_item", f"- [Panel {n}](https://grafana.example.com/d/{n})", n) for n in range(4)
    ]
    assert shape_role(links) is SectionRole.REFERENCE
    index = [Block("list_item", f"- [Problem {n}](problem-{n}.md)", n) for n in range(4)]
    assert shape_role(index) is SectionRole.NAVIGATION
    prose = [Block("paragraph", "The queue grows because consumers are stuck; see the logs.", 1)]
    assert shape_role(prose) is None


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("KubePodCrashLooping", True),
        ("`LedgerSyncStalled`", True),
        ("node_disk_full", True),
        ("Redis down", False),
        ("Checkout", False),
        ("HTTP", False),
    ],
)
def test_alert_names_as_headings(heading: str, expected: bool) -> None:
    assert looks_like_alert_name(heading) is expected


def _alert(name: str, labels: dict[str, str] | None = None, **annotations: str) -> Alert:
    return make_alert({"alertname": name, **(labels or {})}, annotations)


@pytest.fixture
def redis_library(tmp_path: Path) -> RunbookLibrary:
    (tmp_path / "redis.md").write_text(REDIS, encoding="utf-8")
    return RunbookLibrary.load(tmp_path)


def test_reference_and_navigation_never_win(redis_library: RunbookLibrary) -> None:
    for name in ("RedisDashboard", "RedisTopics", "RedisCheatSheet", "RedisDown"):
        hits = redis_library.search(_alert(name, {"service": "redis"}))
        assert all(hit.section.role is SectionRole.INCIDENT for hit in hits)
    best = redis_library.search(_alert("RedisMasterUnreachable", {"service": "redis"}))[0]
    assert best.section.anchor == "redis-down"  # the parent, with its "Get Redis master" step


def test_the_heading_that_is_the_alert_name_beats_mentions(tmp_path: Path) -> None:
    (tmp_path / "playbook.md").write_text(
        "# Playbook\n\n## LedgerSyncStalled\n\nRestart the follower.\n\n"
        "## Follower lag\n\nWhen LedgerSyncStalled fires, the ledger sync is stalled and the "
        "follower lags; ledger sync stalled alerts often come with it.\n",
        encoding="utf-8",
    )
    library = RunbookLibrary.load(tmp_path)
    assert library.search(_alert("LedgerSyncStalled"))[0].section.anchor == "ledgersyncstalled"


def test_the_librarys_subject_does_not_make_a_heading_the_alerts_name(tmp_path: Path) -> None:
    # A product's documentation says its name in nearly every section: in a heading it names
    # the product, not the problem, so "... for Acmestore components" does not name
    # `AcmestoreOOMKilled` more nearly than "Out of memory errors".
    chapters = "".join(
        f"## {topic}\n\nAcmestore {topic.lower()} explained in detail.\n\n"
        for topic in (
            "Backups",
            "Retention",
            "Replication",
            "Query language",
            "Security",
            "Upgrades",
            "Scaling Acmestore",
            "Acmestore on Kubernetes",
        )
    )
    (tmp_path / "guide.md").write_text(
        "# Acmestore guide\n\n"
        + chapters
        + "## How to set a memory limit for Acmestore components?\n\n"
        "Acmestore components take a flag that caps the memory they use.\n\n"
        "## Out of memory errors\n\nWhen Acmestore is killed for lack of memory, check "
        "the heaviest queries and give it more RAM.\n",
        encoding="utf-8",
    )
    library = RunbookLibrary.load(tmp_path)
    alert = _alert("AcmestoreOOMKilled", summary="Acmestore was killed for running out of memory")
    hits = library.search(alert)
    assert hits[0].section.anchor == "out-of-memory-errors"
    limit = next(h for h in hits if h.section.anchor.startswith("how-to-set"))
    assert limit.heading_match < hits[0].heading_match


def test_message_and_title_annotations_are_searched(tmp_path: Path) -> None:
    (tmp_path / "ops.md").write_text(
        "# Ops\n\n## Compactor halted\n\nThe compactor stopped.\n\n"
        "## Ruler misses evaluations\n\nRules are evaluated late.\n",
        encoding="utf-8",
    )
    library = RunbookLibrary.load(tmp_path)
    by_message = library.search(_alert("MetricsSystemProblem1", message="the compactor halted"))
    by_title = library.search(_alert("MetricsSystemProblem2", title="ruler misses evaluations"))
    assert by_message[0].section.anchor == "compactor-halted"
    assert by_title[0].section.anchor == "ruler-misses-evaluations"


def test_a_templates_value_and_label_dump_is_not_alert_text(tmp_path: Path) -> None:
    library = RunbookLibrary.load(tmp_path)
    alert = _alert(
        "QueueConsumersMissing",
        description="A queue has no consumer\n  VALUE = 0\n  LABELS = map[instance:10.0.0.1:9419 map:x]",
    )
    assert set(library.query(alert).terms) == set(
        terms("QueueConsumersMissing a queue has no consumer")
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [("mysql", "postgres"), ("dead tuples", "outage tuples"), ("volume", "disk")],
)
def test_narrow_synonyms_keep_apart(left: str, right: str) -> None:
    assert set(terms(left)) != set(terms(right))


def test_urls_are_not_evidence(redis_library: RunbookLibrary, tmp_path: Path) -> None:
    # "overview" and "latency" are only in the dashboards' URLs and link texts of a reference.
    hits = redis_library.search(_alert("GrafanaDashboardOverviewBroken", {"service": "grafana"}))
    assert all(hit.section.anchor != "dashboards" for hit in hits)


@pytest.mark.parametrize(
    ("heading", "normalised", "procedural"),
    [
        ("📋 1. Table of Contents:", "table of contents", False),
        ("2. Check pod health", "check pod health", True),
        ("Step 2: Database failover", "database failover", True),
        ("iv) Overview", "overview", False),
        ("🚨 Critical Alerts", "critical alerts", False),
    ],
)
def test_numbering_is_not_part_of_a_headings_words(
    heading: str, normalised: str, procedural: bool
) -> None:
    assert normalise_heading(heading) == normalised
    assert looks_procedural(heading) is procedural


def test_where_an_alert_runs_is_not_alert_text(tmp_path: Path) -> None:
    library = RunbookLibrary.load(tmp_path)
    alert = _alert(
        "AppNotSynced",
        {"instance": "argocd-application-controller-metrics.argocd.svc:8082"},
        summary="App not synced (instance argocd-application-controller-metrics.argocd.svc:8082)",
    )
    assert set(library.query(alert).terms) == set(terms("AppNotSynced app not synced"))
