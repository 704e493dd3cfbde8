"""Log lines: readable text with key=value fields, or one JSON object per line."""

from __future__ import annotations

import json
import logging

import pytest

from router.logs import JsonFormatter, RepeatFilter, TextFormatter, fields


def record(**values: object) -> logging.LogRecord:
    entry = logging.LogRecord("router.page", logging.WARNING, __file__, 1, "PAGE", None, None)
    entry.fields = values
    return entry


def test_text_fields_keep_utf8_quote_what_needs_it_and_skip_none() -> None:
    line = TextFormatter().format(
        record(title="Données ⏎ 🚨", next={"at": "10:05", "tiers": ["lead"]}, reason=None, step=2)
    )
    assert line.endswith(
        'WARNING router.page: PAGE title="Données ⏎ 🚨" next={"at":"10:05","tiers":["lead"]} step=2'
    )


def test_json_lines_carry_the_fields() -> None:
    document = json.loads(JsonFormatter().format(record(title="Données 🚨", reason=None, step=2)))
    assert document["message"] == "PAGE"
    assert (document["title"], document["step"], document["level"]) == ("Données 🚨", 2, "warning")
    assert "reason" not in document


def test_fields_helper_builds_the_extra_mapping(caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("router.test").warning("hello", extra=fields(a=1))
    assert caplog.records[-1].fields == {"a": 1}  # type: ignore[attr-defined]


def test_a_flood_of_one_line_is_summed_up_once_a_second() -> None:
    now = [100.0]
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    handler.addFilter(RepeatFilter(per_second=20, clock=lambda: now[0]))
    logger = logging.getLogger("router.test.flood")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        for _ in range(25):
            logger.warning("connection limit reached")
        logger.warning("another message")
        assert len(records) == 21
        now[0] += 1.0
        logger.warning("connection limit reached")
    finally:
        logger.handlers[:] = []
    messages = [record.getMessage() for record in records]
    assert messages[20] == "another message"
    assert messages[21] == "connection limit reached (repeated 5 more times)"
    assert messages[22] == "connection limit reached"
