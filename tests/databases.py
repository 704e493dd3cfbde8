"""Test databases: a SQLite file, or a fresh PostgreSQL database created for one test.

PostgreSQL comes from `ROUTER_TEST_POSTGRES_URL` (default: the local server, database `test`).
When it cannot be reached, a test that needs it fails in CI (`CI` set) and is skipped with the
reason on a developer's machine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg

from .support import require

POSTGRES_URL = os.environ.get(
    "ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty database on the PostgreSQL server; dropped afterwards."""
    try:
        admin = await psycopg.AsyncConnection.connect(
            POSTGRES_URL, connect_timeout=5, autocommit=True
        )
    except (OSError, psycopg.Error) as exc:
        require(False, f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
        raise  # pragma: no cover - require() does not return
    name = f"router_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'router.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url
