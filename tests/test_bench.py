"""Every benchmark module imports: `make bench` must not break silently when the code moves."""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform

import pytest

import bench
from bench.__main__ import machine

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
