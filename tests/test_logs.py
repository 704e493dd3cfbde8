"""Log lines: readable text with key=value fields, or one JSON object per line."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest

from router.logs import JsonFormatter, RepeatFilter, TextFormatter, configure, fields, log_frequent


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


@pytest.fixture
def daemon_logging() -> Iterator[Callable[..., None]]:
    """`configure`, as the daemon calls it at start; the test's logging is restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_frequent_line_past_the_limit_is_counted_without_a_record(
    daemon_logging: Callable[..., None], capfd: pytest.CaptureFixture[str]
) -> None:
    now = [100.0]
    logger = logging.getLogger("router.test.frequent")
    daemon_logging("json", "info", clock=lambda: now[0])
    for n in range(25):
        log_frequent(logger, logging.INFO, "webhook accepted", alerts=n)
    logger.info("webhook accepted", extra=fields(alerts=99))  # counted as one more
    log_frequent(logger, logging.DEBUG, "webhook accepted", alerts=-1)  # below the level
    now[0] += 1.0
    log_frequent(logger, logging.INFO, "webhook accepted", alerts=100)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert [line["alerts"] for line in lines[:20]] == list(range(20))
    # The summary carries the last line held back: the record logged the usual way.
    assert lines[20]["message"] == "webhook accepted (repeated 6 more times)"
    assert lines[20]["alerts"] == 99
    assert (lines[21]["message"], lines[21]["alerts"]) == ("webhook accepted", 100)
    assert len(lines) == 22


def test_a_frequent_line_held_back_is_summed_up_with_its_fields(
    daemon_logging: Callable[..., None], capfd: pytest.CaptureFixture[str]
) -> None:
    now = [100.0]
    logger = logging.getLogger("router.test.frequent")
    daemon_logging("text", "info", clock=lambda: now[0])
    for n in range(22):
        log_frequent(logger, logging.WARNING, "webhook refused", alerts=n)
    now[0] += 1.0
    logger.info("tick")
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 22
    assert (
        "WARNING router.test.frequent: webhook refused (repeated 2 more times) alerts=21"
        in lines[20]
    )
    assert lines[21].endswith("INFO    router.test.frequent: tick")


def test_a_frequent_line_reaches_every_other_handler(
    daemon_logging: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # A second handler (here the test's capture) would lose what the filter holds back: with
    # one beside the daemon's own, every line is a record, and the daemon's still writes 20.
    logger = logging.getLogger("router.test.frequent")
    daemon_logging("json", "info", clock=lambda: 100.0)
    logging.getLogger().addHandler(caplog.handler)
    for n in range(30):
        log_frequent(logger, logging.INFO, "webhook accepted", alerts=n)
    assert [r.fields["alerts"] for r in caplog.records] == list(range(30))  # type: ignore[attr-defined]
    assert len(capfd.readouterr().err.splitlines()) == 20
