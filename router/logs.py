"""Logging set-up: one readable line per event, or JSON lines with `ROUTER_LOG_FORMAT=json`.

Code logs with `extra={"fields": {...}}`; the text format prints them as `key=value` after the
message, the JSON format as keys of the object. Secrets are never passed as fields.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: structured fields printed after the message."""
    return {"fields": values}


def _field_items(record: logging.LogRecord) -> dict[str, Any]:
    values = getattr(record, "fields", None)
    return values if isinstance(values, dict) else {}


def _text_value(value: Any) -> str:
    """A field's value in the text format: bare when it can be, else quoted JSON (UTF-8 kept)."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        line = f"{stamp}Z {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = " ".join(
            f"{k}={_text_value(v)}" for k, v in _field_items(record).items() if v is not None
        )
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({k: v for k, v in _field_items(record).items() if v is not None})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


# A record's attribute saying that `log_frequent` has already counted it against the limit.
_COUNTED = "repeat_counted"


class RepeatFilter(logging.Filter):
    """Let through at most `per_second` records of the same logger and message each second; the
    rest are counted and summed up in one line (`... repeated N more times`) when the next second
    starts. A flood (a refused connection per second by the thousand) cannot fill the disk, and
    the first lines of each kind are always written."""

    def __init__(self, per_second: int = 20, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._per_second = per_second
        self._clock = clock
        self._second = 0
        self._counts: dict[tuple[str, str], int] = {}
        # The last line held back of each kind: a record, or what `log_frequent` would have
        # made one of (its level and fields).
        self._samples: dict[tuple[str, str], logging.LogRecord | tuple[int, dict[str, Any]]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _COUNTED, False):
            return True
        key = (record.name, str(record.msg))
        if self.admits(key):
            return True
        self._samples[key] = record
        return False

    def admits(self, key: tuple[str, str]) -> bool:
        """Count one line of `key` (logger, message): whether it may be written this second."""
        second = int(self._clock())
        if second != self._second:
            self._flush()
            self._second = second
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count <= self._per_second

    def hold(self, key: tuple[str, str], level: int, values: dict[str, Any]) -> None:
        """Keep a line that `admits` refused, without a record, for the summary."""
        self._samples[key] = (level, values)

    def _flush(self) -> None:
        counts, samples = self._counts, self._samples
        self._counts, self._samples = {}, {}
        for (name, msg), sample in samples.items():
            if isinstance(sample, logging.LogRecord):
                summary = logging.makeLogRecord(sample.__dict__)
                summary.exc_info = summary.exc_text = None
            else:
                level, values = sample
                summary = logging.LogRecord(name, level, "", 0, msg, None, None)
                summary.fields = values
            summary.msg = f"{msg} (repeated {counts[(name, msg)] - self._per_second} more times)"
            logging.getLogger(name).handle(summary)


class _Output(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs, with its repeat filter."""

    def __init__(self, repeats: RepeatFilter) -> None:
        super().__init__(sys.stderr)
        self.repeats = repeats
        self.addFilter(repeats)


def log_frequent(logger: logging.Logger, level: int, msg: str, **values: Any) -> None:
    """Log a line that a storm repeats by the thousand a second (one per webhook). Once the
    repeat filter holds its kind back for the second, it is only counted: building a record that
    the filter then drops cost about 9 µs, a twentieth of a webhook's whole handling. Only when
    that filter's handler is the only one: any other (a test's capture) gets every record."""
    if not logger.isEnabledFor(level):
        return
    handlers = logging.root.handlers
    output = handlers[0] if len(handlers) == 1 and not logger.handlers else None
    if not isinstance(output, _Output):
        logger.log(level, msg, extra=fields(**values))
        return
    key = (logger.name, msg)
    if output.repeats.admits(key):
        logger.log(level, msg, extra={"fields": values, _COUNTED: True})
    else:
        output.repeats.hold(key, level, values)


def configure(
    log_format: str = "text", level: str = "info", clock: Callable[[], float] = time.monotonic
) -> None:
    """Send every log record to stderr in the chosen format, repeats rate-limited (each second
    of `clock`)."""
    handler = _Output(RepeatFilter(clock=clock))
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what our one line per webhook says.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
