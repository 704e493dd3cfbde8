"""Run every benchmark module (`bench/bench_*.py`), or those named on the command line."""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import platform
import sqlite3
import sys
from pathlib import Path

import bench


def machine() -> str:
    """What the figures were measured on: they are only comparable with the same machine's."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"machine: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}"
    )


def main(names: list[str]) -> int:
    modules = sorted(
        info.name for info in pkgutil.iter_modules(bench.__path__) if info.name.startswith("bench_")
    )
    print(machine())
    for name in names or modules:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}")
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
