"""Parsing of every webhook body format, over the fixture files, plus a property test."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from router.errors import PayloadError
from router.ingest.payloads import label_fingerprint, parse_body, parse_timestamp
from router.models import AlertStatus, Source

from .conftest import FIXTURES

PAYLOADS = FIXTURES / "payloads"
GOOD_CASES: dict[str, dict[str, object]] = yaml.safe_load(
    (PAYLOADS / "good_cases.yaml").read_text()
)
BAD_CASES: dict[str, list[object]] = yaml.safe_load((PAYLOADS / "bad_cases.yaml").read_text())


def _fixture_names(folder: str) -> list[str]:
    root = PAYLOADS / folder
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_every_fixture_file_has_an_expectation() -> None:
    assert _fixture_names("good") == sorted(GOOD_CASES)
    assert _fixture_names("bad") == sorted(BAD_CASES)


@pytest.mark.parametrize("name", sorted(GOOD_CASES))
def test_good_body_parses(name: str) -> None:
    expected = GOOD_CASES[name]
    source = Source(name.split("/")[0])
    notification = parse_body(source, (PAYLOADS / "good" / name).read_bytes())
    assert notification.source is source
    assert len(notification.alerts) == expected["alerts"]
    if not notification.alerts:
        return
    first = notification.alerts[0]
    assert first.status is AlertStatus(expected["status"])
    if expected["fingerprint"] == "computed":
        assert first.fingerprint == label_fingerprint(first.labels)
    else:
        assert first.fingerprint == expected["fingerprint"]
    assert first.name


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_body_names_the_problem(name: str) -> None:
    status, message = BAD_CASES[name]
    assert status == 400
    source = Source(name.split("/")[0])
    with pytest.raises(PayloadError) as raised:
        parse_body(source, (PAYLOADS / "bad" / name).read_bytes())
    assert str(raised.value) == message


def test_alertmanager_alert_is_normalised() -> None:
    body = (PAYLOADS / "good/alertmanager/firing_two_alerts.json").read_bytes()
    alert = parse_body(Source.ALERTMANAGER, body).alerts[0]
    assert alert.labels["service"] == "ledger"
    assert alert.annotations["summary"] == "Checksum mismatch on ledger block 118812"
    assert alert.starts_at == datetime(2026, 11, 20, 3, 12, 45, 123000, tzinfo=UTC)
    assert alert.ends_at is None  # Go's zero time
    assert alert.generator_url is not None
    assert alert.generator_url.startswith("http://prometheus:9090/graph")
    assert alert.group_key == '{}:{alertname="LedgerDataCorruption"}'


def test_newer_alertmanager_fields_are_ignored_and_offsets_converted() -> None:
    body = (PAYLOADS / "good/alertmanager/newer_fields.json").read_bytes()
    notification = parse_body(Source.ALERTMANAGER, body)
    alert = notification.alerts[0]
    assert notification.truncated_alerts == 3
    assert alert.starts_at == datetime(2026, 11, 21, 7, 0, 0, 987654, tzinfo=UTC)
    assert alert.generator_url is None  # an empty URL is no URL


def test_grafana_unified_alert_keeps_grafana_fields() -> None:
    body = (PAYLOADS / "good/grafana/unified_firing.json").read_bytes()
    first, second = parse_body(Source.GRAFANA, body).alerts
    assert dict(first.values) == {"B": 44.23943737541908, "C": 1.0}
    assert first.value_string is not None and "var='B'" in first.value_string
    assert first.silence_url is not None and "silence/new" in first.silence_url
    assert first.dashboard_url is None
    assert second.dashboard_url == "https://play.grafana.org/d/monitoring"
    assert second.panel_url == "https://play.grafana.org/d/monitoring?viewPanel=3"
    assert second.image_url is not None
    assert dict(second.values) == {}


def test_legacy_grafana_becomes_one_alert_with_alertmanager_fingerprint() -> None:
    body = (PAYLOADS / "good/grafana/legacy_alerting.json").read_bytes()
    (alert,) = parse_body(Source.GRAFANA, body).alerts
    assert dict(alert.labels) == {"tag name": "tag value", "alertname": "Panel Title alert"}
    assert alert.annotations["title"] == "[Alerting] Panel Title alert"
    assert alert.annotations["message"] == "Notification Message"
    assert alert.starts_at is None
    assert dict(alert.values) == {"Count": 1.0}
    assert alert.value_string == "Count=1"
    resolved = parse_body(Source.GRAFANA, (PAYLOADS / "good/grafana/legacy_ok.json").read_bytes())
    assert resolved.alerts[0].fingerprint == alert.fingerprint


def test_legacy_paused_and_pending_carry_no_alert() -> None:
    for state in ("paused", "pending"):
        body = json.dumps({"ruleName": "r", "state": state}).encode()
        assert parse_body(Source.GRAFANA, body).alerts == ()


def test_fingerprint_matches_prometheus_common() -> None:
    # The vectors of prometheus/common model/signature_test.go (TestLabelSetToFingerprint).
    assert int(label_fingerprint({}), 16) == 14695981039346656037
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert int(label_fingerprint(labels), 16) == 5799056148416392346


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T12:00:00Z", datetime(2026, 11, 21, 12, tzinfo=UTC)),
        ("2026-11-21T12:00:00.123456789Z", datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-21T13:30:00+01:30", datetime(2026, 11, 21, 12, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_timestamps(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
alert_like = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved", "other"]) | json_values,
        "labels": st.dictionaries(st.text(max_size=10), st.text(max_size=10)) | json_values,
        "annotations": st.dictionaries(st.text(max_size=10), st.text(max_size=10)) | json_values,
        "startsAt": st.sampled_from(["2026-11-21T12:00:00Z", "0001-01-01T00:00:00Z", "noon"])
        | json_values,
        "endsAt": st.sampled_from(["2026-11-21T12:00:00Z", ""]) | json_values,
        "fingerprint": st.text(max_size=16) | json_values,
        "values": st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False)) | json_values,
    },
)
body_like = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from(["4", "1", "3"]) | json_values,
        "status": st.sampled_from(["firing", "resolved"]) | json_values,
        "alerts": st.lists(alert_like, max_size=3) | json_values,
        "ruleName": st.text(max_size=10) | json_values,
        "state": st.sampled_from(["alerting", "ok", "paused"]) | json_values,
        "evalMatches": json_values,
        "tags": json_values,
        "truncatedAlerts": json_values,
    },
)
bodies = body_like.map(lambda doc: json.dumps(doc).encode()) | st.binary(max_size=200)


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(list(Source)), body=bodies)
def test_any_body_parses_or_raises_payload_error(source: Source, body: bytes) -> None:
    try:
        notification = parse_body(source, body)
    except PayloadError as exc:
        assert str(exc)
    else:
        for alert in notification.alerts:
            assert alert.status in (AlertStatus.FIRING, AlertStatus.RESOLVED)
            assert len(alert.fingerprint) > 0
