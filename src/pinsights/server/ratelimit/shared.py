"""Buckets shared by the worker processes of one ``pinsights serve``: a table in shared memory.

With ``--workers N`` a client's requests land on any of N processes, and one limit must hold for
them together. The parent process creates a fixed-size file (on tmpfs where there is one) before
it starts the workers; each worker maps it and keeps every client's bucket there, read and written
under an exclusive ``flock`` on the file. Why this design (docs/server.md, *Deployment*):

- **Correct under concurrency**: a request's read-refill-spend-write runs under the lock, so no
  two workers spend the same token; the kernel releases the lock of a worker that dies holding it.
- **Cheap**: a lock, an unpack and a pack of 32 bytes — a few microseconds, no round trip to
  another process, nothing to run beside the workers (a limiter process over a Unix socket, or a
  Redis, costs tens of microseconds per request and is one more thing to keep alive).
- **Bounded**: ``slots`` buckets (65,536 by default: 2 MiB). A slot is the client id's 128-bit
  BLAKE2b digest, the tokens left and when (``CLOCK_MONOTONIC``, one clock for every process of
  the machine). A client hashes to a window of ``PROBES`` consecutive slots; a bucket that has
  refilled completely is the same as no bucket, so its slot is reused. Only when a whole window
  holds active buckets is the fullest of them given up (that client starts again from a full
  bucket): it takes thousands of clients active at once to happen at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Callable
from math import ceil
from pathlib import Path

from pinsights.server.ratelimit.bucket import Decision, RateLimit, decide, is_full

SLOT = struct.Struct("<16sdd")  # digest of the client id, tokens, updated at
DEFAULT_SLOTS = 1 << 16
#: Consecutive slots a client id may occupy (from the one its digest names).
PROBES = 16
EMPTY = bytes(16)
#: Client ids whose digest and slot are remembered per worker (cleared when full).
KEY_CACHE_SIZE = 10_000


def create_table(path: Path, slots: int = DEFAULT_SLOTS) -> None:
    """Create the zero-filled table file (owner-only); called once, by the parent process."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, slots * SLOT.size)
    finally:
        os.close(fd)


class SharedMemoryLimiter:
    """Token buckets keyed by client id, in a table every worker of the server maps."""

    def __init__(
        self, path: Path, limit: RateLimit, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._fd = os.open(path, os.O_RDWR)
        self._table = mmap.mmap(self._fd, 0)
        self._slots = len(self._table) // SLOT.size
        if self._slots < PROBES:
            raise ValueError(f"rate-limit table {path} is too small")
        self._keys: dict[str, tuple[bytes, int]] = {}
        self._burst = float(limit.burst)
        self._rate = limit.per_second

    async def take(self, client_id: str) -> Decision:
        return self.spend(client_id)

    def spend(self, client_id: str) -> Decision:
        """Spend one request from the client's bucket if it has one.

        :func:`~.bucket.spend` written out, as in :class:`~.memory.MemoryLimiter` (a test holds
        both to the bucket's functions): the lock is held only for reading, refilling and
        writing the slot — the shorter that is, the less often the other workers wait for it.
        """
        key = self._keys.get(client_id)
        if key is None:
            key = self._key(client_id)
        digest, first = key
        rate, burst = self._rate, self._burst
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            now = self._clock()  # read under the lock: updates are written in time order
            offset, tokens, updated = self._find(digest, first, now)
            if now > updated:  # (clocks of two processes may be read in the other order)
                tokens += (now - updated) * rate
            if tokens > burst:
                tokens = burst
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            SLOT.pack_into(self._table, offset, digest, tokens, now)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        if allowed:
            return Decision(True, self.limit.burst, int(tokens), ceil((burst - tokens) / rate), 0)
        return decide(self.limit, False, tokens)

    def _find(self, digest: bytes, first: int, now: float) -> tuple[int, float, float]:
        """The offset of the client's slot, with its tokens and time (a full bucket if new).

        Scans the client's window up to its first never-used slot (no client of this window was
        ever placed beyond it); a new bucket goes to the first free slot — never used, or holding
        a bucket that has refilled — or else displaces the window's fullest bucket.
        """
        table, size = self._table, SLOT.size
        free = -1
        fullest, fullest_level = -1, -1.0
        for probe in range(PROBES):
            offset = ((first + probe) % self._slots) * size
            slot_digest, tokens, updated = SLOT.unpack_from(table, offset)
            if slot_digest == digest:
                return offset, tokens, updated
            if slot_digest == EMPTY:
                if free < 0:
                    free = offset
                break
            if free < 0:
                level = tokens + (now - updated) * self.limit.per_second
                if is_full(self.limit, tokens, now - updated):
                    free = offset
                elif level > fullest_level:
                    fullest, fullest_level = offset, level
        return (free if free >= 0 else fullest), float(self.limit.burst), now

    def _key(self, client_id: str) -> tuple[bytes, int]:
        digest = hashlib.blake2b(client_id.encode(), digest_size=16).digest()
        key = (digest, int.from_bytes(digest[:8], "little") % self._slots)
        if len(self._keys) >= KEY_CACHE_SIZE:
            self._keys.clear()
        self._keys[client_id] = key
        return key

    async def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self._table.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)
