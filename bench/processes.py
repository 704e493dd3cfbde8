"""Processes for the HTTP benchmarks: the router and reference receivers, each pinned to a core.

The server under test runs on core 0 and the load generator (wrk, Alertmanager) on core 1 when
the machine has two cores or more, so that neither steals the other's time. Every process is
stopped when its `with` block ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE = "0"
CLIENT_CORE = "1" if (os.cpu_count() or 1) > 1 else "0"
WEBHOOK_TOKEN = "bench"


def pinned(core: str, command: list[str]) -> list[str]:
    """`command` bound to one CPU core, where `taskset` exists."""
    taskset = shutil.which("taskset")
    return [taskset, "-c", core, *command] if taskset else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(process: subprocess.Popen[bytes], url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextlib.contextmanager
def running(
    command: list[str],
    health_url: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    output = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        pinned(SERVER_CORE, command),
        env=dict(env) if env is not None else None,
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_answers(process, health_url)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            output.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def bare_receiver(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """An aiohttp server that parses each JSON body, counts its alerts and answers 200."""
    command = [sys.executable, "-m", "bench.bare_receiver", str(port)]
    with running(command, f"http://127.0.0.1:{port}/count") as process:
        yield process


@contextlib.contextmanager
def journal_receiver(port: int, database: Path) -> Iterator[subprocess.Popen[bytes]]:
    """An aiohttp server that checks each body as the router does, commits it to a journal and
    answers 200 (bench/journal_receiver.py)."""
    command = [sys.executable, "-m", "bench.journal_receiver", str(port), str(database)]
    with running(command, f"http://127.0.0.1:{port}/count") as process:
        yield process


def router_env(port: int, database: Path, rules_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    env.update(
        ROUTER_HOST="127.0.0.1",
        ROUTER_PORT=str(port),
        ROUTER_DATABASE_URL=f"sqlite:///{database}",
        ROUTER_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        ROUTER_RULES_DIR=str(rules_dir or ROOT / "rules"),
        ROUTER_LOG_FORMAT="json",
    )
    return env


@contextlib.contextmanager
def router(port: int, database: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`runbook-router serve` on the shipped rules and a fresh SQLite file."""
    command = [sys.executable, "-m", "router", "serve"]
    env = router_env(port, database)
    with running(command, f"http://127.0.0.1:{port}/healthz", env, log) as process:
        yield process


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """CPU time a live process has used so far, user and system (/proc/PID/stat); 0 where /proc
    is missing. Per request, it varies less than a rate does on a machine whose speed drifts."""
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{process.pid}/stat").read_text()
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def rss_mb(process: subprocess.Popen[bytes]) -> float:
    """Peak resident memory of a live process (VmHWM), in MB; 0 where /proc is missing."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
