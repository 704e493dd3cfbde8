"""The exception tree of runbook-router.

    RouterError                  every error this package raises on purpose
    ├── ConfigError              settings or rules that cannot be used; carries file:line problems
    ├── PayloadError             a webhook body that cannot be accepted (HTTP 400); names the field
    ├── StoreError               the database failed; the sender should retry (HTTP 503)
    └── DeliveryError            a page could not be delivered; `retryable`: worth trying again

Each carries enough context to be read on its own in a log line.
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error raised on purpose by runbook-router."""


class ConfigError(RouterError):
    """Settings or rules that cannot be used. `problems` holds every `file:line: message` found."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class PayloadError(RouterError):
    """A webhook body that cannot be accepted. `field` is the dotted path of the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class StoreError(RouterError):
    """The database could not complete an operation; nothing of it was committed."""


class DeliveryError(RouterError):
    """A channel could not deliver a page.

    `retryable` is true for failures that may clear by themselves (HTTP 429 and 5xx,
    time-outs, network errors) and false for those that will not (HTTP 4xx other than 429, a
    bad target). `reason` is a short, stable token used as a metric label (`http_429`,
    `timeout`, `network`, ...).
    """

    def __init__(self, message: str, *, retryable: bool, reason: str) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason
