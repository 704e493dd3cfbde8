"""Ranking incident sections against an alert: terms, BM25F, and the heading that names the alert.

What the alert says (its name split at CamelCase, snake_case and kebab-case, every text annotation,
its identifying labels, the names of the rules it matched) is ranked against every incident
section with BM25F (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and
Beyond", 2009, §3.5): each section has fields of different weight (its heading most, then its
Symptoms part, the headings above it, its file name, then the rest of its text with its parts),
term frequencies are length-normalised per field, summed by field weight and saturated once.
Rare terms weigh more (IDF over the library), so a word that every section of a service repeats
says little. Link targets and URLs are not text: a list of dashboards does not explain an alert
because its URLs repeat the service name. Words are stemmed (Snowball English) and a few narrow,
reviewed synonyms are folded on both sides, so that `ServiceDown` meets "Service Outage".

The score is normalised by the most the query could score (every term fully saturated), so it reads
as "how much of what the alert says this section explains", from 0 to about 1. A heading that is
the alert's name (or nearly: same terms) adds `HEADING_MATCH_WEIGHT` times the overlap, so the
section named after the alert wins over sections that merely mention it. Sections in the runbook
named like the alert's service score `SERVICE_BOOST` more. docs/runbooks.md explains the method.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import snowballstemmer

from router.runbooks.roles import without_heading_id, without_links
from router.runbooks.sections import SYMPTOMS, Section

_STEMMER = snowballstemmer.stemmer("english")

# Words that say nothing about which runbook section applies. `high`, `low`, `too`, `much` and
# `many` say which way and how far a threshold was crossed (`HighCPUUsage`, `TooManyRestarts`), not
# what the problem is: kept, they let "High Memory Usage" answer a CPU alert and "Too much disk
# space used" a memory one. The rest are the filler of alert templates ("for more than 15
# minutes", "on instance x", "is above").
# fmt: off
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "for", "from", "has", "have", "in",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will",
    "with", "when", "which", "than", "then", "there", "these", "those", "into", "over", "under",
    "after", "before", "not", "no", "yes", "if", "so", "do", "does", "did", "can", "could",
    "should", "would", "may", "might", "must", "our", "we", "you", "your", "they", "their",
    "alert", "alerts", "alerting", "firing", "fired", "text", "rule", "rules", "value", "values",
    "instance", "job", "pod", "host", "high", "low", "too", "much", "many", "more", "less", "last",
    "minutes", "minute",
    "hours", "hour", "seconds", "second", "min", "above", "below", "currently", "since",
    "being", "during", "per", "some", "any", "all", "one", "two", "about", "out", "up",
    "had", "also", "only", "very", "just", "now",
    # Documentation sites title problems as a reader asks them ("Why isn't my certificate
    # renewed?", "Envoy won't connect to my service"): the asking is not the problem.
    "i", "me", "my", "what", "why", "how", "where", "who", "whose", "isn", "aren", "wasn",
    "doesn", "don", "didn", "won", "wouldn", "shouldn", "couldn", "cannot", "haven", "hasn",
))
# fmt: on

# Synonyms that matter in operations, folded to the first word of each group (after stemming).
# Each group is one thing said in other words: never two products (MySQL is not PostgreSQL), never
# a word that means something else in another phrase ("dead tuples" are not an outage).
_SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("outage", "down", "unavailable", "unreachable", "offline"),
    ("slow", "latency", "latencies", "sluggish"),
    ("error", "errors", "5xx", "exception", "exceptions"),
    ("fail", "failed", "failure", "failures", "failing"),
    ("memory", "oom", "oomkilled", "rss"),
    ("corrupt", "corruption", "corrupted", "integrity"),
    ("database", "db", "databases"),
    ("postgres", "postgresql", "pg"),
    ("storage", "disk", "disks", "filesystem"),
    ("missing", "absent", "gap", "gaps"),
    ("certificate", "cert", "certs"),
    ("breach", "compromise", "compromised", "leak", "leaked", "intrusion", "unauthorized"),
    ("backlog", "queue", "queued"),
    ("kubernetes", "k8s", "kube"),
    ("skew", "skewed", "drift", "drifting"),
    # The stemmer keeps the noun apart from the verb ("expiry" → expiri, "expired" → expir).
    ("expire", "expiry"),
)
_SYNONYMS: Mapping[str, str] = {
    _STEMMER.stemWord(word): _STEMMER.stemWord(group[0])
    for group in _SYNONYM_GROUPS
    for word in group
}

_WORD = re.compile(r"[^\W_]+")
# CamelCase pieces: an acronym before a capitalised word (`HTTPErrors` → HTTP, Errors),
# capitalised or lower-case words, numbers with their unit (`5xx`, `99th`).
# An acronym's plural keeps its acronym (`OOMs` → OOM and a lone "s", which is no term; not "OO"
# and "Ms").
_CAMEL_PIECE = re.compile(
    r"[A-Z]{2,}(?=s(?:[A-Z]|$))|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+[a-z]*"
)
# A product name that ends in an acronym ("RabbitMQ", "PostgreSQL", "MongoDB") is one word: prose
# writes it so, an alert name as one CamelCase piece (`RabbitmqNodeDown`), a label in lower case.
# Split at the acronym, the guide's "RabbitMQ" never met the alert's "Rabbitmq".
_ACRONYM_ENDED = re.compile(r"^[A-Z][a-z]+[A-Z]{2,}$")
# Numbers alone (`15`, `0.95`) and hexadecimal ids say nothing about the problem.
_NOISE = re.compile(r"^(?:\d+|[0-9a-f]{8,})$")
_STATUS_CODE = re.compile(r"^[45]\d\d$")


def words(text: str) -> list[str]:
    """The words of a text, CamelCase, snake_case and kebab-case split, lower-cased; a name that
    ends in an acronym ("RabbitMQ") is one word."""
    found: list[str] = []
    for token in _WORD.findall(text):
        found.extend(_pieces(token))
    return found


# Alerts and runbooks repeat the same few thousand tokens and words: each is split, filtered and
# stemmed once, which keeps a search's query cheap.
@functools.lru_cache(maxsize=65536)
def _pieces(token: str) -> tuple[str, ...]:
    if token.islower() or token.isupper() or token.isdigit() or _ACRONYM_ENDED.match(token):
        return (token.lower(),)
    return tuple(piece.lower() for piece in _CAMEL_PIECE.findall(token))


def terms(text: str) -> list[str]:
    """Search terms: words minus stopwords and numbers, stemmed, synonyms folded."""
    return [t for _, t in word_terms(text)]


def word_terms(text: str) -> list[tuple[str, str]]:
    """(word as written, term) for every word of `text` that is a search term. An HTTP status
    code is the word for its class (`503` → `5xx`), the way alerts name them."""
    found = []
    for token in _WORD.findall(text):
        for w in _pieces(token):
            term = _word_term(w)
            if term is not None:
                found.append((w, term))
    return found


@functools.lru_cache(maxsize=65536)
def _word_term(word: str) -> str | None:
    """The term of one lower-cased word, or None for a stopword, a letter or a number."""
    if _STATUS_CODE.match(word):
        return _term(word[0] + "xx")
    if word in _STOPWORDS or len(word) < 2 or _NOISE.match(word):
        return None
    return _term(word)


@functools.lru_cache(maxsize=65536)
def _term(word: str) -> str:
    stem = _STEMMER.stemWord(word)
    return _SYNONYMS.get(stem, stem)


# Field weights and length normalisation (BM25F's w_f and b_f); k1 is the usual 1.2.
_K1 = 1.2
_FIELDS: Mapping[str, tuple[float, float]] = {
    "heading": (5.0, 0.3),
    "symptoms": (1.5, 0.75),
    "path": (1.0, 0.3),
    "file": (1.0, 0.0),
    "body": (1.0, 0.75),
}
# How a field is named in the evidence a dry run shows.
FIELD_NAMES: Mapping[str, str] = {
    "heading": "heading",
    "symptoms": "symptoms",
    "path": "headings above",
    "file": "file name",
    "body": "text",
}
_GENERIC_FILE_WORDS = frozenset({"runbook", "runbooks", "readme", "index", "docs", "md"})


def file_terms(file: str) -> list[str]:
    """The terms of a runbook's path (`db/zkp-ledger.html.md` → db, zkp, ledger), generic names
    and extensions left out."""
    folder, _, name = file.rpartition("/")
    stem = f"{folder} {name.split('.', 1)[0]}"
    return [t for t in terms(stem.replace("/", " ")) if t not in _GENERIC_FILE_WORDS]


# A docs site's template tags in the text (Hugo's `{{< note >}}`, `{{% alert title="Warning" %}}`,
# `{{< glossary_tooltip text="kube-proxy" term_id="kube-proxy" >}}`): markup around the words, not
# words; the text a tag shows (`text="..."`, `title="..."`) is kept.
_TEMPLATE_TAG = re.compile(r"\{\{[<%].*?[>%]\}\}", re.DOTALL)
_SHOWN_TEXT = re.compile(r"\b(?:text|title)=\"([^\"]*)\"")


def without_template_tags(markdown: str) -> str:
    """The Markdown with template tags dropped and the text they show kept."""
    if "{{" not in markdown:
        return markdown
    return _TEMPLATE_TAG.sub(lambda m: " ".join(_SHOWN_TEXT.findall(m.group(0))) or " ", markdown)


def _section_fields(section: Section) -> dict[str, list[str]]:
    own_text = "\n".join(
        without_template_tags(without_links(block.markdown))
        for block in section.blocks
        if not block.foreign and block.kind not in ("diagram", "html") and block.part != SYMPTOMS
    )
    return {
        "heading": terms(without_heading_id(section.heading)),
        "symptoms": terms(without_template_tags(without_links(section.parts.get(SYMPTOMS, "")))),
        "path": terms(" ".join(section.path[:-1])),
        "file": file_terms(section.file),
        "body": terms(own_text),
    }


# The numbering runbooks put before an incident's name: "Incident 3:", "Scenario 2 -", "1.".
_INCIDENT_NUMBER = re.compile(
    r"^\W*(?:(?:incident|scenario|problem|issue|case|alert|runbook)\s*#?\d+\s*[:.)\-–—]?|\d+(?:\.\d+)*[.):])\s*",
    re.IGNORECASE,
)


def heading_name(heading: str) -> str:
    """What a heading names, its numbering and explicit anchor left out: "Incident 2: High Error
    Rate" → "High Error Rate" (the heading match compares this with the alert's name)."""
    text = without_heading_id(heading)
    return _INCIDENT_NUMBER.sub("", text, count=1) or text


def _squeezed(text: str) -> str:
    """The text's letters and digits, lower-cased: an alert's name as a heading writes it."""
    return "".join(_WORD.findall(text)).lower()


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """One term of a query: its weight, the word the alert wrote, and where it came from."""

    weight: float
    word: str
    source: str


@dataclass(frozen=True, slots=True)
class Query:
    """What an alert says, as weighted terms; each term keeps the highest weight it came with.

    `name_terms` are the terms of the alert's name: the heading that holds them is the section
    named after the alert. `name` is the alert's name as one word, to
    meet a heading that writes it unchanged. Only name terms that no section holds count against
    a section (a product the library does not know); unknown words of prose and labels are noise.
    """

    terms: Mapping[str, QueryTerm]  # strongest first
    name_terms: frozenset[str]
    name: str
    scope: frozenset[str]  # terms of the alert's service/job/app labels, to prefer their runbook

    @classmethod
    def build(
        cls,
        sources: Iterable[tuple[str, str, float]],
        *,
        name: str = "",
        scope_labels: Iterable[str] = (),
    ) -> Query:
        """`sources` are (where, text, weight): `("alertname", "KubePodCrashLooping", 1.0)`."""
        found: dict[str, QueryTerm] = {}
        for source, text, weight in sources:
            for word, term in word_terms(text):
                held = found.get(term)
                if held is None or weight > held.weight:
                    found[term] = QueryTerm(weight, word, source)
        scope = frozenset(t for label in scope_labels for t in terms(label))
        # Strongest first (ties in the order the alert says them), as evidence lists them.
        ordered = dict(sorted(found.items(), key=lambda item: -item[1].weight))
        return cls(ordered, frozenset(terms(name)), _squeezed(name), scope)


# A name term that no section holds (a product name, `RabbitMQ`) counts this share of a rare
# word in the most a query could score: the alert is about something the library may not know.
UNSEEN_SHARE = 0.5
# A section in the runbook of the alert's own service scores this much more.
SERVICE_BOOST = 0.25
# A heading that is the alert's name adds this much times the overlap of their terms (1.0 when
# they are the same terms): more than any text can, so the section named for the alert wins.
HEADING_MATCH_WEIGHT = 1.0
# A term that more than this share of a library's sections hold is what the library is about
# (`VictoriaMetrics` on every page of its documentation, `cert-manager` in every section of its
# guides), not what one section is about: it does not count in the heading match. Only in a
# library of at least `SUBJECT_MIN_SECTIONS`: in a handful of sections any word is in most.
SUBJECT_SHARE = 2 / 3
SUBJECT_MIN_SECTIONS = 10
# BM25's IDF, raised to this power. Over a library of a few dozen sections a word that one
# section happens to hold weighs several times a word of the alert's name that a fifth of them
# hold: an incidental word of a long description ("allocated" against "Memory Allocators") then
# outweighs what the alert is about. A power below 1 keeps the order of rarity and narrows the
# range (measured on the tuning part: 0.6 to 0.8 all do better than 1).
IDF_POWER = 0.75
# How many of the best hits get their coverage computed (the candidates a match keeps).
COVERED_HITS = 3


@dataclass(frozen=True, slots=True)
class Hit:
    """A section's score for a query.

    `heading_match` is the overlap of the alert's name and the section's heading (1.0: the same).
    `name_coverage` is the share of the alert name's terms, by IDF, that the section holds
    anywhere; `heading_coverage` the share of the heading's terms that the alert says anywhere.
    A near miss (`KubeAggregatedAPIDown` against "KubeAPIDown", `MySQLReplicationLag` against
    "PostgreSQL replication lag") shows in one of the two: each side names something the other
    does not. They are computed for the first `COVERED_HITS` hits only (0.0 below).
    """

    section: Section
    score: float
    heading_match: float
    index: int
    name_coverage: float = 0.0
    heading_coverage: float = 0.0


@dataclass(frozen=True, slots=True)
class Evidence:
    """One alert term found in one field of a section: `word` (from `source`) in `field`."""

    word: str
    source: str
    field: str


def _idf(sections: int, holding: int) -> float:
    """The weight of a term that `holding` of `sections` sections hold (BM25's IDF, damped)."""
    return math.pow(math.log(1.0 + (sections - holding + 0.5) / (holding + 0.5)), IDF_POWER)


def _ranked(scores: npt.NDArray[np.float64], limit: int | None) -> list[int]:
    """The indexes of the positive scores, highest first, ties in index order (the library's:
    file, then line); the first `limit` when it is given."""
    positive = np.flatnonzero(scores > 0.0)
    values = scores[positive]
    if limit is not None and len(values) > limit:
        # Only the scores at or above the `limit`-th best are sorted (ties at the edge kept).
        edge = np.partition(values, len(values) - limit)[len(values) - limit]
        kept = values >= edge
        positive, values = positive[kept], values[kept]
    # A stable sort of the negated scores keeps equal scores in index order.
    order = positive[np.argsort(-values, kind="stable")]
    return [int(index) for index in (order if limit is None else order[:limit])]


class SearchIndex:
    """BM25F over a fixed list of incident sections; built once per library, queried per alert."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self.sections = tuple(sections)
        fields = [_section_fields(section) for section in self.sections]
        self._field_sets = [{name: frozenset(f[name]) for name in _FIELDS} for f in fields]
        self._all_terms = [frozenset(t for terms_ in f.values() for t in terms_) for f in fields]
        self._file_terms = [frozenset(file_terms(s.file)) for s in self.sections]
        # What a heading (or, for a file's title, the file name) says the section is about.
        self._heading_terms = [frozenset(terms(heading_name(s.heading))) for s in self.sections]
        averages = {
            name: (sum(len(f[name]) for f in fields) / len(fields)) if fields else 0.0
            for name in _FIELDS
        }
        # term -> [(section index, weighted normalised term frequency)]
        frequencies: dict[str, list[tuple[int, float]]] = {}
        for index, section_fields in enumerate(fields):
            combined: dict[str, float] = {}
            for name, (weight, b) in _FIELDS.items():
                tokens = section_fields[name]
                if not tokens:
                    continue
                norm = 1.0 - b + b * (len(tokens) / averages[name] if averages[name] else 1.0)
                for term, count in Counter(tokens).items():
                    combined[term] = combined.get(term, 0.0) + weight * count / norm
            for term, frequency in combined.items():
                frequencies.setdefault(term, []).append((index, frequency))
        count = len(self.sections)
        self._idf = {term: _idf(count, len(hits)) for term, hits in frequencies.items()}
        # term -> (the sections that hold it, what it adds to each for a query weight of 1: IDF ×
        # saturated frequency), two arrays computed once, so that a query adds a term's gains to
        # its sections in one vector operation. Summed one by one in Python, a word that thousands
        # of sections hold cost a millisecond per search.
        self._postings = {
            term: (
                np.fromiter((index for index, _ in hits), dtype=np.intp, count=len(hits)),
                np.fromiter(
                    (self._idf[term] * f / (_K1 + f) for _, f in hits),
                    dtype=np.float64,
                    count=len(hits),
                ),
            )
            for term, hits in frequencies.items()
        }
        # A term that no section holds weighs as much as the rarest held term.
        self._unseen_idf = _idf(count, 1) if count else 0.0
        self._subject = (
            frozenset(t for t, hits in frequencies.items() if len(hits) > SUBJECT_SHARE * count)
            if count >= SUBJECT_MIN_SECTIONS
            else frozenset()
        )
        # What each heading names that the library's subject does not say already.
        self._heading_topic_sizes = [len(h - self._subject) for h in self._heading_terms]
        # Where to look for heading matches and for the runbook of a service, without a scan.
        self._by_heading_term: dict[str, list[int]] = {}
        self._by_heading_word: dict[str, list[int]] = {}
        self._by_file_term: dict[str, set[int]] = {}
        for index, heading in enumerate(self._heading_terms):
            for term in heading - self._subject:
                self._by_heading_term.setdefault(term, []).append(index)
            # The heading as an alert's name writes it, for the exact match of a name.
            name = _squeezed(heading_name(self.sections[index].heading))
            self._by_heading_word.setdefault(name, []).append(index)
            for term in self._file_terms[index]:
                self._by_file_term.setdefault(term, set()).add(index)

    def rank(self, query: Query, limit: int | None = None) -> list[Hit]:
        """Sections with a positive score, best first (ties: in the order the index was given the
        sections, which for a library is file, then line); the first `limit` when it is given."""
        scores = np.zeros(len(self.sections))
        ceiling = 0.0
        for term, held in query.terms.items():
            idf = self._idf.get(term)
            if idf is None:
                if term in query.name_terms:
                    ceiling += held.weight * self._unseen_idf * UNSEEN_SHARE
                continue
            ceiling += held.weight * idf
            holders, gains = self._postings[term]
            # A term is held once per section: no index repeats, so `+=` adds every gain.
            scores[holders] += held.weight * gains
        if ceiling <= 0.0:
            return []
        for index in self._in_scope(query):
            scores[index] *= 1.0 + SERVICE_BOOST
        # Ranked on the raw sums, the heading bonus scaled to them: dividing by the ceiling once
        # per chosen hit rather than once per section keeps a storm's searches cheap.
        matches = self._heading_matches(query, scores)
        for index, match in matches.items():
            scores[index] += HEADING_MATCH_WEIGHT * match * ceiling
        hits = [
            Hit(self.sections[i], float(scores[i]) / ceiling, matches.get(i, 0.0), i)
            for i in _ranked(scores, limit)
        ]
        for position, hit in enumerate(hits[:COVERED_HITS]):
            hits[position] = replace(
                hit,
                name_coverage=self._covered(query.name_terms, self._all_terms[hit.index]),
                heading_coverage=self._covered(self._heading_terms[hit.index], query.terms.keys()),
            )
        return hits

    def _in_scope(self, query: Query) -> set[int]:
        """The sections of the runbook named like the alert's service (`payments.md` for
        `service=payments`, `checkout.md` for `app=checkout-web`)."""
        found: set[int] = set()
        for term in query.scope:
            for index in self._by_file_term.get(term, ()):
                own = self._file_terms[index]
                if own <= query.scope or query.scope <= own:
                    found.add(index)
        return found

    def _heading_matches(self, query: Query, scores: npt.NDArray[np.float64]) -> dict[int, float]:
        """The heading match of every section with a positive score whose heading shares a term
        with the alert's name: 1.0 when the heading is the alert's name; else the overlap of
        their terms, squared so that a heading sharing one word of three says little. The
        library's subject terms are left out on both sides: `VictoriaMetricsOOMKilled` is about
        OOM kills, and "How to set a memory limit for VictoriaMetrics components?" does not
        name it more nearly than "Out of memory errors" because both say the product. The shared
        terms are counted from the heading index, not by intersecting sets per section."""
        if not query.name_terms:
            return {}
        name_terms = query.name_terms - self._subject
        shared: dict[int, int] = {}
        for term in name_terms:
            for index in self._by_heading_term.get(term, ()):
                shared[index] = shared.get(index, 0) + 1
        name_size = len(name_terms)
        matches = {}
        for index, count in shared.items():
            if scores[index] > 0.0:
                overlap = count / (name_size + self._heading_topic_sizes[index] - count)
                matches[index] = overlap * overlap
        for index in self._by_heading_word.get(query.name, ()):
            if scores[index] > 0.0:
                matches[index] = 1.0
        return matches

    def _covered(self, wanted: Iterable[str], held: Collection[str]) -> float:
        """The share of `wanted` terms, weighted by IDF, that are in `held` (1.0 for none)."""
        total = found = 0.0
        for term in wanted:
            idf = self._idf.get(term, self._unseen_idf)
            total += idf
            if term in held:
                found += idf
        return found / total if total else 1.0

    def evidence(self, query: Query, hit: Hit) -> list[Evidence]:
        """Which alert terms the section holds, and in which of its fields, strongest first."""
        fields = self._field_sets[hit.index]
        found = []
        for term, held in query.terms.items():
            for name in _FIELDS:
                if term in fields[name]:
                    found.append(Evidence(held.word, held.source, FIELD_NAMES[name]))
                    break
        return found
