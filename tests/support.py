"""Helpers shared by tests that need something from outside Python: a tool, a server, a database.

Such a test calls `require(...)` first. On a developer's machine a missing dependency skips the test
with the reason; in CI (the `CI` variable is set, as `.ci/run` does) it fails instead, because CI
installs everything and a skip there would hide a test that never ran.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """True when running under CI, where every test must run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(condition: bool, reason: str) -> None:
    """Go on when `condition` holds; otherwise fail in CI and skip elsewhere, saying `reason`."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (required in CI)", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, package: str) -> str:
    """The path of the command `name`, which Debian's `package` provides; see `require`."""
    path = shutil.which(name)
    require(
        path is not None,
        f"{name} not found: install it with `apt-get install {package}` (.ci/run does)",
    )
    assert path is not None
    return path
