"""The dry run's pages: what each channel of the first step would be sent, nothing sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from router.models import AlertStatus
from router.outbox.preview import format_pages, preview_pages
from router.outbox.render import Renderer
from router.rules import load_rules

from .conftest import FIXTURES
from .pages import RUNBOOK_LINK, alertmanager, runbook_excerpt

RULES = FIXTURES / "delivery" / "rules"
OPENED = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
ENV = {
    "PD_ONCALL_KEY": "ONCALLKEY00000000000000000000000",
    "ONCALL_EMAIL": "mailto://127.0.0.1:2525?from=router@example.com&to=oncall@example.com",
    "TEAM_LEAD_WEBHOOK": "json://127.0.0.1:9/team-lead",
}
RUNBOOK = {
    "file": "storage.md",
    "anchor": "disk-full",
    "heading": "Disk Full",
    "method": "search",
    "score": 0.71,
    "link": RUNBOOK_LINK,
}


def test_pages_of_the_first_step_per_channel() -> None:
    ruleset = load_rules(RULES, ENV, strict_secrets=True)
    [alert] = alertmanager("firing").alerts
    assert alert.status is AlertStatus.FIRING
    classification = ruleset.classify(alert)
    pages = preview_pages(
        ruleset,
        alert,
        classification,
        ["oncall"],
        OPENED,
        Renderer(),
        runbook=RUNBOOK,
        excerpt=runbook_excerpt,
        next_escalation=(datetime(2024, 5, 6, 10, 5, tzinfo=UTC), ["team-lead"]),
    )

    assert [(p.tier, p.channel, p.title) for p in pages] == [
        ("oncall", "pagerduty", "[P0] DiskFull (api): disk /var is 97% full [instance=db-1:9100]"),
        ("oncall", "apprise:mailto", "[P0] TRIGGERED: DiskFull: disk /var is 97% full"),
    ]
    event = json.loads(pages[0].body)
    assert "routing_key" not in event, "the routing key is a secret"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "rr-?:disk-full|alertname=DiskFull|service=api"
    assert event["payload"]["custom_details"]["ack_link"] == "<ack link>"
    assert event["payload"]["custom_details"]["runbook_found_by"] == "search"
    email = pages[1].body
    assert "**Acknowledge:** <ack link>" in email
    assert "- **Next escalation:** team-lead at 2024-05-06 10:05 UTC unless acknowledged" in email
    assert "**Runbook** (found by search, score 0.71):" in email
    assert "kubectl -n zkp get pods -l app=prover" in email
    assert email.endswith("Incident (dry run): <incident url>")
    assert pages[1].to_json() == {
        "tier": "oncall",
        "channel": "apprise:mailto",
        "title": "[P0] TRIGGERED: DiskFull: disk /var is 97% full",
        "body": email,
    }


def test_tier_without_secrets_previews_its_log_page() -> None:
    ruleset = load_rules(RULES, {}, strict_secrets=False)
    [alert] = alertmanager("firing").alerts
    pages = preview_pages(
        ruleset, alert, ruleset.classify(alert), ["team-lead"], OPENED, Renderer()
    )
    assert [(p.tier, p.channel, p.title) for p in pages] == [
        ("team-lead", "log", "[P0] TRIGGERED: DiskFull: disk /var is 97% full")
    ]
    assert format_pages(pages) == [
        "    team-lead via log: [P0] TRIGGERED: DiskFull: disk /var is 97% full",
        "      | P0 TRIGGERED: DiskFull: disk /var is 97% full",
        "      | Acknowledge: <ack link>",
        "      | Paging team-lead (step 1); started 2024-05-06 10:00 UTC; next escalation: none: "
        "this is the last step",
        "      |",
        "      | Runbook: no runbook section matched this alert.",
    ]


def test_url_apprise_refuses_shows_as_an_unrendered_page() -> None:
    env = {**ENV, "ONCALL_EMAIL": "nosuchservice://x"}
    ruleset = load_rules(RULES, env, strict_secrets=True)
    [alert] = alertmanager("firing").alerts
    pages = preview_pages(ruleset, alert, ruleset.classify(alert), ["oncall"], OPENED, Renderer())
    assert pages[1].to_json() == {
        "tier": "oncall",
        "channel": "apprise:nosuchservice",
        "title": "(not rendered)",
        "body": "apprise:nosuchservice: Apprise does not accept this URL",
    }
