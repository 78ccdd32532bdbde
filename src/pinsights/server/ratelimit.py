"""Per-client rate limits: a token bucket per client id, refilled continuously.

A bucket holds at most ``burst`` requests (twice the rate's count by default, SPEC §1) and refills at
``count / period``. Buckets live in the worker's memory: with ``--workers N`` each worker limits on
its own, so a client spreading its connections over N workers can reach up to N times the limit
(docs/server.md discusses the trade-off).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

_UNITS = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hour", "hours"), 3600.0),
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")

#: Idle buckets are dropped once this many clients have been seen, to bound memory.
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class RateLimit:
    """``count`` requests per ``period`` seconds, with bursts of up to ``burst`` requests."""

    count: int
    period: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse ``100/s``, ``6000/min``, ``10/hour``…; the burst is twice the count."""
        match = _RATE.match(text.lower())
        unit = match.group(2) if match else ""
        if match is None or unit not in _UNITS or int(match.group(1)) < 1:
            raise ValueError(
                f"invalid rate limit {text!r}: expected COUNT/UNIT such as 100/s or 6000/min"
            )
        count = int(match.group(1))
        return cls(count=count, period=_UNITS[unit], burst=2 * count)

    @property
    def per_second(self) -> float:
        return self.count / self.period


class Decision(NamedTuple):
    """The outcome of one request against its client's bucket, and the headers that report it.

    (A NamedTuple rather than a dataclass: one is made per request, and it is cheaper.)
    """

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The same headers as ASGI wants them."""
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset),
        ]


class RateLimiter:
    """Token buckets keyed by client id.

    Used only from the worker's event loop thread, so it needs no lock.
    """

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._rate = limit.per_second
        self._buckets: dict[str, tuple[float, float]] = {}  # client id -> (tokens, updated at)

    def take(self, client_id: str) -> Decision:
        """Spend one request from the client's bucket if it has one."""
        now = self._clock()
        capacity = float(self.limit.burst)
        tokens, updated = self._buckets.get(client_id, (capacity, now))
        tokens = min(capacity, tokens + (now - updated) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if client_id not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            self._drop_idle(now)
        self._buckets[client_id] = (tokens, now)
        return Decision(
            allowed,
            self.limit.burst,
            int(tokens),
            math.ceil((capacity - tokens) / self._rate),
            0 if allowed else max(1, math.ceil((1.0 - tokens) / self._rate)),
        )

    def _drop_idle(self, now: float) -> None:
        """Forget buckets that have refilled completely: they hold no state worth keeping."""
        capacity = float(self.limit.burst)
        self._buckets = {
            client: (tokens, updated)
            for client, (tokens, updated) in self._buckets.items()
            if tokens + (now - updated) * self._rate < capacity
        }
