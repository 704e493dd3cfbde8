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
        self._samples: dict[tuple[str, str], logging.LogRecord] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        second = int(self._clock())
        if second != self._second:
            self._flush()
            self._second = second
        key = (record.name, str(record.msg))
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count <= self._per_second:
            return True
        self._samples[key] = record
        return False

    def _flush(self) -> None:
        counts, samples = self._counts, self._samples
        self._counts, self._samples = {}, {}
        for key, record in samples.items():
            summary = logging.makeLogRecord(record.__dict__)
            summary.msg = f"{record.msg} (repeated {counts[key] - self._per_second} more times)"
            summary.exc_info = summary.exc_text = None
            logging.getLogger(record.name).handle(summary)


def configure(log_format: str = "text", level: str = "info") -> None:
    """Send every log record to stderr in the chosen format, repeats rate-limited."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what our one line per webhook says.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
