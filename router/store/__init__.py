"""Durable state behind one interface: `Store`, with SQLite (default) and PostgreSQL behind it.

`open_store(url)` picks the implementation from `ROUTER_DATABASE_URL`. Every method either commits
all it was asked to or raises `StoreError` having committed nothing.
"""

from __future__ import annotations

from router.store.base import IngestResult, Store
from router.store.sql import SqlStore


def open_store(database_url: str) -> Store:
    """The store for a `sqlite:///PATH` or `postgresql://...` URL; `await start()` connects it."""
    return SqlStore(database_url)


__all__ = ["IngestResult", "SqlStore", "Store", "open_store"]
