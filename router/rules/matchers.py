"""Label matchers in Alertmanager's own syntax and with its semantics.

Since Alertmanager 0.27 a matcher is read by its fallback parser (`matcher/compat`): the UTF-8
parser (`matcher/parse`, ported in `utf8_matchers.py`) first; when it refuses the input, the classic
parser (`pkg/labels/parse.go`, below) reads it, and when both read it but differently, the classic
reading is the one used. `parse_matchers_checked` does the same and says, as a warning for
`check`, when the two parsers disagree or the UTF-8 parser refuses what the classic one reads (the
input will stop working when Alertmanager drops the classic parser), and when a value looks like a
typo (`alertname==X` is `alertname` equal to `=X`).

The classic grammar (`pkg/labels/parse.go`):

- a list may be wrapped in `{...}`; matchers are separated by commas outside double quotes, and a
  trailing comma is allowed: `{service="api", env!~"dev|test"}`;
- a matcher is a label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), one of `=`, `!=`, `=~`, `!~`, and a value
  that may be wrapped in double quotes and may be empty; whitespace around each token is dropped;
- in the value, `\\"` is a double quote, `\\n` a line feed and `\\\\` a backslash; any other
  backslash is a literal backslash; an unescaped double quote inside the value is an error.

Semantics (`pkg/labels/matcher.go`): regexes are RE2, compiled as `^(?:...)$` (`regex.py`); a label
the alert does not have matches as the empty string, so `team=""` holds for an alert without
`team`, and `team!~".+"` too.
"""

from __future__ import annotations

import enum
import functools
import operator
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from router.errors import MatcherError
from router.rules.regex import compile_anchored
from router.rules.utf8_matchers import Utf8MatcherError, parse_utf8


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
            matches = compile_anchored(value)
            test = matches if type_ is MatchType.REGEX else _negated(matches)
        return cls(name, type_, value, test)

    def matches_value(self, value: str) -> bool:
        return self.test(value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the label set satisfies this matcher; a missing label is the empty string."""
        return self.test(labels.get(self.name, ""))

    def __str__(self) -> str:
        """As matcher.go `String` prints it: a name that only the UTF-8 parser reads is quoted."""
        if any(_is_reserved(char) for char in self.name):
            return f"{go_quote(self.name)}{self.type.value}{go_quote(self.value)}"
        return f'{self.name}{self.type.value}"{_escape(self.value)}"'

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.name, self.type.value, self.value)


def _negated(test: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: not test(value)


def _is_reserved(char: str) -> bool:
    return char.isspace() or char in "{}!=~,\\\"'`"


def _escape(value: str) -> str:
    # matcher.go openMetricsEscape: backslash, line feed and double quote.
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """Go's `strconv.Quote`: printable characters as they are, the others escaped."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char == " " or not unicodedata.category(char).startswith(("C", "Z")):
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


@dataclass(frozen=True, slots=True)
class ParsedMatchers:
    """The matchers Alertmanager reads in one entry, and what `check` should warn about it."""

    matchers: list[Matcher]
    warnings: list[str]


def parse_matchers(text: str) -> list[Matcher]:
    """Every matcher of a list such as `{a="1", b=~"x|y"}`, as Alertmanager reads it; MatcherError
    if bad."""
    return parse_matchers_checked(text).matchers


def parse_matchers_checked(text: str) -> ParsedMatchers:
    """`matcher/compat` FallbackMatchersParser: the UTF-8 parser's matchers, else the classic
    parser's, with warnings where they part; MatcherError (the classic one's) when both refuse."""
    utf8: list[Matcher] | None = None
    try:
        utf8 = [Matcher.create(name, MatchType(op), value) for name, op, value in parse_utf8(text)]
    except (Utf8MatcherError, MatcherError) as exc:
        utf8_error = str(exc)
    classic: list[Matcher] | None = None
    try:
        classic = parse_classic(text)
    except MatcherError:
        if utf8 is None:
            raise
    if utf8 is None:
        assert classic is not None
        shown = ",".join(str(m) for m in classic)
        warnings = [
            f"only Alertmanager's classic matcher parser reads this ({utf8_error} in the UTF-8 "
            f"parser); write it as {shown} (quote values and regexes, escape backslashes)",
            *_typos(classic),
        ]
        return ParsedMatchers(classic, warnings)
    if classic is not None and [m.triple for m in classic] != [m.triple for m in utf8]:
        warning = (
            "Alertmanager's classic and UTF-8 matcher parsers read this differently: classic "
            f"{_listed(classic)}, UTF-8 {_listed(utf8)}; Alertmanager uses the classic reading, "
            "and so does this rule"
        )
        return ParsedMatchers(classic, [warning, *_typos(classic)])
    return ParsedMatchers(utf8, [])


def _listed(matchers: list[Matcher]) -> str:
    # Go-quoted values: the readings often differ in characters that do not show (a tab).
    return "{" + ",".join(f"{m.name}{m.type.value}{go_quote(m.value)}" for m in matchers) + "}"


def _typos(matchers: list[Matcher]) -> list[str]:
    """`alertname==X` is read as alertname equal to "=X": most likely one `=` too many."""
    return [
        f'{m.name}{m.type.value}"{_escape(m.value)}" has a value that starts with '
        f'"{m.value[0]}"; did you mean {m.name}{m.type.value}"{_escape(m.value[1:])}"?'
        for m in matchers
        if m.value[:1] in ("=", "~", "!")
    ]


def parse_classic(text: str) -> list[Matcher]:
    """pkg/labels ParseMatchers: every matcher of a list such as `{a="1", b=~"x|y"}` or
    `a=1,b!=2`; MatcherError if bad. `{}` and the empty string are no matcher."""
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
    return [parse_matcher(token) for token in tokens]


def parse_matcher(text: str) -> Matcher:
    """pkg/labels ParseMatcher: one matcher such as `service="api"` (the value may be empty);
    MatcherError naming the problem."""
    match = _MATCHER.match(text)
    if match is None:
        raise MatcherError(f"bad matcher format: {text}")
    name, operator, raw = match.groups()
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
