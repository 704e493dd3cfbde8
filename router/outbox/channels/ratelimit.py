"""A token bucket that keeps a sender under a vendor's rate limit, waiting a bounded time for room.

The bucket is pure arithmetic over a monotonic time that the caller passes in: `reserve(now)` says
how long to wait before sending, or None when that would be longer than the caller will wait (the
page is then retried later by the outbox). A reservation is taken at once, so concurrent senders
queue behind each other instead of all waking at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `burst` events at once, refilled at `per_second`; waits up to `max_wait` seconds.

    In any window of `w` seconds at most `burst + per_second * w` events go out.
    """

    per_second: float
    burst: int
    max_wait: float

    def most_in(self, window: float) -> float:
        return self.burst + self.per_second * window


class TokenBucket:
    def __init__(self, limit: RateLimit, now: float) -> None:
        self._limit = limit
        self._tokens = float(limit.burst)
        self._updated = now

    def reserve(self, now: float) -> float | None:
        """Seconds to wait before sending one event, or None when that exceeds `max_wait`."""
        elapsed = max(now - self._updated, 0.0)
        self._tokens = min(self._limit.burst, self._tokens + elapsed * self._limit.per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        wait = (1.0 - self._tokens) / self._limit.per_second
        if wait > self._limit.max_wait:
            return None
        self._tokens -= 1.0
        return wait
