"""Helpers for tests that run real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def wait_until_healthy(process: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    """Poll /healthz until it answers; fail with the process output if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"router exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"router did not answer /healthz within {timeout}s")


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
