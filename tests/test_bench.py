"""Every benchmark module imports: `make bench` must not break silently when the code moves."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import platform
import sqlite3
import urllib.request
from pathlib import Path

import pytest

import bench
from bench.__main__ import machine
from bench.processes import free_port, journal_receiver

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads" / "good" / "alertmanager"

MODULES = sorted(info.name for info in pkgutil.iter_modules(bench.__path__))


def test_there_are_benchmarks() -> None:
    assert {"bench_pages", "bench_runbook_search", "bench_webhooks", "eval_runbooks"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", [m for m in MODULES if m != "__main__"])
def test_benchmark_module_imports(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    if name.startswith(("bench_", "eval_")):
        assert callable(module.main)


def test_the_benchmarks_name_the_machine_they_ran_on() -> None:
    line = machine()
    assert f"{os.cpu_count()} cores" in line
    assert f"Python {platform.python_version()}" in line
    assert line.startswith("machine: ")


def test_the_journal_receiver_answers_after_committing_each_body(tmp_path: Path) -> None:
    """The Alertmanager benchmark's journal receiver does what its figure claims: a 200 only
    once the raw body is in the journal, and a count of the alerts committed."""
    body = (PAYLOADS / "firing_two_alerts.json").read_bytes()
    database = tmp_path / "journal.db"
    port = free_port()
    with journal_receiver(port, database):
        for _ in range(3):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/alertmanager", data=body, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=10) as answer:
            assert json.load(answer) == {"alerts": 6}
    with sqlite3.connect(database) as journal:
        assert journal.execute("SELECT body FROM journal").fetchall() == [(body,)] * 3
