"""Runbook search: quality on the corpus of other organisations' runbooks, and time per alert.

Quality: top-1, attachments and false attachments on the tuning and the test part of the corpus
(bench/eval_runbooks.py prints the details and the calibration). Speed: one library made of every
corpus collection and the shipped runbooks, copied under several team names as a company with many
teams would hold them, so that it holds more than 2,000 sections; every corpus alert is searched
against it.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.runbook_corpus import CORPUS, ROOT, cases, evaluate, figures, split
from router.runbooks import RunbookLibrary

TEAMS = ("search", "billing")
MIN_SECTIONS = 2_000


def _big_library(directory: Path) -> RunbookLibrary:
    sources = [CORPUS / c / "runbooks" for c in (*split()["tuning"][1:], *split()["test"])]
    sources.append(ROOT / "rules" / "runbooks")
    for team in TEAMS:
        for source in sources:
            shutil.copytree(source, directory / team / source.parent.name, dirs_exist_ok=True)
    return RunbookLibrary.load(directory)


def main() -> None:
    for part, collections in split().items():
        f = figures(evaluate(collections))
        print(
            f"runbook search quality, {part} part ({len(collections)} collections): "
            f"top-1 {f.top1:.1%} of {f.with_section}; "
            f"right section attached {f.attached_right:.1%}; "
            f"wrong attached {f.wrong_attachments}; false attachments {f.false_attachments} "
            f"of {f.without_section} alerts without a section"
        )
    alerts = [
        case.alert
        for collection in (*split()["tuning"], *split()["test"])
        for case in cases(collection)
    ]
    with tempfile.TemporaryDirectory() as big_dir:
        started = time.perf_counter()
        big = _big_library(Path(big_dir))
        load_s = time.perf_counter() - started
        incidents = sum(section.attachable for section in big.sections)
        assert len(big.sections) >= MIN_SECTIONS, len(big.sections)
        timings = []
        for _ in range(5):
            for alert in alerts:
                started = time.perf_counter()
                big.find(alert, rule_names=[])
                timings.append(time.perf_counter() - started)
        timings.sort()
        print(
            f"runbook search time ({len(big.sections)} sections, {incidents} of them incidents, "
            f"in {len(big.files)} files, loaded in {load_s:.1f} s):"
        )
        print(f"  per alert: mean {statistics.mean(timings) * 1e6:.0f} µs, "
              f"p50 {timings[len(timings) // 2] * 1e6:.0f} µs, "
              f"p99 {timings[int(len(timings) * 0.99)] * 1e6:.0f} µs "
              f"({len(timings)} searches)")  # fmt: skip


if __name__ == "__main__":
    main()
