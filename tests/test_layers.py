"""Lower layers never import higher ones, as the layer table of docs/architecture.md says.

The table is read from the document itself, so that the code and its description cannot drift: it
must name every module of `router/` (a folder ending in `/` covers its modules, but for those named
more precisely), and the core may import no adapter, no runtime module and no I/O library, and an
adapter no runtime module.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROUTER = ROOT / "router"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
IO_LIBRARIES = (
    "aiohttp",
    "sqlalchemy",
    "psycopg",
    "sqlite3",
    "apprise",
    "pdpyras",
    "requests",
    "prometheus_client",
)
LAYERS = ("core", "adapters", "runtime")


def layer_table() -> dict[str, str]:
    """{entry as the table writes it (`ingest/`, `outbox/context`): layer}."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Layers and modules", 1)[1].split("\n## ", 1)[0]
    entries: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] in LAYERS:
            for entry in re.findall(r"`([^`]+)`", cells[1]):
                entries[entry] = cells[0]
    return entries


TABLE = layer_table()


def module_name(path: Path) -> str:
    """`router/outbox/context.py` → `outbox/context`; a package's `__init__` is the package."""
    relative = path.relative_to(ROUTER).with_suffix("").as_posix()
    return relative.removesuffix("/__init__") if "/" in relative else relative


def layer_of(module: str) -> str | None:
    if module in TABLE:
        return TABLE[module]
    folders = [entry for entry in TABLE if entry.endswith("/") and f"{module}/".startswith(entry)]
    return TABLE[max(folders, key=len)] if folders else None


MODULES = {module_name(path): path for path in sorted(ROUTER.rglob("*.py"))}


def dotted(module: str) -> str:
    return "router." + module.replace("/", ".")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # `from router.incidents import escalation` imports the module `escalation`.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_table_names_every_module_and_only_real_ones() -> None:
    assert set(TABLE.values()) == set(LAYERS)
    unplaced = [module for module in MODULES if layer_of(module) is None]
    assert unplaced == [], "add them to the layer table of docs/architecture.md"
    packages = {module.rsplit("/", 1)[0] + "/" for module in MODULES if "/" in module}
    unknown = [e for e in TABLE if e not in MODULES and e not in packages]
    assert unknown == [], "the layer table names modules that do not exist"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module: str) -> None:
    layer = layer_of(module)
    assert layer is not None
    rank = LAYERS.index(layer)
    higher = {
        dotted(other) for other in MODULES if LAYERS.index(layer_of(other) or "runtime") > rank
    }
    forbidden = sorted(
        name
        for name in imports_of(MODULES[module])
        if name in higher
        or (
            layer == "core"
            and any(name == lib or name.startswith(f"{lib}.") for lib in IO_LIBRARIES)
        )
    )
    assert forbidden == [], f"{module} ({layer}) imports {forbidden}"


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """No import cycle depends on which module comes first: each module of `router/` is imported
    with no other module of the package loaded before it (a tool or a test may start anywhere)."""
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in ROUTER.rglob("*.py")
        if path.name != "__main__.py"  # runs the command line
    )
    script = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "router" or m.startswith("router.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed.append(f"{name}: {exc}")
print("\\n".join(failed))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, *modules], capture_output=True, text=True, cwd=ROOT
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "", "")
