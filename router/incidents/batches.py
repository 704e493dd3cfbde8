"""Requests that wait together are written together: one store job for many webhooks.

While one batch is being written (its transaction runs and commits), the webhooks that arrive
queue up; they go in the next batch, up to a weight (alerts). In a storm of one-alert webhooks,
the statements that a webhook's transaction shares with its neighbours (looking up an incident,
counting its alerts, noting them on the timeline, the commit) run once per batch instead of once
per webhook. Each caller still gets its own answer, after the commit that holds its alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class Batcher(Generic[T, R]):
    """`submit(item)` waits for `write(batch)`, which answers each item of the batch, in order,
    with its result or the exception to raise for it."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R | BaseException]]],
        *,
        weight: Callable[[T], int],
        limit: int,
    ) -> None:
        self._write = write
        self._weight = weight
        self._limit = limit
        self._waiting: list[_Waiting[T, R]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        return await future

    async def close(self) -> None:
        """Wait until everything submitted is written."""
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch = self._next_batch()
            try:
                results = await self._write([waiting.item for waiting in batch])
            except asyncio.CancelledError:
                for waiting in batch + self._waiting:
                    waiting.future.cancel()
                self._waiting = []
                raise
            except Exception as exc:  # every caller of the batch gets it
                results = [exc] * len(batch)
            for waiting, result in zip(batch, results, strict=True):
                if waiting.future.done():  # the caller stopped waiting
                    continue
                if isinstance(result, BaseException):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)

    def _next_batch(self) -> list[_Waiting[T, R]]:
        """The oldest waiting items up to the weight limit (at least one)."""
        taken, weight = 0, 0
        for waiting in self._waiting:
            weight += self._weight(waiting.item)
            if taken and weight > self._limit:
                break
            taken += 1
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch
