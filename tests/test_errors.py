"""The exception tree: every error the package raises is a RouterError, and the HTTP layer knows
what each one that a request can meet means for the sender."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import router
from router.api.http import HTTP_ERRORS, NOT_IN_REQUESTS, as_http_error
from router.errors import (
    FailureReason,
    HttpError,
    IncidentNotFound,
    InvalidLink,
    PayloadError,
    RouterError,
    StoreError,
)


def _every_error() -> set[type[RouterError]]:
    for module in pkgutil.walk_packages(router.__path__, "router."):
        if not module.name.endswith("__main__"):  # that one runs the command
            importlib.import_module(module.name)
    found: set[type[RouterError]] = set()
    todo = [RouterError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_every_error_is_mapped_or_kept_out_of_requests() -> None:
    unmapped = (
        {e for e in _every_error() if e is not HttpError} - set(HTTP_ERRORS) - NOT_IN_REQUESTS
    )
    assert unmapped == set(), "say in router/api/http.py what the sender gets for these"
    assert not set(HTTP_ERRORS) & NOT_IN_REQUESTS


@pytest.mark.parametrize(
    ("error", "status", "reason", "message"),
    [
        (PayloadError("not an object", "alerts[0]"), 400, "malformed", "alerts[0]: not an object"),
        (IncidentNotFound("12"), 404, "not_found", "no such incident"),
        (InvalidLink("this link has expired"), 403, "invalid_link", "this link has expired"),
        (
            StoreError("disk I/O error"),
            503,
            "store_unavailable",
            "storage unavailable, retry later",
        ),
        (RuntimeError("bug"), 500, "internal", "internal error"),
    ],
)
def test_what_the_sender_gets(error: Exception, status: int, reason: str, message: str) -> None:
    mapped = as_http_error(error)
    assert (mapped.status, mapped.reason, mapped.message) == (status, reason, message)


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "http_400"), (429, "http_429"), (504, "http_504"), (418, "http_4xx"),
     (599, "http_5xx"), (302, "http_other")],
)  # fmt: skip
def test_failure_reasons_of_http_answers(status: int, reason: str) -> None:
    assert FailureReason.for_status(status) == reason
