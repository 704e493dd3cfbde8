"""Alertmanager's regular expressions: Go's RE2, anchored as Alertmanager anchors them.

Alertmanager compiles a matcher's regex as `regexp.Compile("^(?:" + value + ")$")`
(`pkg/labels/matcher.go`). This module does the same with RE2 itself (`google-re2`, the C++
library Go's `regexp` implements), so `\\d`, `\\w`, `\\s` and `\\b` are ASCII, `a{,3}` is a literal,
POSIX classes, octal escapes and flags anywhere in the pattern work, and what RE2 refuses
(lookaround, backreferences, `\\Z`, `x{1001}`...) is refused.

The C++ library accepts one escape that Go's does not: `\\C` (any byte). It is refused here, as
Alertmanager refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import re2

from router.errors import MatcherError

_OPTIONS = re2.Options()
# The error is raised and reported by the loader; RE2 would also write it to stderr.
_OPTIONS.log_errors = False


def _anchored(pattern: str) -> str:
    # The wrapper exactly as Alertmanager writes it: `a)|(b` is valid there, and means
    # `^(?:a)|(b)$`, so the pattern is searched, not matched whole.
    return f"^(?:{pattern})$"


def compile_set(patterns: Sequence[str]) -> Callable[[str], list[int]]:
    """Which of `patterns` (each valid for `compile_anchored`) match a value, by their index,
    in one pass of RE2 over the value rather than one search per pattern: a thousand rules'
    alert-name regexes cost one call for a new alert name."""
    if not patterns:
        return lambda _value: []
    regexes = re2.Set.SearchSet(_OPTIONS)
    for pattern in patterns:
        regexes.Add(_anchored(pattern))
    regexes.Compile()
    match = regexes.Match
    return lambda value: sorted(match(value) or ())


def compile_anchored(pattern: str) -> Callable[[str], bool]:
    """Whether a label value matches `pattern` as in an Alertmanager matcher; MatcherError naming
    the problem when RE2 (or Go) refuses the pattern."""
    if _has_any_byte_escape(pattern):
        raise MatcherError(f'bad regex "{pattern}": invalid escape sequence: \\C')
    try:
        compiled = re2.compile(_anchored(pattern), _OPTIONS)
    except re2.error as exc:
        raise MatcherError(f'bad regex "{pattern}": {_message(exc)}') from exc
    except UnicodeEncodeError as exc:
        raise MatcherError(f'bad regex "{pattern}": not valid UTF-8 text') from exc
    search = compiled.search
    return lambda value: search(value) is not None


def _message(exc: re2.error) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def _has_any_byte_escape(pattern: str) -> bool:
    """Whether `pattern` holds `\\C` outside `\\Q...\\E` (where it is literal)."""
    index = 0
    while index < len(pattern) - 1:
        if pattern[index] != "\\":
            index += 1
            continue
        escape = pattern[index + 1]
        if escape == "C":
            return True
        if escape == "Q":
            end = pattern.find("\\E", index + 2)
            if end < 0:
                return False
            index = end + 2
            continue
        index += 2
    return False
