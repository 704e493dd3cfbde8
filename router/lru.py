"""A bounded least-recently-used map, for work that repeats in alert storms.

Routing an alert (classification and runbook search) depends only on what the alert says and on
the rules in force; in a storm the same alert text arrives thousands of times. A `Routing` keeps
these caches, so a reload, which builds a new `Routing`, starts them empty.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        # An OrderedDict, not a dict: evicting from the front of a plain dict leaves holes that
        # every later eviction walks over.
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
