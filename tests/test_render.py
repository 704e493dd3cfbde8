"""Page templates: what every channel says for every event, budgets, overrides and errors."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from router.errors import ConfigError, DeliveryError
from router.outbox.budgets import CHAT_BUDGET, EMAIL_BUDGET, SMS_BUDGET
from router.outbox.fit import fit, sections
from router.outbox.render import (
    PACKAGED_TEMPLATES,
    SHIPPED_TEMPLATES,
    TEMPLATE_EVENTS,
    PageFormat,
    Renderer,
)
from router.outbox.template_checks import check_templates, export_templates, sample_context
from router.outbox.view import shorten, telling_labels, when

from .golden_pages import FORMATS, PAGES, render_golden
from .pages import ACK_URL, RUNBOOK_LINK, page_context, runbook_excerpt

ROOT = Path(__file__).resolve().parent.parent
RULES_TEMPLATES = ROOT / "rules" / "templates"
ALL_PAGES = [(kind, event) for kind, events in TEMPLATE_EVENTS.items() for event in events]


@pytest.mark.parametrize(
    "golden", sorted(PAGES.glob("*/*.txt")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_page_reads_as_the_golden_file(golden: Path) -> None:
    assert render_golden(golden) == golden.read_text()


def test_every_channel_and_event_has_a_golden_page() -> None:
    goldens = {(p.parent.name, p.stem) for p in PAGES.glob("*/*.txt")}
    assert {(kind, event) for kind, event in ALL_PAGES} <= goldens


def test_templates_are_shipped_once_and_the_rules_directory_holds_overrides_only() -> None:
    assert SHIPPED_TEMPLATES == PACKAGED_TEMPLATES
    assert sorted(RULES_TEMPLATES.rglob("*.j2")) == [], "overrides only: ship templates in router/"
    assert {(kind, event) for kind, event in ALL_PAGES} <= {
        (p.parent.name, p.stem) for p in PACKAGED_TEMPLATES.glob("*/*.j2")
    }


def test_shipped_templates_pass_the_check() -> None:
    assert check_templates(None) == []
    assert check_templates(RULES_TEMPLATES) == []


def test_export_copies_the_shipped_templates_and_keeps_what_is_there(tmp_path: Path) -> None:
    written = export_templates(tmp_path / "templates")
    shipped = sorted(p.relative_to(PACKAGED_TEMPLATES) for p in PACKAGED_TEMPLATES.rglob("*.j2"))
    assert sorted(p.relative_to(tmp_path / "templates") for p in written) == shipped
    assert all(
        filecmp.cmp(PACKAGED_TEMPLATES / p, tmp_path / "templates" / p, False) for p in shipped
    )
    # Used as overrides, the copies are templates in force like the shipped ones.
    assert check_templates(tmp_path / "templates") == []
    mine = tmp_path / "templates" / "log" / "trigger.j2"
    mine.write_text("{% set title %}mine{% endset %}mine")
    with pytest.raises(ConfigError, match=r"\d+ template\(s\) already in .*; --force overwrites"):
        export_templates(tmp_path / "templates")
    assert mine.read_text() == "{% set title %}mine{% endset %}mine"
    export_templates(tmp_path / "templates", force=True)
    assert filecmp.cmp(PACKAGED_TEMPLATES / "log" / "trigger.j2", mine, False)


# --- budgets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "event"), [p for p in ALL_PAGES if p[0] != "pagerduty"])
@pytest.mark.parametrize("budget", [160, 400, 700, 1200, CHAT_BUDGET, EMAIL_BUDGET])
def test_body_stays_within_budget_and_keeps_code_blocks_whole(
    kind: str, event: str, budget: int
) -> None:
    fmt = PageFormat(kind, budget, 250, FORMATS[kind].style)
    page = Renderer().render(fmt, event, page_context(event), runbook_excerpt)
    assert len(page.body) <= budget
    assert page.body.count("```") % 2 == 0
    if "```" in page.body:
        assert "kubectl -n zkp top pods -l app=prover\n   ```" in page.body
    # The headline always leads.
    assert page.body.startswith("P1 ") or page.body.startswith("**P1 ")


@pytest.mark.parametrize("event", ["trigger", "escalate"])
def test_page_keeps_the_ack_link_when_the_runbook_does_not_fit(event: str) -> None:
    fmt = PageFormat("apprise", 700, 250, "markdown")
    page = Renderer().render(fmt, event, page_context(event), runbook_excerpt)
    assert f"**Acknowledge:** {ACK_URL}" in page.body
    assert len(page.body) <= 700


def test_excerpt_is_given_the_room_the_rest_of_the_page_leaves() -> None:
    asked: list[tuple[int, str]] = []

    def excerpt(budget: int, style: str) -> str:
        asked.append((budget, style))
        return runbook_excerpt(budget, style)

    fmt = PageFormat("apprise", 1500, 250, "markdown")
    renderer = Renderer()
    bare = renderer.render(fmt, "trigger", page_context("trigger"))
    page = renderer.render(fmt, "trigger", page_context("trigger"), excerpt)
    assert asked[0] == (1500 - len(bare.body) - 2, "markdown")
    assert len(page.body) <= 1500
    assert RUNBOOK_LINK in page.body
    assert "kubectl -n zkp get pods" in page.body


def test_excerpt_budget_caps_the_runbook_part() -> None:
    asked: list[int] = []

    def excerpt(budget: int, style: str) -> str:
        asked.append(budget)
        return runbook_excerpt(budget, style)

    fmt = PageFormat("log", 5000, 250, "text", excerpt_budget=600)
    Renderer().render(fmt, "trigger", page_context("trigger"), excerpt)
    assert asked == [600]


def test_sms_fits_one_segment_with_a_long_title() -> None:
    title = "DatabaseReplicationLagCritical: " + "replica lag above five minutes " * 20
    fmt = PageFormat("sms", SMS_BUDGET, 0, "text")
    page = Renderer().render(fmt, "trigger", page_context("trigger", title=title), runbook_excerpt)
    assert len(page.body) <= 160
    assert page.title == ""
    assert page.body.startswith("P1 TRIGGERED: DatabaseReplicationLag")
    assert page.body.endswith(f"...\nAck: {ACK_URL}")
    assert "…" not in page.body, "an SMS stays in the GSM-7 alphabet"


def test_title_is_one_line_within_its_budget() -> None:
    title = "DiskFull:\nthe disk\nis full " + "x" * 2000
    fmt = PageFormat("apprise", CHAT_BUDGET, 250, "markdown")
    page = Renderer().render(fmt, "trigger", page_context("trigger", title=title))
    assert "\n" not in page.title
    assert len(page.title) <= 250
    assert page.title.startswith("[P1] TRIGGERED: DiskFull: the disk is full")


def test_fit_drops_whole_sections_and_never_cuts_a_code_block() -> None:
    text = "headline\n\n```sh\nstep one\n\nstep two\n```\n\nack: link"
    assert sections(text) == ["headline", "```sh\nstep one\n\nstep two\n```", "ack: link"]
    assert fit(text, len(text)) == text
    # The code block does not fit: it is left out whole; the shorter section after it stays.
    assert fit(text, 30) == "headline\n\nack: link"
    # Even the headline does not fit: it is shortened at a word.
    assert fit("a very long headline indeed\n\nmore", 12) == "a very long…"


def test_fence_inside_a_list_item_is_recognised() -> None:
    text = "1. run:\n\n   ```sh\n   a\n\n   b\n   ```\n\nend"
    assert sections(text) == ["1. run:", "   ```sh\n   a\n\n   b\n   ```", "end"]


def test_filters() -> None:
    assert shorten("one two three four", 12) == "one two…"
    assert shorten("one two three four", 12, "...") == "one two..."
    assert shorten("short", 12) == "short"
    assert when("2024-05-06T10:00:00Z") == "2024-05-06 10:00 UTC"
    assert when("2024-05-06T12:00:00+02:00") == "2024-05-06 10:00 UTC"
    assert when(None) == "unknown"
    assert when("not a time") == "not a time"
    labels = {
        "alertname": "X",
        "severity": "critical",
        "service": "api",
        "zone": "b",
        "job": "api",
        "instance": "10.0.0.1:9100",
        "namespace": "prod",
        "team": "core",
    }
    assert telling_labels(labels) == [
        ("instance", "10.0.0.1:9100"),
        ("namespace", "prod"),
        ("job", "api"),
        ("team", "core"),
    ]


def test_page_times_are_in_the_rules_time_zone_and_name_it() -> None:
    alert = {**page_context("trigger").alert.to_json(), "starts_at": "2026-12-07T13:01:00+00:00"}
    times = {
        "alert": alert,
        "opened_at": "2026-12-07T13:03:00+00:00",
        "next_escalation": {"at": "2026-07-07T13:18:00+00:00", "tiers": ["team-lead"]},
    }
    renderer = Renderer()
    log = renderer.render(
        FORMATS["log"], "trigger", page_context("trigger", **times), timezone="Europe/Berlin"
    )
    assert "started 2026-12-07 14:01 CET" in log.body
    # Summer time is named as such.
    assert "next escalation: team-lead at 2026-07-07 15:18 CEST unless acknowledged" in log.body
    resolved = renderer.render(
        FORMATS["apprise"], "resolve", page_context("resolve", **times), timezone="Europe/Berlin"
    )
    assert "**Opened:** 2026-12-07 14:03 CET" in resolved.body
    assert "UTC" not in log.body + resolved.body
    in_utc = renderer.render(FORMATS["log"], "trigger", page_context("trigger", **times))
    assert "started 2026-12-07 13:01 UTC" in in_utc.body


# --- overrides and errors ------------------------------------------------------------------------


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_user_template_overrides_the_shipped_one_of_the_same_path(tmp_path: Path) -> None:
    write(
        tmp_path,
        "apprise/trigger.j2",
        '{% import "_macros.j2" as m %}\n'
        "{% set title %}{{ incident.severity }} page for {{ page.tier }}{% endset %}\n"
        "Custom: {{ incident.title }} / {{ ack_url }}\n",
    )
    renderer = Renderer(tmp_path)
    fmt = PageFormat("apprise", CHAT_BUDGET, 250, "markdown")
    trigger = renderer.render(fmt, "trigger", page_context("trigger"))
    assert trigger.title == "P1 page for oncall"
    assert trigger.body == f"Custom: ProofGenerationSlow: proof generation takes 14s / {ACK_URL}"
    # The events the user did not override read as shipped.
    resolve = renderer.render(fmt, "resolve", page_context("resolve"))
    assert resolve.body.startswith("**P1 RESOLVED** · ")


def test_syntax_error_is_a_permanent_failure_naming_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "apprise/trigger.j2", "{% set title %}x{% endset %}\n{{ incident.title }\n"
    )
    fmt = PageFormat("apprise", CHAT_BUDGET, 250, "markdown")
    with pytest.raises(DeliveryError) as raised:
        Renderer(tmp_path).render(fmt, "trigger", page_context("trigger"))
    assert not raised.value.retryable
    assert raised.value.reason == "template_error"
    assert str(raised.value) == f"template {path}:2: unexpected '}}'"


def test_unknown_variable_is_a_permanent_failure_naming_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "sms/resolve.j2", "{% set title = '' %}\nResolved:\n{{ incident.titel }}\n"
    )
    fmt = PageFormat("sms", SMS_BUDGET, 0, "text")
    with pytest.raises(DeliveryError) as raised:
        Renderer(tmp_path).render(fmt, "resolve", page_context("resolve"))
    assert not raised.value.retryable
    assert str(raised.value) == f"template {path}:3: 'dict object' has no attribute 'titel'"


def test_missing_template_is_a_permanent_failure(tmp_path: Path) -> None:
    fmt = PageFormat("apprise", CHAT_BUDGET, 250, "markdown")
    with pytest.raises(DeliveryError) as raised:
        Renderer(tmp_path, defaults=tmp_path).render(fmt, "trigger", page_context("trigger"))
    assert str(raised.value) == (
        f"template apprise/trigger.j2 not found (looked in {tmp_path}, {tmp_path})"
    )


def test_check_reports_every_broken_or_stray_template(tmp_path: Path) -> None:
    broken = write(tmp_path, "apprise/escalate.j2", "{% set title %}x{% endset %}\n{{ oops(1) }}\n")
    write(tmp_path, "sms/trigger.j2", "{% set title = '' %}{{ incident.title }}\n")  # fine
    write(tmp_path, "_mine.j2", "{% macro x() %}{% endmacro %}")  # macros are not pages
    stray = write(tmp_path, "apprise/triggered.j2", "typo in the file name\n")
    untitled = write(tmp_path, "pagerduty/trigger.j2", "{{ incident.title }}\n")
    assert check_templates(tmp_path) == [
        f"{untitled}: sets no title ({{% set title %}}...{{% endset %}})",
        f"{broken}:2: 'oops' is undefined",
        f"{stray}: not a page template (expected KIND/EVENT.j2 with KIND one of pagerduty, "
        "apprise, sms, log and EVENT one of trigger, escalate, acknowledge, resolve, storm; files "
        "starting with _ are for macros)",
    ]


@pytest.mark.parametrize("kind", ["log", "apprise"])
@pytest.mark.parametrize("event", ["trigger", "escalate"])
def test_a_page_without_a_section_lists_the_possible_ones(kind: str, event: str) -> None:
    context = sample_context(event, runbook=False)
    page = Renderer().render(FORMATS[kind], event, context, lambda _budget, _style: "")
    first, second = (p.to_json() for p in context.possible_sections)
    assert "ossible runbook sections" in page.body
    assert first["link"] in page.body and second["link"] in page.body
    assert "62% confidence" in page.body and "21% confidence" in page.body
    assert "no runbook section matched" not in page.body


def test_a_page_with_neither_section_nor_candidates_says_none_matched() -> None:
    context = sample_context("trigger", runbook=False).with_(possible_sections=())
    page = Renderer().render(FORMATS["log"], "trigger", context, lambda _budget, _style: "")
    assert "no runbook section matched this alert" in page.body
    assert "Possible runbook sections" not in page.body
