"""The `Store` interface that the HTTP layer and the engine depend on."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime

from router.models import Notification


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What storing a notification changed: new alert instances, status changes, repeats."""

    new: int = 0
    updated: int = 0
    duplicate: int = 0


class Store(abc.ABC):
    """Durable state of the router. Implementations are safe for concurrent use by tasks."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and bring the schema up to date."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish what is in flight and release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""

    @abc.abstractmethod
    async def ingest(self, notification: Notification, received_at: datetime) -> IngestResult:
        """Store every alert of a webhook in one transaction; redeliveries change nothing."""

    @abc.abstractmethod
    async def count_alerts(self) -> int:
        """How many alert instances are stored."""
