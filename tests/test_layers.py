"""Lower layers never import higher ones: the pure core stays free of I/O (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROUTER = Path(__file__).resolve().parent.parent / "router"

# The pure core: no network, no database, no web framework, no clock-reading runtime.
CORE = [
    "models",
    "errors",
    "payloads",
    "schedule",
    "escalation",
    "links",
    "page_context",
    "render",
    "routing",
    "rules",
    "runbooks",
]
ADAPTERS_AND_RUNTIME = [
    "router.store",
    "router.channels",
    "router.notify",
    "router.engine",
    "router.incidents",
    "router.http",
    "router.api",
    "router.app",
    "router.cli",
    "router.settings",
    "router.metrics",
]
IO_LIBRARIES = [
    "aiohttp",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "apprise",
    "pdpyras",
    "requests",
    "prometheus_client",
]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def core_files() -> list[Path]:
    files = []
    for name in CORE:
        package = ROUTER / name
        files += sorted(package.glob("*.py")) if package.is_dir() else [ROUTER / f"{name}.py"]
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda path: str(path.relative_to(ROUTER)))
def test_core_module_imports_no_adapter_runtime_or_io_library(path: Path) -> None:
    forbidden = [
        module
        for module in imports_of(path)
        if any(
            module == bad or module.startswith(f"{bad}.")
            for bad in ADAPTERS_AND_RUNTIME + IO_LIBRARIES
        )
    ]
    assert forbidden == [], f"{path.name} imports {forbidden}"
