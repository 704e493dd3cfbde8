"""Runbook search: time per alert over a library of a few hundred sections, and search quality.

The library is the shipped runbooks plus the fixture runbooks, and copies of the fixture runbooks
under other service names (as a company with many teams would have), so that the index holds a few
hundred sections. The alerts are those of the search-quality table.
"""

from __future__ import annotations

import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from router.models import Alert, AlertStatus, Source
from router.runbooks import SEARCH_THRESHOLD, RunbookLibrary

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "runbooks"
TEAMS = ("search", "billing", "identity", "mobile", "ads", "maps", "mail", "media", "catalog", "ml")


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(
        source=Source.ALERTMANAGER,
        status=AlertStatus.FIRING,
        fingerprint="0" * 16,
        labels={"alertname": row["alert"], **row.get("labels", {})},
        annotations={k: row[k] for k in ("summary", "description") if k in row},
        starts_at=None,
    )


def _build_library(directory: Path, copies: bool) -> RunbookLibrary:
    for source in (ROOT / "rules" / "runbooks", FIXTURES / "library"):
        for runbook in source.glob("*.md"):
            shutil.copy(runbook, directory / runbook.name)
    if copies:
        for team in TEAMS:
            for runbook in (FIXTURES / "library").glob("*.md"):
                text = runbook.read_text(encoding="utf-8")
                text = re.sub(r"^# (.*)$", rf"# \1 ({team})", text, count=1, flags=re.M)
                (directory / f"{team}-{runbook.name}").write_text(text, encoding="utf-8")
    return RunbookLibrary.load(directory)


def _quality(library: RunbookLibrary, table: list[dict[str, Any]]) -> None:
    with_section = [row for row in table if row["expect"]]
    without = [row for row in table if not row["expect"]]
    top1 = 0
    found = 0
    correct_scores = []
    for row in with_section:
        match = library.find(_alert(row), rule_names=[])
        ranked = library.search(_alert(row))
        if ranked and ranked[0][0].reference == row["expect"]:
            top1 += 1
            correct_scores.append(ranked[0][1])
        if match.section is not None and match.section.reference == row["expect"]:
            found += 1
    negative_scores = [library.find(_alert(row), rule_names=[]).score for row in without]
    print(f"  alerts with a section: {len(with_section)}; without: {len(without)}")
    print(f"  top-1 accuracy of the ranking: {top1 / len(with_section):.1%}")
    print(f"  found above the threshold ({SEARCH_THRESHOLD}): {found / len(with_section):.1%}")
    print(f"  lowest score of a correct first hit: {min(correct_scores):.3f}")
    print(f"  highest best score of an alert without a section: {max(negative_scores):.3f}")


def main() -> None:
    table = yaml.safe_load((FIXTURES / "search_quality.yaml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as small_dir, tempfile.TemporaryDirectory() as big_dir:
        small = _build_library(Path(small_dir), copies=False)
        print(f"runbook search quality ({len(small.sections)} sections, shipped + fixtures):")
        _quality(small, table)

        started = time.perf_counter()
        big = _build_library(Path(big_dir), copies=True)
        load_ms = (time.perf_counter() - started) * 1000
        alerts = [_alert(row) for row in table]
        timings = []
        for _ in range(20):
            for alert in alerts:
                started = time.perf_counter()
                big.find(alert, rule_names=[])
                timings.append(time.perf_counter() - started)
        timings.sort()
        print(
            f"runbook search time ({len(big.sections)} sections in {len(big.files)} files, "
            f"loaded in {load_ms:.0f} ms):"
        )
        print(f"  per alert: mean {statistics.mean(timings) * 1e6:.0f} µs, "
              f"p50 {timings[len(timings) // 2] * 1e6:.0f} µs, "
              f"p99 {timings[int(len(timings) * 0.99)] * 1e6:.0f} µs "
              f"({len(timings)} searches)")  # fmt: skip


if __name__ == "__main__":
    main()
