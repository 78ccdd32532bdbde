"""The token bucket of SPEC §1, as arithmetic every storage shares.

A bucket holds at most ``burst`` requests (twice the rate's count by default) and refills
continuously at ``count / period``. Each storage (:mod:`.memory`, :mod:`.shared`, :mod:`.redis_store`)
keeps only two numbers per client — the tokens left and when that was — and runs :func:`spend` on
them atomically, so the ``x-ratelimit-*`` headers mean the same thing whatever the storage. (The
Redis storage runs the same steps in Lua, inside Redis; a test holds the two to the same answers.)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

_UNITS = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hour", "hours"), 3600.0),
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


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

    def header_fields(self) -> bytes:
        """The same headers as lines of an HTTP head (``name: value\\r\\n`` each)."""
        return _FIELDS % (self.limit, self.remaining, self.reset)


_FIELDS = b"x-ratelimit-limit: %d\r\nx-ratelimit-remaining: %d\r\nx-ratelimit-reset: %d\r\n"


def spend(limit: RateLimit, tokens: float, elapsed: float) -> tuple[bool, float]:
    """Refill a bucket that held ``tokens`` ``elapsed`` seconds ago, then take one request if it can.

    Returns whether the request is allowed and the tokens left. A negative ``elapsed`` (clocks of
    two processes read in the other order) refills nothing.
    """
    tokens = min(float(limit.burst), tokens + max(0.0, elapsed) * limit.per_second)
    if tokens >= 1.0:
        return True, tokens - 1.0
    return False, tokens


def decide(limit: RateLimit, allowed: bool, tokens: float) -> Decision:
    """The headers' numbers for a bucket left with ``tokens`` after a request."""
    rate = limit.per_second
    return Decision(
        allowed,
        limit.burst,
        int(tokens),
        math.ceil((limit.burst - tokens) / rate),
        0 if allowed else max(1, math.ceil((1.0 - tokens) / rate)),
    )


def is_full(limit: RateLimit, tokens: float, elapsed: float) -> bool:
    """Whether a bucket has refilled completely: then it holds no state worth keeping."""
    return tokens + elapsed * limit.per_second >= limit.burst
