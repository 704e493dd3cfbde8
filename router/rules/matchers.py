"""Label matchers in Alertmanager's own syntax and with its semantics.

The grammar and the escaping follow Alertmanager's classic matcher parser
(`prometheus/alertmanager` `pkg/labels/parse.go` and `pkg/labels/matcher.go`):

- a list may be wrapped in `{...}`; matchers are separated by commas outside double quotes, and a
  trailing comma is allowed: `{service="api", env!~"dev|test"}`;
- a matcher is a label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), one of `=`, `!=`, `=~`, `!~`, and a value
  that may be wrapped in double quotes; whitespace around each token is dropped;
- in the value, `\\"` is a double quote, `\\n` a line feed and `\\\\` a backslash; any other
  backslash is a literal backslash; an unescaped double quote inside the value is an error;
- regular expressions are anchored at both ends (`^(?:...)$`), as Alertmanager compiles them;
- a label the alert does not have matches as the empty string, so `team=""` holds for an alert
  without `team`, and `team!~".+"` too.

Alertmanager's regular expressions are Go's RE2. Python's `re` reads the same syntax for everything
RE2 offers except Unicode classes (`\\pL`), which are refused here with a clear message. Constructs
that RE2 refuses (lookaround, backreferences, atomic groups, possessive quantifiers) are refused
too, so that a rule accepted here means the same in an Alertmanager route.
"""

from __future__ import annotations

import enum
import functools
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from router.errors import MatcherError


class MatchType(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


# parse.go: '=~' comes before '=' so that the '~' is not taken for part of the value.
# Go's \s is ASCII whitespace only.
_SPACE = r"[\t\n\f\r ]*"
_MATCHER = re.compile(
    rf"^{_SPACE}([a-zA-Z_:][a-zA-Z0-9_:]*){_SPACE}(=~|=|!=|!~){_SPACE}(.*?){_SPACE}\Z", re.DOTALL
)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. `value` is unescaped; regexes are compiled once, at construction.

    `test` is the compiled check of a label value, kept as one callable so that classifying an
    alert against many rules does no dispatch on the match type.
    """

    name: str
    type: MatchType
    value: str
    test: Callable[[str], bool] = field(compare=False, repr=False)

    @classmethod
    def create(cls, name: str, type_: MatchType, value: str) -> Matcher:
        """A matcher, its regex compiled; MatcherError for a regex that cannot be used."""
        test: Callable[[str], bool]
        if type_ is MatchType.EQUAL:
            test = functools.partial(operator.eq, value)
        elif type_ is MatchType.NOT_EQUAL:
            test = functools.partial(operator.ne, value)
        else:
            fullmatch = compile_anchored(value).fullmatch
            if type_ is MatchType.REGEX:
                test = lambda candidate: fullmatch(candidate) is not None  # noqa: E731
            else:
                test = lambda candidate: fullmatch(candidate) is None  # noqa: E731
        return cls(name, type_, value, test)

    def matches_value(self, value: str) -> bool:
        return self.test(value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the label set satisfies this matcher; a missing label is the empty string."""
        return self.test(labels.get(self.name, ""))

    def __str__(self) -> str:
        return f'{self.name}{self.type.value}"{_escape(self.value)}"'


def _escape(value: str) -> str:
    # matcher.go openMetricsEscape: backslash, line feed and double quote.
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def parse_matchers(text: str) -> list[Matcher]:
    """Every matcher of a list such as `{a="1", b=~"x|y"}` or `a=1,b!=2`; MatcherError if bad."""
    if text.startswith("{"):
        text = text[1:]
    if text.endswith("}"):
        text = text[:-1]
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = False
    escaped = False
    for char in text:
        if char == "," and not inside_quotes:
            tokens.append("".join(token))
            token = []
            continue
        if char == '"':
            if not escaped:
                inside_quotes = not inside_quotes
            else:
                escaped = False
        elif char == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(char)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    if not tokens:
        raise MatcherError("no matcher given")
    return [parse_matcher(token) for token in tokens]


def parse_matcher(text: str) -> Matcher:
    """One matcher such as `service="api"`; MatcherError naming the problem."""
    match = _MATCHER.match(text)
    if match is None:
        raise MatcherError(f"bad matcher format: {text.strip()}")
    name, operator, raw = match.groups()
    if raw == "":
        raise MatcherError(f"matcher value is not present: {text.strip()}")
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    expect_trailing_quote = quoted
    value: list[str] = []
    escaped = False
    for index, char in enumerate(body):
        if escaped:
            escaped = False
            if char == "n":
                value.append("\n")
            elif char in ('"', "\\"):
                value.append(char)
            else:
                # A spurious escape: the backslash is literal.
                value.append("\\" + char)
            continue
        if char == "\\":
            if index < len(body) - 1:
                escaped = True
                continue
            value.append("\\")  # a backslash as the last character is literal
        elif char == '"':
            if not expect_trailing_quote or index < len(body) - 1:
                raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
            expect_trailing_quote = False
        else:
            value.append(char)
    if expect_trailing_quote:
        raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
    return Matcher.create(name, MatchType(operator), "".join(value))


# --- regular expressions ---------------------------------------------------------------------

# POSIX classes that RE2 accepts inside brackets, as Python ranges.
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_REFUSED_GROUPS = {
    "?=": "lookahead (?=...)",
    "?!": "negative lookahead (?!...)",
    "?<=": "lookbehind (?<=...)",
    "?<!": "negative lookbehind (?<!...)",
    "?>": "atomic groups (?>...)",
    "?P=": "backreferences (?P=name)",
    "?#": "comments (?#...)",
}
_QUANTIFIER_ENDS = "*+?}"


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled for `fullmatch`, which is Alertmanager's `^(?:pattern)$`."""
    translated = _translate_re2(pattern)
    try:
        with warnings.catch_warnings():
            # Python warns about constructs it may read differently one day; RE2 has no such
            # constructs, and the translation escapes the characters concerned.
            warnings.simplefilter("ignore")
            # Matched with fullmatch, which anchors the whole pattern as ^(?:...)$ does.
            return re.compile(translated)
    except re.error as exc:
        raise MatcherError(f'bad regex "{pattern}": {exc}') from exc


def _refuse(pattern: str, what: str) -> MatcherError:
    return MatcherError(
        f'bad regex "{pattern}": {what} not supported by Alertmanager\'s regular expressions (RE2)'
    )


def _translate_re2(pattern: str) -> str:
    """RE2 syntax as Python `re` syntax; MatcherError for what RE2 or this module refuses."""
    out: list[str] = []
    index = 0
    length = len(pattern)
    # Length of `out` right after a class opened (`[` or `[^`); None outside classes. A `]` at that
    # point is a literal, in RE2 as in Python.
    class_start: int | None = None
    while index < length:
        char = pattern[index]
        if char == "\\" and index + 1 < length:
            index = _translate_escape(pattern, index, out)
            continue
        if class_start is not None:
            if char == "]" and len(out) > class_start:
                class_start = None
                out.append(char)
            elif char == "[" and pattern.startswith("[:", index):
                end = pattern.find(":]", index + 2)
                name = pattern[index + 2 : end] if end >= 0 else ""
                ranges = _POSIX_CLASSES.get(name)
                if ranges is None:
                    raise MatcherError(f'bad regex "{pattern}": unknown class [:{name}:]')
                out.append(ranges)
                index = end + 2
                continue
            elif char in "[&~|" or (char == "-" and pattern.startswith("--", index)):
                out.append("\\" + char)  # literal in RE2; Python would read a nested set
            else:
                out.append(char)
            index += 1
            continue
        if char == "[":
            out.append(char)
            index += 1
            if pattern.startswith("^", index):
                out.append("^")
                index += 1
            class_start = len(out)
            continue
        if char == "(" and pattern.startswith("?", index + 1):
            for prefix, what in _REFUSED_GROUPS.items():
                if pattern.startswith(prefix, index + 1):
                    raise _refuse(pattern, f"{what} are")
            if pattern.startswith("?<", index + 1):
                out.append("(?P<")  # Go also reads (?<name>...); Python 3.11 only (?P<name>...)
                index += 3
                continue
            flags = re.match(r"\?([a-zA-Z-]*)[:)]", pattern[index + 1 :])
            if flags and "U" in flags.group(1):
                raise MatcherError(f'bad regex "{pattern}": the ungreedy flag U is not supported')
        if (
            char == "+"
            and index > 0
            and pattern[index - 1] in _QUANTIFIER_ENDS
            and not (index > 1 and pattern[index - 2] == "\\")
        ):
            raise _refuse(pattern, "possessive quantifiers (x*+) are")
        out.append(char)
        index += 1
    return "".join(out)


def _translate_escape(pattern: str, index: int, out: list[str]) -> int:
    """Translate the escape at `index` (a backslash) into `out`; the index after it."""
    escape = pattern[index + 1]
    if escape.isdigit() and escape != "0":
        raise _refuse(pattern, f"backreferences (\\{escape}) are")
    if escape in "pP":
        raise MatcherError(
            f'bad regex "{pattern}": Unicode classes (\\{escape}) are not supported here; '
            "use a character range instead"
        )
    if escape == "z":
        out.append("\\Z")  # end of text: RE2's \z is Python's \Z
        return index + 2
    if escape == "Q":
        # \Q...\E quotes everything up to \E, or to the end.
        end = pattern.find("\\E", index + 2)
        out.append(re.escape(pattern[index + 2 : end if end >= 0 else len(pattern)]))
        return end + 2 if end >= 0 else len(pattern)
    if escape == "x" and pattern.startswith("{", index + 2):
        # RE2's \x{10FFFF}: any code point in hex.
        end = pattern.find("}", index + 3)
        digits = pattern[index + 3 : end] if end >= 0 else ""
        if not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise MatcherError(f'bad regex "{pattern}": bad escape \\x{{{digits}')
        out.append(f"\\U{int(digits, 16):08x}")
        return end + 1
    out.append("\\" + escape)
    return index + 2
