"""Buckets in one process's memory: the storage of a single-worker ``pinsights serve``."""

from __future__ import annotations

import time
from collections.abc import Callable
from math import ceil

from pinsights.server.ratelimit.bucket import Decision, RateLimit, decide, is_full, spend

#: Idle buckets are dropped once this many clients have been seen, to bound memory.
MAX_BUCKETS = 10_000


class MemoryLimiter:
    """Token buckets keyed by client id, in a dict.

    Used only from the worker's event loop thread, so it needs no lock.
    """

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client id -> (tokens, updated at)
        self._burst = float(limit.burst)
        self._rate = limit.per_second

    async def take(self, client_id: str) -> Decision:
        return self.spend(client_id)

    def spend(self, client_id: str) -> Decision:
        """Spend one request from the client's bucket if it has one.

        :func:`~.bucket.spend` and :func:`~.bucket.decide` written out for the common case (a
        known client with tokens left), which is every request of a busy client; a test holds it
        to the same decisions as the shared table, which calls them.
        """
        now = self._clock()
        bucket = self._buckets.get(client_id)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._drop_idle(now)
            bucket = (self._burst, now)
        tokens = bucket[0] + (now - bucket[1]) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        if tokens >= 1.0:
            tokens -= 1.0
            self._buckets[client_id] = (tokens, now)
            return Decision(
                True, self.limit.burst, int(tokens), ceil((self._burst - tokens) / self._rate), 0
            )
        allowed, tokens = spend(self.limit, bucket[0], now - bucket[1])
        self._buckets[client_id] = (tokens, now)
        return decide(self.limit, allowed, tokens)

    async def close(self) -> None:
        pass

    def _drop_idle(self, now: float) -> None:
        self._buckets = {
            client: (tokens, updated)
            for client, (tokens, updated) in self._buckets.items()
            if not is_full(self.limit, tokens, now - updated)
        }
