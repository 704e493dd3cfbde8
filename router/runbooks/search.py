"""Ranking runbook sections against an alert: tokens, stems, synonyms and BM25F.

The alert's words (its name split at CamelCase, snake_case and kebab-case, its summary, description
and the names of the rules it matched) are ranked against every section with BM25F (Robertson &
Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009, §3.5): each section has
fields of different weight (the heading most, then the Symptoms part, the heading path, the file
name, the rest of its own text), term frequencies are length-normalised per field, summed by field
weight and saturated once. Words are stemmed (Snowball English) and a few synonyms that matter in
operations are folded together on both sides, so that `ServiceDown` meets "Complete Service Outage".

The score is normalised by the most the query could score (every term fully saturated), so it reads
as "how much of what the alert says this section explains", from 0 to about 1, and one threshold
fits queries of any length. Sections of the runbook named like the alert's service score a quarter
more (`SERVICE_BOOST`), so they can pass 1.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import snowballstemmer

from router.runbooks.sections import SYMPTOMS, Section

_STEMMER = snowballstemmer.stemmer("english")

# Words that say nothing about which runbook section applies. `high` and `low` say which way a
# threshold was crossed (`HighCPUUsage`), not what the problem is: kept, they let "High Memory
# Usage" answer a CPU alert.
# fmt: off
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "for", "from", "has", "have", "in",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will",
    "with", "when", "which", "than", "then", "there", "these", "those", "into", "over", "under",
    "after", "before", "not", "no", "yes", "if", "so", "do", "does", "did", "can", "could",
    "should", "would", "may", "might", "must", "our", "we", "you", "your", "they", "their",
    "alert", "alerts", "alerting", "firing", "fired", "text", "rule", "rules", "value", "values",
    "instance", "job", "pod", "host", "high", "low",
))
# fmt: on

# Synonyms that matter in operations, folded to the first word of each group (after stemming).
_SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("outage", "down", "unavailable", "unreachable", "offline", "dead"),
    ("slow", "latency", "latencies", "sluggish"),
    ("error", "errors", "5xx", "exception", "exceptions"),
    ("fail", "failed", "failure", "failures", "failing"),
    ("memory", "oom", "oomkilled", "rss", "heap"),
    ("corrupt", "corruption", "corrupted", "integrity"),
    ("database", "db", "postgres", "postgresql", "pg", "mysql"),
    ("storage", "disk", "disks", "volume", "filesystem"),
    ("missing", "absent", "gap", "gaps"),
    ("certificate", "cert", "certs", "tls", "ssl"),
    ("breach", "compromise", "compromised", "leak", "leaked", "intrusion", "unauthorized"),
    ("backlog", "queue", "queued"),
    ("kubernetes", "k8s", "kube"),
)
_SYNONYMS: Mapping[str, str] = {
    _STEMMER.stemWord(word): _STEMMER.stemWord(group[0])
    for group in _SYNONYM_GROUPS
    for word in group
}

_WORD = re.compile(r"[^\W_]+")
# CamelCase pieces: an acronym before a capitalised word (`HTTPErrors` → HTTP, Errors),
# capitalised or lower-case words, numbers with their unit (`5xx`, `99th`).
_CAMEL_PIECE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+[a-z]*")


def words(text: str) -> list[str]:
    """The words of a text, CamelCase, snake_case and kebab-case split, lower-cased."""
    found: list[str] = []
    for word in _WORD.findall(text):
        if word.islower() or word.isupper() or word.isdigit():
            found.append(word.lower())
        else:
            found.extend(piece.lower() for piece in _CAMEL_PIECE.findall(word))
    return found


def terms(text: str) -> list[str]:
    """Search terms: words minus stopwords, stemmed, synonyms folded."""
    return [_term(w) for w in words(text) if w not in _STOPWORDS and len(w) > 1]


@functools.lru_cache(maxsize=65536)
def _term(word: str) -> str:
    # Alerts repeat the same few hundred words; stemming each once keeps search cheap in a storm.
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
_GENERIC_FILE_WORDS = frozenset({"runbook", "runbooks", "readme", "index", "docs", "md"})


def file_terms(file: str) -> list[str]:
    """The terms of a runbook's path (`zkp-ledger.md` → zkp, ledger), generic names left out."""
    stem = file.rsplit(".", 1)[0]
    return [t for t in terms(stem.replace("/", " ")) if t not in _GENERIC_FILE_WORDS]


def _section_fields(section: Section) -> dict[str, list[str]]:
    own_text = "\n".join(
        block.markdown
        for block in section.blocks
        if not block.foreign and block.kind not in ("diagram", "html") and block.part != SYMPTOMS
    )
    return {
        "heading": terms(section.heading),
        "symptoms": terms(section.parts.get(SYMPTOMS, "")),
        "path": terms(" ".join(section.path[:-1])),
        "file": file_terms(section.file),
        "body": terms(own_text),
    }


@dataclass(frozen=True, slots=True)
class Query:
    """Weighted query terms: each term's weight is the highest of the sources it came from."""

    weights: Mapping[str, float]
    scope: frozenset[str]  # terms of the alert's service/job/app labels, to prefer their runbook

    @classmethod
    def build(cls, sources: Iterable[tuple[str, float]], scope_labels: Iterable[str] = ()) -> Query:
        weights: dict[str, float] = {}
        for text, weight in sources:
            for term in terms(text):
                weights[term] = max(weights.get(term, 0.0), weight)
        scope = frozenset(t for label in scope_labels for t in terms(label))
        return cls(weights, scope)


# A word that no section holds (a product name, `RabbitMQ`) counts this share of a rare word in the
# most a query could score: it says the alert is about something the library may not know, but
# not as loudly as a known word that the section lacks.
UNSEEN_SHARE = 0.35
# A section in the runbook of the alert's own service scores this much more.
SERVICE_BOOST = 0.25


class SearchIndex:
    """BM25F over a fixed list of sections; built once per library, queried per alert."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self.sections = tuple(sections)
        fields = [_section_fields(section) for section in self.sections]
        self._file_terms = [frozenset(file_terms(s.file)) for s in self.sections]
        averages = {
            name: (sum(len(f[name]) for f in fields) / len(fields)) if fields else 0.0
            for name in _FIELDS
        }
        # term -> [(section index, weighted normalised term frequency)]
        postings: dict[str, list[tuple[int, float]]] = {}
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
                postings.setdefault(term, []).append((index, frequency))
        self._postings = postings
        count = len(self.sections)
        self._idf = {
            term: math.log(1.0 + (count - len(hits) + 0.5) / (len(hits) + 0.5))
            for term, hits in postings.items()
        }
        # A term that no section holds weighs as much as the rarest held term.
        self._unseen_idf = math.log(1.0 + (count - 1 + 0.5) / 1.5) if count else 0.0

    def rank(self, query: Query) -> list[tuple[Section, float]]:
        """Sections with a positive score, best first (ties: file, then line)."""
        scores: dict[int, float] = {}
        ceiling = 0.0
        for term, weight in query.weights.items():
            idf = self._idf.get(term, self._unseen_idf)
            ceiling += weight * idf * (1.0 if term in self._idf else UNSEEN_SHARE)
            for index, frequency in self._postings.get(term, ()):
                saturated = frequency / (_K1 + frequency)
                scores[index] = scores.get(index, 0.0) + weight * idf * saturated
        if ceiling <= 0.0:
            return []
        ranked = []
        for index, raw in scores.items():
            score = raw / ceiling
            own = self._file_terms[index]
            if query.scope and own and (own <= query.scope or query.scope <= own):
                score *= 1.0 + SERVICE_BOOST
            ranked.append((index, score))
        ranked.sort(
            key=lambda hit: (-hit[1], self.sections[hit[0]].file, self.sections[hit[0]].line_start)
        )
        return [(self.sections[index], score) for index, score in ranked]
