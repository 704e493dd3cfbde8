"""The exception tree of runbook-router, and the reasons a delivery fails.

    RouterError                  every error this package raises on purpose
    ├── ConfigError              settings or rules that cannot be used; carries file:line problems
    ├── MatcherError             a label matcher that cannot be parsed (also a ValueError)
    ├── PayloadError             a webhook body that cannot be accepted (HTTP 400); names the field
    ├── StoreError               the database failed; the sender should retry (HTTP 503)
    ├── DeliveryError            a page could not be delivered; `retryable`: worth trying again
    ├── PageContextError         a queued page written by a newer release (page_context.py)
    ├── HttpError                a request refused with a status (http.py maps every error above)
    ├── IncidentNotFound         no incident with that number (HTTP 404)
    ├── HeartbeatNotFound        no heartbeat of that name in the rules (HTTP 404)
    ├── WindowNotFound           no run-time maintenance window by that name is on (HTTP 404)
    ├── WindowConflict           a maintenance window name taken, or one of the rules (HTTP 409)
    └── InvalidLink              an acknowledgement link that must not be honoured

Each carries enough context to be read on its own in a log line.
"""

from __future__ import annotations

import enum


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


class FailureReason(enum.StrEnum):
    """Why a delivery failed: the `reason` label of `router_pages_total` and of the timeline."""

    TEMPLATE_ERROR = "template_error"  # a page template failed to render
    BAD_URL = "bad_url"  # Apprise does not accept the target's URL
    NO_CHANNEL = "no_channel"  # no channel of the target's kind is available
    TIER_CHANGED = "tier_changed"  # the tier or its channel is gone from the rules since queued
    INVALID_PAGE = "invalid_page"  # the service refused the event as invalid
    NEWER_RELEASE = "newer_release"  # queued by a newer release: left for it to send
    RATE_LIMITED = "rate_limited"  # our own rate limit for the target had no room in time
    TIMEOUT = "timeout"
    NETWORK = "network"
    BAD_RESPONSE = "bad_response"  # an answer that is not what the service documents
    APPRISE_FAILED = "apprise_failed"  # Apprise reported failure without saying why
    ERROR = "error"  # a channel raised unexpectedly
    # HTTP answers, by the statuses PagerDuty's Events API v2 documents, and their classes.
    HTTP_400 = "http_400"
    HTTP_401 = "http_401"
    HTTP_403 = "http_403"
    HTTP_404 = "http_404"
    HTTP_413 = "http_413"
    HTTP_429 = "http_429"
    HTTP_500 = "http_500"
    HTTP_502 = "http_502"
    HTTP_503 = "http_503"
    HTTP_504 = "http_504"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    HTTP_OTHER = "http_other"

    @classmethod
    def for_status(cls, status: int) -> FailureReason:
        """The reason for an HTTP answer: its own status when named, else its class."""
        try:
            return cls(f"http_{status}")
        except ValueError:
            if 400 <= status < 500:
                return cls.HTTP_4XX
            if 500 <= status < 600:
                return cls.HTTP_5XX
            return cls.HTTP_OTHER


class DeliveryError(RouterError):
    """A channel could not deliver a page.

    `retryable` is true for failures that may clear by themselves (HTTP 429 and 5xx,
    time-outs, network errors) and false for those that will not (HTTP 4xx other than 429, a
    bad target). `reason` says why, as a metric label.
    """

    def __init__(self, message: str, *, retryable: bool, reason: FailureReason) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason


class MatcherError(RouterError, ValueError):
    """A matcher that cannot be parsed; the message says what is wrong with which part."""


class HttpError(RouterError):
    """A request refused with `status`; `reason` is the metric label, `message` the JSON error."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class IncidentNotFound(RouterError):
    """No incident has that number."""


class HeartbeatNotFound(RouterError):
    """No heartbeat of the rules has that name; the message names those that exist."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        listed = ", ".join(known) if known else "none"
        super().__init__(f'no heartbeat named "{name}" in the rules (they define: {listed})')
        self.name = name


class WindowNotFound(RouterError):
    """No run-time maintenance window by that name is in force or planned."""


class WindowConflict(RouterError):
    """A maintenance window cannot be made or ended so: the message says why."""


class InvalidLink(RouterError):
    """An acknowledgement link that must not be honoured; the message says why, for people."""
