"""More connections than descriptors: the daemon stays up, logs a bounded number of lines, and
answers again once they close.

The router runs with a hard limit of 400 descriptors (the systemd default is 1,024), so that it
holds at most 400 - 256 = 144 connections; the test opens 600 and holds them.
"""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import ROOT
from ..support import free_port, router_env, stop, wait_until_healthy

pytestmark = pytest.mark.process

DESCRIPTORS = 400
CONNECTIONS = 600


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


def test_connections_beyond_the_descriptors_are_closed_and_logged_in_bounds(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = router_env(port=str(port), database_url=f"sqlite:///{tmp_path / 'router.db'}")
    process = subprocess.Popen(
        [sys.executable, "-m", "router", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=limited,
    )
    held: list[socket.socket] = []
    try:
        wait_until_healthy(process, port)
        for _ in range(CONNECTIONS):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1.0)  # let the router accept (and close) what it can
        assert process.poll() is None
        for connection in held:
            connection.close()
        held.clear()
        wait_until_healthy(process, port, timeout=20)
    finally:
        for connection in held:
            connection.close()
        code, output = stop(process)
    assert code == 0, output
    limit_lines = [line for line in output.splitlines() if "connection limit reached" in line]
    # 456 connections were refused; at most 20 lines a second are written (the refusals span a
    # second or three), then lines that count the rest.
    assert 1 <= len(limit_lines) <= 80, limit_lines[:5]
    assert "Traceback" not in output
