"""Guarding ``POST /v5/oauth/token``: a bound on concurrent secret checks, and on failed logins.

A client secret is checked with argon2id, deliberately slow and memory-hard (64 MiB, about a fifth
of a second of CPU). Unbounded, that is a lever for anyone: a security review sent 60 concurrent
bogus logins and took a server from 101 MiB to 2.1 GiB, and a cached data request from 5 ms to
9.3 s. So, per worker process:

- at most ``max_checks`` argon2 checks run at once; a login that would need one more is answered
  503 with ``Retry-After`` at once, costing nothing (a secret already verified by this worker is
  recognised by a keyed digest and needs no argon2 check, so busy periods spare known clients);
- failed logins are counted per source address and per client id, in token buckets
  (``failed_logins``: 10/min with bursts of 20 by default); once either bucket is empty, logins from
  that address or for that client id are answered 429 before any argon2 check, until it refills.

Unknown client ids are counted exactly like known ones, so the limits tell no caller which ids
exist. The buckets are bounded in number (``MAX_BUCKETS`` each; idle ones go first) and in size:
a bucket is kept under a 16-byte digest of its key, never the key itself, because a client id is
whatever a caller puts in its Basic header (up to the request head's 16 KiB) — kept as it came,
10,000 of them would have held ~160 MiB per worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator

from pinsights.server.errors import Busy, RateLimited
from pinsights.server.ratelimit.bucket import RateLimit, decide, is_full, spend

#: argon2 checks in flight per worker: 2 x 64 MiB at most, and the event loop keeps a core.
MAX_CONCURRENT_CHECKS = 2
FAILED_LOGINS = "10/min"
MAX_BUCKETS = 10_000
#: Seconds a client told "busy" should wait: a check takes about a fifth of a second.
BUSY_RETRY_AFTER = 1


def _digest(key: str) -> bytes:
    """A bucket's name: the same size whatever the key's (a client id comes from the caller)."""
    return hashlib.blake2b(key.encode(errors="surrogatepass"), digest_size=16).digest()


class FailureBuckets:
    """Token buckets of failures by key; a key is admitted while its bucket holds a token."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[bytes, tuple[float, float]] = {}  # digest -> (tokens, updated at)

    def retry_after(self, key: str) -> int:
        """0 if ``key`` may try now, else the seconds until its bucket holds a token again."""
        bucket = self._buckets.get(_digest(key))
        if bucket is None:
            return 0
        allowed, tokens = spend(self.limit, bucket[0], self._clock() - bucket[1])
        return 0 if allowed else decide(self.limit, False, tokens).retry_after

    def fail(self, key: str) -> None:
        now = self._clock()
        name = _digest(key)
        bucket = self._buckets.pop(name, None)  # re-inserted last: the dict's order is recency
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._make_room(now)
            bucket = (float(self.limit.burst), now)
        _, tokens = spend(self.limit, bucket[0], now - bucket[1])
        self._buckets[name] = (tokens, now)

    def _make_room(self, now: float) -> None:
        """Forget full buckets; if that is not enough, the least recently failed quarter."""
        self._buckets = {
            key: bucket
            for key, bucket in self._buckets.items()
            if not is_full(self.limit, bucket[0], now - bucket[1])
        }
        excess = len(self._buckets) - MAX_BUCKETS * 3 // 4
        for key in list(self._buckets)[: max(0, excess)]:
            del self._buckets[key]


class LoginGuard:
    """The token endpoint's bounds, for one worker (used from its event loop only)."""

    def __init__(
        self,
        *,
        max_checks: int = MAX_CONCURRENT_CHECKS,
        failed_logins: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limit = failed_logins or RateLimit.parse(FAILED_LOGINS)
        self.max_checks = max_checks
        self.checks_in_flight = 0
        self._by_address = FailureBuckets(limit, clock)
        self._by_client = FailureBuckets(limit, clock)

    def admit(self, address: str, client_id: str) -> None:
        """Raise :class:`RateLimited` if the address or the client id failed too often lately."""
        wait = max(self._by_address.retry_after(address), self._by_client.retry_after(client_id))
        if wait:
            raise RateLimited(wait, "Too many failed logins")

    def failed(self, address: str, client_id: str) -> None:
        self._by_address.fail(address)
        self._by_client.fail(client_id)

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Hold one of the ``max_checks`` slots for an argon2 check, or raise :class:`Busy`."""
        if self.checks_in_flight >= self.max_checks:
            raise Busy(BUSY_RETRY_AFTER)
        self.checks_in_flight += 1
        try:
            yield
        finally:
            self.checks_in_flight -= 1
