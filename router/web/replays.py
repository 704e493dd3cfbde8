"""The Rules page's replay: the stored alert history through a rules directory on disk.

It runs `router.replay.replay`, the code of `runbook-router replay`, on the rules in force and on
a directory chosen from a fixed list: the shadow rules (`ROUTER_SHADOW_RULES_DIR`) and the
directories beside the rules in force that hold rules files (`rules-next/` beside `rules/`). A
browser names one of those, never a path of its own: the page cannot be made to read any other
file of the machine.

The history is read on a read-only connection (router/store/history.py), so nothing live is
written. Loading, reading and simulating run in a worker thread, one replay at a time: a second
request while one runs is told to wait rather than doubling the work.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from router.replay import ReplayReport, replay
from router.routing import Routing, load_routing
from router.rules.reader import RULES_FILE_SUFFIXES, TOP_LEVEL_KEYS
from router.settings import Settings, environment
from router.store.history import read_history

# A top-level key of a rules file at the start of a line (TOP_LEVEL_KEYS: the schema's).
_SECTION = re.compile(rf"^(?:{'|'.join(map(re.escape, TOP_LEVEL_KEYS))}):")


class ReplayBusy(Exception):
    """Another replay is running."""


@dataclass(frozen=True, slots=True)
class RulesChoice:
    """A rules directory the page offers: its path and why it is offered."""

    path: Path
    why: str

    @property
    def label(self) -> str:
        return f"{self.path.name}/ ({self.why})"


def rules_choices(rules_dir: Path, shadow_dir: Path | None) -> list[RulesChoice]:
    """The shadow rules first, then every directory beside the rules in force holding a rules
    file; never the rules in force themselves (they replay to no difference)."""
    in_force = rules_dir.resolve()
    choices = [RulesChoice(shadow_dir.resolve(), "shadow rules")] if shadow_dir else []
    try:
        beside = sorted(in_force.parent.iterdir())
    except OSError:
        beside = []
    for path in beside:
        path = path.resolve()
        if path != in_force and path not in {c.path for c in choices} and _holds_rules(path):
            choices.append(RulesChoice(path, f"beside {in_force.name}/"))
    return choices


def _holds_rules(directory: Path) -> bool:
    """A directory with a YAML file that starts a rules section (`rules:`, `tiers:`, ...) at its
    first column: a folder of Kubernetes manifests or Prometheus rule groups is not offered."""
    try:
        return directory.is_dir() and any(
            _starts_a_section(child)
            for child in directory.iterdir()
            if child.suffix in RULES_FILE_SUFFIXES and child.is_file()
        )
    except OSError:
        return False


def _starts_a_section(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as text:
        # The head of the file is enough: rules files start with their sections.
        return any(_SECTION.match(line) for line, _ in zip(text, range(200), strict=False))


class Replays:
    """Runs the page's replays, one at a time, off the event loop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._running = asyncio.Lock()

    def choices(self) -> list[RulesChoice]:
        return rules_choices(self._settings.rules_dir, self._settings.shadow_rules_dir)

    async def run(
        self, in_force: Routing, directory: Path, since: datetime, until: datetime
    ) -> ReplayReport:
        """The report of `runbook-router replay --rules DIRECTORY --from since --to until`.

        ConfigError when the directory's rules do not load, StoreError when the history cannot
        be read, ReplayBusy when another replay runs."""
        if self._running.locked():
            raise ReplayBusy("another replay is running: try again when it has finished")
        async with self._running:
            return await asyncio.to_thread(self._replay, in_force, directory, since, until)

    def _replay(
        self, in_force: Routing, directory: Path, since: datetime, until: datetime
    ) -> ReplayReport:
        # The tiers of the new rules never page: their secrets may be unset, as in the CLI.
        after = load_routing(directory, environment(), strict_secrets=False)
        history = read_history(self._settings.database_url, since, until)
        return replay(history, in_force, after)


MAX_PERIOD = timedelta(days=366)
