"""Matchers against Alertmanager's documented behaviour (pkg/labels: parse_test.go, matcher.go)."""

from __future__ import annotations

import pytest

from router.rules import Matcher, MatcherError, MatchType, parse_matcher, parse_matchers
from router.rules.regex import compile_anchored, compile_set

EQ, NE, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX


def triples(matchers: list[Matcher]) -> list[tuple[str, MatchType, str]]:
    return [(m.name, m.type, m.value) for m in matchers]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{foo="bar"}', [("foo", EQ, "bar")]),
        ('{foo=~"bar.*"}', [("foo", RE, "bar.*")]),
        ('{foo!="bar"}', [("foo", NE, "bar")]),
        ('{foo!~"bar.*"}', [("foo", NRE, "bar.*")]),
        ('{foo="bar", baz!="quux"}', [("foo", EQ, "bar"), ("baz", NE, "quux")]),
        (
            '{foo="bar",baz!~".*quux", derp="wat"}',
            [("foo", EQ, "bar"), ("baz", NRE, ".*quux"), ("derp", EQ, "wat")],
        ),
        ('{foo=""}', [("foo", EQ, "")]),
        ('{foo="bar,quux", job="job1"}', [("foo", EQ, "bar,quux"), ("job", EQ, "job1")]),
        ('{foo = "bar", dings != "bums", }', [("foo", EQ, "bar"), ("dings", NE, "bums")]),
        ("foo=bar,dings!=bums", [("foo", EQ, "bar"), ("dings", NE, "bums")]),
        (
            '{quote="She said: \\"Hi, ladies! That\'s gender-neutral…\\""}',
            [("quote", EQ, 'She said: "Hi, ladies! That\'s gender-neutral…"')],
        ),
        ('statuscode=~"5.."', [("statuscode", RE, "5..")]),
        # '=~' is taken before '=': the value is "~~".
        ("tricky=~~~", [("tricky", RE, "~~")]),
        # \\ is a backslash, \" a quote, and a backslash before anything else stays literal.
        (r"trickier==\\=\=\"", [("trickier", EQ, r'=\=\="')]),
        (
            r'contains_quote != "\"" , contains_comma !~ "foo,bar" , ',
            [("contains_quote", NE, '"'), ("contains_comma", NRE, "foo,bar")],
        ),
        (r'line="a\nb"', [("line", EQ, "a\nb")]),
        ('  spaced   =   "  kept inside quotes  "  ', [("spaced", EQ, "  kept inside quotes  ")]),
        ("unquoted=value with spaces", [("unquoted", EQ, "value with spaces")]),
        ('colon:name="x"', [("colon:name", EQ, "x")]),
        ("trailing=back\\", [("trailing", EQ, "back\\")]),
        # Since Alertmanager 0.27: an empty value, no matcher at all, UTF-8 label names.
        ("job=", [("job", EQ, "")]),
        ("", []),
        ("{}", []),
        ('{invalid-name = "valid label"}', [("invalid-name", EQ, "valid label")]),
        ('{"service name"="api"}', [("service name", EQ, "api")]),
        ('{"foo"=~"\\\\d+"}', [("foo", RE, "\\d+")]),
    ],
)
def test_parses_like_alertmanager(text: str, expected: list[tuple[str, MatchType, str]]) -> None:
    assert triples(parse_matchers(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('job="value', 'matcher value contains unescaped double quote: "value'),
        ('job=value"', 'matcher value contains unescaped double quote: value"'),
        (r'trickier==\\=\=\""', r'matcher value contains unescaped double quote: =\\=\=\""'),
        (
            'contains_unescaped_quote = foo"bar',
            'matcher value contains unescaped double quote: foo"bar',
        ),
        ('"foo=\\"bar\\""', 'bad matcher format: "foo=\\"bar\\""'),
        ('"{foo=\\"bar\\"}"', 'bad matcher format: "{foo=\\"bar\\"}"'),
        ('foo="bar",,baz="x"', "bad matcher format: "),
        ("alertname", "bad matcher format: alertname"),
        ('{foo=~"invalid[regexp"}', 'bad regex "invalid[regexp": missing ]: [regexp)$'),
        ('x=~"(a"', 'bad regex "(a": missing ): ^(?:(a)$'),
    ],
)
def test_refuses_like_alertmanager(text: str, message: str) -> None:
    with pytest.raises(MatcherError) as caught:
        parse_matchers(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('service="api"', {"service": "api"}, True),
        ('service="api"', {"service": "api2"}, False),
        ('service="api"', {}, False),
        ('service="Api"', {"service": "api"}, False),  # case-sensitive
        # A missing label is the empty string.
        ('team=""', {}, True),
        ('team=""', {"team": ""}, True),
        ('team=""', {"team": "ops"}, False),
        ('team!=""', {}, False),
        ('team!=""', {"team": "ops"}, True),
        ('team!="ops"', {}, True),
        ('team=~".*"', {}, True),
        ('team=~".+"', {}, False),
        ('team!~".+"', {}, True),
        ('team!~".+"', {"team": "ops"}, False),
        # Regexes are anchored at both ends.
        ('alertname=~"Disk.*"', {"alertname": "DiskFull"}, True),
        ('alertname=~"Disk.*"', {"alertname": "NodeDiskFull"}, False),
        ('alertname=~"Disk"', {"alertname": "DiskFull"}, False),
        # ... around the whole alternation, as ^(?:a|b)$.
        ('x=~"a|b"', {"x": "a"}, True),
        ('x=~"a|b"', {"x": "b"}, True),
        ('x=~"a|b"', {"x": "ab"}, False),
        ('x=~"a|ab"', {"x": "ab"}, True),
        ('x!~"a|b"', {"x": "c"}, True),
        ('x!~"a|b"', {"x": "a"}, False),
        ('code=~"5.."', {"code": "503"}, True),
        ('code=~"5.."', {"code": "5031"}, False),
        ('name=~"(?i)bar"', {"name": "BAR"}, True),
        # `.` does not match a line feed unless (?s) says so.
        ('text=~".*"', {"text": "a\nb"}, False),
        ('text=~"(?s).*"', {"text": "a\nb"}, True),
        # Anchoring is not fooled by a trailing line feed, unlike Python's `$`.
        ('x=~"a"', {"x": "a\n"}, False),
        ('x=~"a$"', {"x": "a"}, True),
        # RE2 syntax that Python spells differently.
        ('x=~"[[:digit:]]+"', {"x": "123"}, True),
        ('x=~"[[:digit:]]+"', {"x": "12a"}, False),
        ('x=~"[^[:space:]]+"', {"x": "ab"}, True),
        ('x=~"(?<first>a)b"', {"x": "ab"}, True),
        ('x=~"a\\\\z"', {"x": "a"}, True),
        ('x=~"\\\\Q.*\\\\E"', {"x": ".*"}, True),
        ('x=~"\\\\Q.*\\\\E"', {"x": "anything"}, False),
        ('x=~"\\\\x{41}"', {"x": "A"}, True),
        ('x=~"[]a]"', {"x": "]"}, True),
        ('x=~"[a&&b]+"', {"x": "&&"}, True),
        # RE2 where Python's re reads otherwise: ASCII classes, a{,3} a literal, Unicode classes,
        # POSIX negation, flags in mid-pattern, octal escapes, the ungreedy flag.
        ('x=~"\\\\d+"', {"x": "١٢"}, False),
        ('x=~"\\\\d+"', {"x": "12"}, True),
        ('x=~"\\\\w+"', {"x": "é"}, False),
        ('x=~"a\\\\sb"', {"x": "a\u00a0b"}, False),
        ('x=~"a{,3}"', {"x": "a{,3}"}, True),
        ('x=~"a{,3}"', {"x": "aa"}, False),
        ('x=~"\\\\pL+"', {"x": "été"}, True),
        ('x=~"[[:^alpha:]]+"', {"x": "12"}, True),
        ('x=~"a(?i)b"', {"x": "aB"}, True),
        ('x=~"a(?i)b"', {"x": "AB"}, False),
        ('x=~"\\\\101"', {"x": "A"}, True),
        ('x=~"(?U)a+"', {"x": "aaa"}, True),
        # Alertmanager writes ^(?:...)$ around the text as it is, so a stray ) reaches outside.
        ('x=~"a)|(b"', {"x": "axyz"}, True),
    ],
)
def test_matches_like_alertmanager(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(?=a)a", "invalid perl operator: (?="),
        ("(?!a)b", "invalid perl operator: (?!"),
        ("(?<=a)b", "invalid perl operator: (?<="),
        ("(?<!a)b", "invalid perl operator: (?<!"),
        ("(?>a)", "invalid perl operator: (?>"),
        ("(a)\\\\1", "invalid escape sequence: \\1"),
        ("(?P<n>a)(?P=n)", "invalid perl operator: (?P"),
        ("a*+", "bad repetition operator: *+"),
        ("[[:nope:]]", "invalid character class range: [:nope:]"),
        # Python's re reads these; RE2 does not.
        ("\\\\Z", "invalid escape sequence: \\Z"),
        ("x{1001}", "invalid repetition size: {1001}"),
        # The C++ RE2 reads \C (any byte); Go's, which Alertmanager runs, does not.
        ("\\\\C", "invalid escape sequence: \\C"),
    ],
)
def test_refuses_what_re2_refuses(pattern: str, message: str) -> None:
    with pytest.raises(MatcherError) as caught:
        parse_matcher(f'x=~"{pattern}"')
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('alertname = "ServiceDown"', 'alertname="ServiceDown"'),
        ("alertname=~ServiceDown|.*Outage", 'alertname=~"ServiceDown|.*Outage"'),
        (r'quote!="say \"hi\""', r'quote!="say \"hi\""'),
        (r'path!~"C:\\temp\n"', r'path!~"C:\\temp\n"'),
    ],
)
def test_prints_in_alertmanager_form(text: str, shown: str) -> None:
    matcher = parse_matcher(text)
    assert str(matcher) == shown
    assert parse_matcher(shown) == matcher


# Alert-name regexes of many rules are matched as one RE2 set (rules/model.py's index).
SET_PATTERNS = [
    "a",
    "a$",
    "(?s).*",
    "[[:digit:]]+",
    "\\d+",
    "a{,3}",
    "a(?i)b",
    "a)|(b",
    "Service.*Down",
    "(?U)a+",
    "\\Q.*\\E",
]
SET_VALUES = ["", "a", "a\n", "123", "١٢", "a{,3}", "aB", "AB", "axyz", "xb", "Service1Down", ".*"]


@pytest.mark.parametrize("value", SET_VALUES)
def test_a_set_of_regexes_matches_what_each_of_them_matches(value: str) -> None:
    one_by_one = [
        index for index, pattern in enumerate(SET_PATTERNS) if compile_anchored(pattern)(value)
    ]
    assert compile_set(SET_PATTERNS)(value) == one_by_one


def test_an_empty_set_of_regexes_matches_nothing() -> None:
    assert compile_set([])("anything") == []
