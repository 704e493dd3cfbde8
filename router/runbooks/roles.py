"""What each section of a runbook is for: an incident a responder acts on, or something else.

Runbooks hold more than incidents: tables of contents, lists of dashboards, command cheat sheets,
glossaries, contact lists, templates, the post-incident process. Those share words with every alert
of their service (a dashboard list repeats the service name in every URL), so ranked like
incidents they capture alerts that have nothing to do with them. Every section therefore gets a
role (docs/runbooks.md, "Roles and parts"):

- `incident`: a problem a responder acts on; the only role a page can carry;
- `part`: a sub-heading of an incident (Symptoms, Possible checks, Solution, or any sub-heading of
  a section that holds such parts); it ranks as its incident, never on its own;
- `container`: a heading whose sub-sections are incidents (a chapter such as "## Database");
- `navigation`: tables of contents, "Topics", indexes;
- `reference`: lists of dashboards or links, command cheat sheets, glossaries, contacts,
  templates, severity tables, the post-incident process.

The role comes from the heading's name when it is one of the names below, else from the shape
of the section's own text (mostly links, or mostly one table), else from its place in the tree
(sections.py decides parts and containers). Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol


class SectionRole(StrEnum):
    INCIDENT = "incident"
    PART = "part"
    CONTAINER = "container"
    NAVIGATION = "navigation"
    REFERENCE = "reference"


# Whole headings (normalised as `normalise_heading` does) that name a navigation section.
_NAVIGATION_NAMES = frozenset(
    {
        "contents",
        "table of contents",
        "toc",
        "topics",
        "index",
        "alert index",
        "runbook index",
        "list of alerts",
        "list of runbooks",
        "all runbooks",
        "runbooks",
        "alert runbooks",
        "navigation",
        "quick links",
        "on this page",
        "in this document",
        "in this section",
        "sections",
    }
)

# Whole headings that name a reference section: lists, process, people, definitions.
_REFERENCE_NAMES = frozenset(
    {
        # links and dashboards
        "dashboards",
        "dashboard",
        "grafana dashboards",
        "useful dashboards",
        "links",
        "useful links",
        "important links",
        "resources",
        "useful resources",
        "references",
        "see also",
        "further reading",
        "documentation",
        "related documentation",
        "related links",
        "external links",
        "monitoring",
        "metrics",
        "logs",
        "logging",
        # commands and definitions
        "cheat sheet",
        "cheatsheet",
        "useful commands",
        "common commands",
        "commands",
        "command reference",
        "quick reference",
        "reference",
        "glossary",
        "terminology",
        "definitions",
        "faq",
        "frequently asked questions",
        # people and process
        "contacts",
        "contact",
        "contact information",
        "escalation contacts",
        "escalation",
        "escalation path",
        "escalation paths",
        "escalation matrix",
        "escalation policy",
        "when to escalate",
        "on call",
        "oncall",
        "owners",
        "ownership",
        "team",
        "communication",
        "template",
        "templates",
        "incident template",
        "postmortem",
        "postmortems",
        "post mortem",
        "post incident",
        "post incident review",
        "post incident process",
        "retrospective",
        "lessons learned",
        "severity",
        "severities",
        "severity levels",
        "severity definitions",
        "severity classification",
        "response times",
        # about the document itself
        "introduction",
        "intro",
        "about",
        "overview",
        "summary",
        "purpose",
        "scope",
        "prerequisites",
        "requirements",
        "setup",
        "getting started",
        "tools",
        "tooling",
        "access",
        "architecture",
        "background",
        "changelog",
        "history",
        "revision history",
        "how to use this runbook",
        "how to use",
        "contributing",
        "license",
        "appendix",
        # the fixed chapters of documentation sites
        "before you begin",
        "whats next",
        "what s next",
        "objectives",
        "cleaning up",
        "further information",
        "feedback",
    }
)

# Words that make a heading a reference wherever they stand in it ("Kafka cheat sheet").
_REFERENCE_PHRASES = ("cheat sheet", "cheatsheet", "glossary", "postmortem", "post mortem")

# Numbering before a heading's words, after any emoji: "1.", "2.3)", "iv.", "a)", "Step 2:".
_NUMBERING = re.compile(r"^\W*(?:(?:step|appendix)\s+)?(?:\d+(?:\.\d+)*|[ivx]+|[a-z])[.):]\s+")


# A heading's explicit anchor (`## Overview {#overview}`, as Hugo, Docusaurus and kramdown write
# it): a link target, not a word of the heading.
_HEADING_ID = re.compile(r"\s*\{#[^}]*\}\s*$")


def without_heading_id(heading: str) -> str:
    """The heading as a reader sees it: `"Overview {#overview}"` → `"Overview"`."""
    return _HEADING_ID.sub("", heading)


def normalise_heading(text: str) -> str:
    """Letters, digits and single spaces: `"📋 1. Table of Contents:"` → `table of contents`;
    an explicit `{#anchor}` is left out."""
    text = _NUMBERING.sub("", without_heading_id(text).lower().strip(), count=1)
    kept = "".join(char if unicodedata.category(char)[0] in "LN" else " " for char in text)
    return " ".join(kept.split())


# A heading that is only a template tag (`{{% heading "whatsnext" %}}` on a Hugo site) is one of
# the site's fixed chapters, not a problem.
_TEMPLATE_TAG = re.compile(r"^\s*\{\{.*\}\}\s*$")


def named_role(heading: str) -> SectionRole | None:
    """The role a heading's name alone gives, or None when the name says nothing."""
    if _TEMPLATE_TAG.match(heading):
        return SectionRole.REFERENCE
    name = normalise_heading(heading)
    if name in _NAVIGATION_NAMES:
        return SectionRole.NAVIGATION
    if name in _REFERENCE_NAMES or any(phrase in name for phrase in _REFERENCE_PHRASES):
        return SectionRole.REFERENCE
    return None


# An alert name written as a heading: one identifier with at least two capitalised words or
# snake_case pieces (`LedgerSyncStalled`, `KubePodCrashLooping`, `node_disk_full`).
_ALERT_NAME = re.compile(
    r"^`?(?:(?=[A-Za-z0-9]*[a-z])[A-Z][a-z0-9]*[A-Z][A-Za-z0-9]*|[a-z0-9]+(?:_[a-z0-9]+)+)`?$"
)


def looks_like_alert_name(heading: str) -> bool:
    """True when the heading is a single identifier such as an alert's name."""
    return bool(_ALERT_NAME.match(without_heading_id(heading).strip()))


# The first words of a heading that names a step of a procedure rather than a problem: "Check pod
# health", "Get Redis master", "Resending emails", "Step 2: verify the rollout", "How to restart".
# Only words that cannot start the name of a problem ("Restart loop" and "Update failed" are
# problems; "Restarting pods" is a step).
# fmt: off
_PROCEDURE_WORDS = frozenset((
    "check", "checking", "verify", "verifying", "confirm", "confirming", "testing", "get",
    "find", "finding", "look", "inspect", "inspecting", "identify", "identifying", "determine",
    "determining", "investigate", "investigating", "troubleshoot", "troubleshooting", "debug",
    "debugging", "diagnose", "diagnosing", "understand", "understanding", "restarting",
    "rebooting", "resend", "resending", "rerun", "retry", "scaling", "increase", "increasing",
    "decrease", "decreasing", "add", "adding", "remove", "removing", "delete", "deleting",
    "clean", "cleaning", "cleanup", "draining", "flushing", "rollback", "revert", "reverting",
    "updating", "upgrading", "apply", "applying", "fix", "fixing", "recover", "recovering",
    "restoring", "resolve", "resolving", "mitigate", "mitigating", "escalate", "escalating",
    "contact", "contacting", "notify", "enable", "enabling", "disable", "disabling", "manually",
    "ensure", "ensuring", "make", "pay", "use", "using", "try", "trying", "configure",
    "configuring", "avoid", "consider", "wait", "read", "collect", "collecting", "gather",
    "gathering", "capture", "compare", "review", "reviewing", "examine", "examining", "query",
    "search", "locate", "validate", "validating", "step", "steps", "how", "option",
))
# fmt: on


_STEP = re.compile(r"^\W*step\s+\d", re.IGNORECASE)


def looks_procedural(heading: str) -> bool:
    """True when the heading names a step of a procedure ("2. Check pod health", "Step 3: ...")."""
    words = normalise_heading(heading).split()
    return bool(_STEP.match(heading)) or (bool(words) and words[0] in _PROCEDURE_WORDS)


class _BlockLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def markdown(self) -> str: ...


_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)|<(https?://[^>\s]+)>|(https?://\S+)")


def link_targets(markdown: str) -> list[str]:
    """Every link target of a piece of Markdown: inline links, autolinks and bare URLs."""
    return [m.group(2) or m.group(3) or m.group(4) for m in _LINK.finditer(markdown)]


def without_links(markdown: str) -> str:
    """The Markdown with link targets and bare URLs dropped and link texts kept."""
    return _LINK.sub(lambda m: m.group(1) or " ", markdown)


def shape_role(blocks: Sequence[_BlockLike]) -> SectionRole | None:
    """The role the shape of a section's own text gives: mostly links, or mostly one table."""
    texts = [b for b in blocks if b.kind in ("paragraph", "list_item", "table")]
    if not texts:
        return None
    linked = [b for b in texts if b.kind != "table" and link_targets(b.markdown)]
    targets = [t for b in linked for t in link_targets(b.markdown)]
    prose = [b for b in texts if b.kind != "table"]
    # A list of links with little else: an index when the links stay in the runbooks, a list
    # of dashboards or documents when they leave.
    if len(targets) >= 3 and prose and len(linked) / len(prose) >= 0.6:
        plain = sum(len(without_links(b.markdown)) for b in prose)
        if plain <= 60 * len(prose):
            internal = [t for t in targets if t.startswith("#") or _is_relative_doc(t)]
            if len(internal) / len(targets) >= 0.6:
                return SectionRole.NAVIGATION
            return SectionRole.REFERENCE
    tables = sum(len(b.markdown) for b in texts if b.kind == "table")
    everything = sum(len(b.markdown) for b in blocks)
    has_code = any(b.kind == "code" for b in blocks)
    if not has_code and everything >= 200 and tables / everything >= 0.7:
        return SectionRole.REFERENCE
    return None


def _is_relative_doc(target: str) -> bool:
    return "://" not in target and not target.startswith("mailto:")
