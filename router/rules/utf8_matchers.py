"""Alertmanager's UTF-8 matcher parser (`matcher/parse`, the default since Alertmanager 0.27).

A port of `matcher/parse/lexer.go`, `token.go` and `parse.go`, with the same grammar and the same
error messages (positions are rune columns, as there):

- an optional `{`, matchers separated by commas, an optional trailing comma, and `}` if `{` opened;
  `{}` and the empty string are no matcher at all;
- a label name or value is either double-quoted, with Go's escapes (`strconv.Unquote`: `\\n`,
  `\\t`, `\\"`, `\\\\`, `\\xHH`, `\\u2603`, ... and nothing else), or unquoted: any run of
  characters but whitespace and ``{}!=~,\\"'` ``. So label names may be any UTF-8 text
  (`{"service name"="api"}`), and regexes with backslashes must be quoted and escaped
  (`"\\\\d+"`).

`parse_utf8(text)` gives (name, operator, value) triples or raises Utf8MatcherError; making
matchers from them (and compiling regexes) is left to `matchers.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_RESERVED = "{}!=~,\\\"'`"


class Utf8MatcherError(ValueError):
    """Input the UTF-8 parser refuses; the message is Alertmanager's."""


def _is_reserved(char: str) -> bool:
    return char.isspace() or char in _RESERVED


class _Kind(enum.Enum):
    EOF = "EOF"
    OPEN_BRACE = "OpenBrace"
    CLOSE_BRACE = "CloseBrace"
    COMMA = "Comma"
    EQUALS = "="
    NOT_EQUALS = "!="
    MATCHES = "=~"
    NOT_MATCHES = "!~"
    QUOTED = "Quoted"
    UNQUOTED = "Unquoted"


_OPERATORS = (_Kind.EQUALS, _Kind.NOT_EQUALS, _Kind.MATCHES, _Kind.NOT_MATCHES)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    value: str
    start: int  # columns (runes), as Alertmanager reports them
    end: int

    def unquote(self) -> str:
        if self.kind is not _Kind.QUOTED:
            return self.value
        try:
            return go_unquote(self.value)
        except ValueError as exc:
            raise Utf8MatcherError(f"{self.start}:{self.end}: {self.value}: invalid input") from exc


class _Lexer:
    """lexer.go: tokens of the input, one per `scan`; the first error sticks."""

    def __init__(self, text: str) -> None:
        self.input = text
        self.start = 0  # start of the current token
        self.pos = 0  # the cursor
        self.width = 0  # of the last character read (0 at the end)
        self.error: Utf8MatcherError | None = None

    def scan(self) -> _Token:
        if self.error is not None:
            raise self.error
        try:
            return self._scan()
        except Utf8MatcherError as exc:
            self.error = exc
            raise

    def _scan(self) -> _Token:
        while (char := self._next()) is not None:
            if char == "{":
                return self._emit(_Kind.OPEN_BRACE)
            if char == "}":
                return self._emit(_Kind.CLOSE_BRACE)
            if char == ",":
                return self._emit(_Kind.COMMA)
            if char in "=!":
                self._rewind()
                return self._scan_operator()
            if char == '"':
                self._rewind()
                return self._scan_quoted()
            if not _is_reserved(char):
                self._rewind()
                return self._scan_unquoted()
            if char.isspace():
                self.start = self.pos
                continue
            raise Utf8MatcherError(
                f"{self.start}:{self.pos}: {self.input[self.start : self.pos]}: invalid input"
            )
        return _Token(_Kind.EOF, "", self.start, self.pos)

    def _scan_operator(self) -> _Token:
        if self._accept("!"):
            if self._accept("="):
                return self._emit(_Kind.NOT_EQUALS)
            if self._accept("~"):
                return self._emit(_Kind.NOT_MATCHES)
            raise self._expected("=~")
        if self._accept("="):
            if self._accept("~"):
                return self._emit(_Kind.MATCHES)
            return self._emit(_Kind.EQUALS)
        raise self._expected("!=")  # pragma: no cover - only called on "=" or "!"

    def _scan_quoted(self) -> _Token:
        self._accept('"')
        escaped = False
        while (char := self._next()) is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                self._rewind()
                break
        if not self._accept('"'):
            raise Utf8MatcherError(
                f'{self.start}:{self.pos}: {self.input[self.start : self.pos]}: missing end "'
            )
        return self._emit(_Kind.QUOTED)

    def _scan_unquoted(self) -> _Token:
        while (char := self._next()) is not None:
            if _is_reserved(char):
                self._rewind()
                break
        return self._emit(_Kind.UNQUOTED)

    def peek(self) -> _Token:
        saved = (self.start, self.pos, self.width)
        try:
            return self.scan()
        finally:
            self.start, self.pos, self.width = saved

    def _expected(self, expected: str) -> Utf8MatcherError:
        if self.pos >= len(self.input):
            return Utf8MatcherError(
                f"{self.start}:{self.pos}: unexpected end of input, expected one of '{expected}'"
            )
        return Utf8MatcherError(
            f"{self.start}:{self.pos}: {self.input[self.start : self.pos]}: "
            f"expected one of '{expected}'"
        )

    def _accept(self, valid: str) -> bool:
        char = self._next()
        if char is not None and char in valid:
            return True
        self._rewind()
        return False

    def _emit(self, kind: _Kind) -> _Token:
        token = _Token(kind, self.input[self.start : self.pos], self.start, self.pos)
        self.start = self.pos
        return token

    def _next(self) -> str | None:
        if self.pos >= len(self.input):
            self.width = 0
            return None
        self.width = 1
        self.pos += 1
        return self.input[self.pos - 1]

    def _rewind(self) -> None:
        self.pos -= self.width


def parse_utf8(text: str) -> list[tuple[str, str, str]]:
    """parse.go `Matchers`: every (label name, operator, value) of `text`; Utf8MatcherError."""
    lexer = _Lexer(text)
    found: list[tuple[str, str, str]] = []

    def peek(*kinds: _Kind) -> _Token | None:
        """The next token if one of `kinds`, None at the end; an error naming it otherwise."""
        token = lexer.peek()
        if token.kind is _Kind.EOF:
            return None
        if token.kind not in kinds:
            raise Utf8MatcherError(f"{token.start}:{token.end}: unexpected {token.value}")
        return token

    def expect(what: str, *kinds: _Kind) -> _Token:
        try:
            token = peek(*kinds)
        except Utf8MatcherError as exc:
            raise Utf8MatcherError(f"{exc}: {what}") from None
        if token is None:
            raise Utf8MatcherError(f"end of input: {what}")
        lexer.scan()
        return token

    first = lexer.peek()
    if first.kind is _Kind.EOF:
        return found
    has_open_brace = first.kind is _Kind.OPEN_BRACE
    if has_open_brace:
        lexer.scan()
    following = lexer.peek()
    state = "close" if following.kind in (_Kind.EOF, _Kind.CLOSE_BRACE) else "matcher"
    while state != "eof":
        if state == "matcher":
            name = expect("expected label name", _Kind.QUOTED, _Kind.UNQUOTED).unquote()
            operator = expect(
                "expected an operator such as '=', '!=', '=~' or '!~'", *_OPERATORS
            ).kind.value
            value = expect("expected label value", _Kind.UNQUOTED, _Kind.QUOTED).unquote()
            found.append((name, operator, value))
            try:
                after = peek(_Kind.COMMA, _Kind.CLOSE_BRACE)
            except Utf8MatcherError as exc:
                raise Utf8MatcherError(f"{exc}: expected a comma or close brace") from None
            if after is None or after.kind is _Kind.CLOSE_BRACE:
                state = "close"
                continue
            lexer.scan()  # the comma
            try:
                after = peek(_Kind.CLOSE_BRACE, _Kind.UNQUOTED, _Kind.QUOTED)
            except Utf8MatcherError as exc:
                message = f"{exc}: expected a matcher or close brace after comma"
                raise Utf8MatcherError(message) from None
            state = (
                "matcher" if after is not None and after.kind is not _Kind.CLOSE_BRACE else "close"
            )
        elif state == "close":
            token = lexer.peek()
            if has_open_brace:
                if token.kind is not _Kind.CLOSE_BRACE:
                    what = (
                        "end of input" if token.kind is _Kind.EOF else f"unexpected {token.value}"
                    )
                    raise Utf8MatcherError(f"0:{token.end}: {what}: expected close brace")
                lexer.scan()
            elif token.kind is _Kind.CLOSE_BRACE:
                raise Utf8MatcherError(f"0:{token.end}: }}: expected opening brace")
            state = "end"
        else:  # "end": nothing may follow
            token = lexer.scan()
            if token.kind is not _Kind.EOF:
                raise Utf8MatcherError(
                    f"{token.start}:{token.end}: {token.value}: expected end of input"
                )
            state = "eof"
    return found


# strconv.Unquote's escapes of one character, in a double-quoted string.
_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    '"': 34,
}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}
_HEX = "0123456789abcdefABCDEF"


def go_unquote(quoted: str) -> str:
    """Go's `strconv.Unquote` of a double-quoted string; ValueError when Go refuses it."""
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise ValueError("not a quoted string")
    body = quoted[1:-1]
    if "\n" in body:
        raise ValueError("a line feed in a quoted string")
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        index += 1
        if char == '"':
            raise ValueError("an unescaped double quote")
        if char != "\\":
            out += char.encode("utf-8")
            continue
        if index >= len(body):
            raise ValueError("a backslash at the end")
        escape = body[index]
        index += 1
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
        elif escape in _HEX_DIGITS:
            digits = body[index : index + _HEX_DIGITS[escape]]
            index += len(digits)
            if len(digits) < _HEX_DIGITS[escape] or not all(
                c in "0123456789abcdefABCDEF" for c in digits
            ):
                raise ValueError(f"bad escape \\{escape}{digits}")
            code = int(digits, 16)
            if escape == "x":
                out.append(code)  # a byte, not a character, as in Go
            elif code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise ValueError(f"bad code point \\{escape}{digits}")
            else:
                out += chr(code).encode("utf-8")
        elif escape in "01234567":
            digits = body[index - 1 : index + 2]
            index += 2
            if len(digits) < 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError(f"bad octal escape \\{digits}")
            out.append(int(digits, 8))
        else:
            raise ValueError(f"unknown escape \\{escape}")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("quoted string contains invalid UTF-8 code points") from exc
