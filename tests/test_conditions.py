"""Value and text conditions, and how an alert's value is found."""

from __future__ import annotations

import pytest

from router.rules import Quantity, TextCondition, ValueCondition, alert_value
from router.rules.conditions import parse_quantity, quantity_in_text
from tests.alerts import make_alert


@pytest.mark.parametrize(
    ("text", "family", "base"),
    [
        ("12.4s", "time", 12.4),
        ("12400ms", "time", 12.4),
        ("2m", "time", 120.0),
        ("1.5h", "time", 5400.0),
        ("35%", "percent", 35.0),
        ("250", "plain", 250.0),
        ("-3", "plain", -3.0),
        ("1e3", "plain", 1000.0),
        ("8GB", "bytes", 8e9),
        ("8 GB", "bytes", 8e9),
        ("8gb", "bytes", 8e9),
        ("1KiB", "bytes", 1024.0),
        ("2MiB", "bytes", 2 * 1024.0**2),
        ("1TB", "bytes", 1e12),
        ("512B", "bytes", 512.0),
    ],
)
def test_quantities_convert_to_the_base_unit(text: str, family: str, base: float) -> None:
    quantity = parse_quantity(text)
    assert quantity.family == family
    assert quantity.base == pytest.approx(base)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "10sec",
            'unknown unit "sec" in "10sec" (known: ms, s, m, h, %, B, KB, MB, GB, TB, KiB, '
            "MiB, GiB, TiB)",
        ),
        ("10M", 'unknown unit "M" in "10M"'),  # mega or minute: neither is guessed
        ("fast", '"fast" is not a number with an optional unit'),
    ],
)
def test_bad_quantities_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_quantity(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proof generation p95 is 12.4s", Quantity(12.4, "s")),
        ("12400ms", Quantity(12400, "ms")),
        ("error rate 35% over 5 minutes", Quantity(35, "%")),
        ("memory at 9.1 GB on node 3", Quantity(9.1, "GB")),
        ("queue depth is 250", Quantity(250, "")),
        ("took 3 seconds", Quantity(3, "")),  # "seconds" is a word, not the unit s
        ("value=0.93", Quantity(0.93, "")),
        ("between 2s and 5s", Quantity(5, "s")),
        ("12s after 3 retries", Quantity(12, "s")),  # a number with a unit wins over a plain one
        ("no numbers here", None),
        ("p99", None),
    ],
)
def test_the_value_in_free_text(text: str, expected: Quantity | None) -> None:
    assert quantity_in_text(text) == expected


@pytest.mark.parametrize(
    ("condition", "value", "holds", "phrase"),
    [
        ("> 10s", "12.4s", True, "value 12.4s (annotation value) > 10s"),
        ("> 10s", "12400ms", True, "value 12400ms (annotation value) > 10s"),
        ("> 10s", "9.9s", False, "value 9.9s (annotation value) not > 10s"),
        ("> 10s", "10s", False, "value 10s (annotation value) not > 10s"),
        (">= 1s", "1000ms", True, "value 1000ms (annotation value) >= 1s"),
        ("< 1s", "999ms", True, "value 999ms (annotation value) < 1s"),
        ("<= 5m", "300s", True, "value 300s (annotation value) <= 5m"),
        ("== 0", "0", True, "value 0 (annotation value) == 0"),
        ("> 20%", "35%", True, "value 35% (annotation value) > 20%"),
        ("> 8GB", "9.1GB", True, "value 9.1GB (annotation value) > 8GB"),
        ("> 8GB", "7.5GiB", True, "value 7.5GiB (annotation value) > 8GB"),  # 8.05e9 bytes
        ("> 8GiB", "8.5GB", False, "value 8.5GB (annotation value) not > 8GiB"),  # 8.59e9 bytes
        ("> 100", "250", True, "value 250 (annotation value) > 100"),
        # A value without a unit is in the base unit of the threshold's family, as Prometheus
        # writes metrics: seconds for a time, bytes for a size.
        (
            "> 10s",
            "12.4",
            True,
            "value 12.4s (annotation value, no unit: read in seconds) > 10s",
        ),
        ("> 1m", "45", False, "value 45s (annotation value, no unit: read in seconds) not > 1m"),
        (
            "> 8GB",
            "9100000000",
            True,
            "value 9.1e+09B (annotation value, no unit: read in bytes) > 8GB",
        ),
        # Different unit families do not compare; a percentage has no base unit to read in.
        (
            "> 20%",
            "0.35",
            False,
            "value 0.35 (annotation value) is no unit and does not compare with 20% (percent)",
        ),
        (
            "> 100",
            "250ms",
            False,
            "value 250ms (annotation value) is time and does not compare with 100 (no unit)",
        ),
        (
            "> 10s",
            "35%",
            False,
            "value 35% (annotation value) is percent and does not compare with 10s (time)",
        ),
    ],
)
def test_value_conditions(condition: str, value: str, holds: bool, phrase: str) -> None:
    alert = make_alert({"alertname": "A"}, {"value": value})
    assert ValueCondition.parse(condition).evaluate(alert_value(alert)) == (holds, phrase)


def test_a_value_condition_on_an_alert_without_a_value_does_not_hold() -> None:
    assert ValueCondition.parse("> 10s").evaluate(alert_value(make_alert({"alertname": "A"}))) == (
        False,
        "the alert has no value to compare with > 10s",
    )


@pytest.mark.parametrize(
    "text",
    ["10s", "=> 10s", "> ten seconds", "> 10 sec", ">"],
)
def test_bad_value_conditions_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ValueCondition.parse(text)


GRAFANA_VALUE_STRING = (
    "[ var='B' labels={service=api} value=12.4 ], [ var='C' labels={service=api} value=1 ]"
)


@pytest.mark.parametrize(
    ("kwargs", "expected", "source"),
    [
        # Grafana: the first variable of valueString, whatever the order of `values`.
        (
            {"values": {"C": 1.0, "B": 12.4}, "value_string": GRAFANA_VALUE_STRING},
            Quantity(12.4, ""),
            "values[B]",
        ),
        ({"values": {"A": 3.0, "B": 4.0}}, Quantity(3.0, ""), "values[A]"),
        # Grafana values win over the annotation.
        (
            {"values": {"A": 3.0}, "annotations": {"value": "12s"}},
            Quantity(3.0, ""),
            "values[A]",
        ),
        ({"value_string": "p95 is 12.4s"}, Quantity(12.4, "s"), "valueString"),
        ({"annotations": {"value": "35%"}}, Quantity(35, "%"), "annotation value"),
        (
            {"annotations": {"value": "35%"}, "labels": {"value": "5%"}},
            Quantity(35, "%"),
            "annotation value",
        ),
        ({"labels": {"value": "5%"}}, Quantity(5, "%"), "label value"),
        # Text without a number is no value; the next place is looked at.
        (
            {"annotations": {"value": "n/a"}, "labels": {"value": "7"}},
            Quantity(7, ""),
            "label value",
        ),
    ],
)
def test_where_the_alert_value_comes_from(
    kwargs: dict[str, object], expected: Quantity, source: str
) -> None:
    labels = {"alertname": "A", **kwargs.pop("labels", {})}  # type: ignore[dict-item]
    annotations = kwargs.pop("annotations", {})
    alert = make_alert(labels, annotations, **kwargs)  # type: ignore[arg-type]
    found = alert_value(alert)
    assert found is not None
    assert (found.quantity, found.source) == (expected, source)


@pytest.mark.parametrize(
    ("condition", "annotations", "found_in"),
    [
        ("data corruption", {"description": "Possible DATA Corruption in ledger"}, "description"),
        ("data corruption", {"summary": "corruption of data"}, None),
        ("complete outage", {"title": "x", "message": "complete outage of checkout"}, "message"),
        (
            "complete outage",
            {"summary": "complete outage", "description": "complete outage"},
            "summary",
        ),
        ("complete outage", {"runbook": "complete outage"}, None),  # other annotations: not read
        ("/disk (is )?full/", {"summary": "Disk full on node-1"}, "summary"),
        ("/^disk full$/", {"summary": "the disk full"}, None),
    ],
)
def test_text_conditions(condition: str, annotations: dict[str, str], found_in: str | None) -> None:
    assert TextCondition.parse(condition).find(annotations) == found_in


@pytest.mark.parametrize(
    ("text", "message"),
    [("/([/", "bad regex /([/: "), ("   ", "empty text; give the words to look for")],
)
def test_bad_text_conditions(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        TextCondition.parse(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("values", "value_string", "source"),
    [
        # A threshold or condition expression is 0 or 1: beside a measurement, it is not one.
        ({"A": 12.4, "C": 1.0}, None, "values[A]"),
        ({"C": 1.0, "B": 9.5}, None, "values[B]"),
        ({"B": 0.0, "C": 1.0, "D": 7.0}, None, "values[D]"),
        # Among measurements, the first listed in valueString.
        (
            {"A": 3.0, "B": 4.0},
            "[ var='B' labels={} value=4 ], [ var='A' labels={} value=3 ]",
            "values[B]",
        ),
        # Only zeros and ones: nothing tells them apart, so the first listed.
        ({"A": 0.0, "C": 1.0}, None, "values[A]"),
        (
            {"A": 0.0, "C": 1.0},
            "[ var='C' labels={} value=1 ], [ var='A' labels={} value=0 ]",
            "values[C]",
        ),
    ],
)
def test_the_measured_grafana_value(
    values: dict[str, float], value_string: str | None, source: str
) -> None:
    found = alert_value(make_alert({"alertname": "A"}, values=values, value_string=value_string))
    assert found is not None
    assert found.source == source


@pytest.mark.parametrize(
    ("condition", "values", "holds", "phrase"),
    [
        (
            ValueCondition.create(">", "10s", ref="B"),
            {"A": 50.0, "B": 12.0, "C": 1.0},
            True,
            "value 12s (values[B], no unit: read in seconds) > 10s",
        ),
        (
            ValueCondition.create(">", "0", ref="C"),
            {"A": 50.0, "C": 1.0},
            True,
            "value 1 (values[C]) > 0",
        ),
        (
            ValueCondition.create(">", "10s", ref="Z"),
            {"A": 50.0},
            False,
            "the alert has no Grafana value Z to compare with > 10s",
        ),
        # A metric exported in milliseconds.
        (
            ValueCondition.parse("> 10s", unit="ms"),
            {"A": 12400.0, "C": 1.0},
            True,
            "value 12400ms (values[A], unit ms from the rule) > 10s",
        ),
        (
            ValueCondition.parse("> 80%", unit="%"),
            {"A": 85.0, "C": 1.0},
            True,
            "value 85% (values[A], unit % from the rule) > 80%",
        ),
    ],
)
def test_grafana_refs_and_units(
    condition: ValueCondition, values: dict[str, float], holds: bool, phrase: str
) -> None:
    alert = make_alert({"alertname": "A"}, values=values)
    assert condition.evaluate(alert_value(alert, condition.ref)) == (holds, phrase)


def test_the_rule_unit_applies_only_to_values_without_one() -> None:
    alert = make_alert({"alertname": "A"}, {"value": "12s"})
    condition = ValueCondition.parse("> 10s", unit="ms")
    assert condition.evaluate(alert_value(alert)) == (True, "value 12s (annotation value) > 10s")
