"""Helpers for tests that need something from outside Python: a tool, a server, a database, or
the real router process.

Such a test calls `require(...)` first. On a developer's machine a missing dependency skips the test
with the reason; in CI (the `CI` variable is set, as `.ci/run` does) it fails instead, because CI
installs everything and a skip there would hide a test that never ran.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def router_env(**settings: str) -> dict[str, str]:
    """The environment for a router process: this one's, minus any ROUTER_ setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    env.update({f"ROUTER_{name.upper()}": value for name, value in settings.items()})
    return env


def start_router(env: Mapping[str, str], *args: str, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "router", "serve", *args],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, what: str, timeout: float = 20.0
) -> None:
    """Poll `url` until it answers 200; fail with the process output if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"{what} exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:  # refused, reset or timed out: not listening yet
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"{what} did not answer {url} within {timeout}s")


def wait_until_healthy(process: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    """Poll the router's /healthz until it answers."""
    wait_until_ready(process, f"http://127.0.0.1:{port}/healthz", "router", timeout)


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> tuple[int, str]:
    """SIGTERM, wait, and return the exit code and everything the process printed."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return process.returncode, output.decode()


def post_json(url: str, body: bytes, token: str | None = None) -> tuple[int, Any]:
    """POST a JSON body (with a bearer token, if given); the status and the decoded answer."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())
