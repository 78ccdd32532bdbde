"""Per-client rate limits (SPEC §1, §6): a token bucket per client id, in one of three storages.

| storage | where buckets live | holds one limit across |
| --- | --- | --- |
| :class:`MemoryLimiter` | the process's memory | one worker (``--workers 1``) |
| :class:`SharedMemoryLimiter` | a table in shared memory, under a file lock | every worker of one ``pinsights serve`` |
| :class:`RedisLimiter` | Redis, updated by a Lua script | every server pointing at that Redis |

``--rate-limit-storage memory://`` (the default) is the first or the second, as the number of
workers asks; ``redis://HOST:PORT/DB`` the third. The bucket arithmetic is one piece of code
(:mod:`.bucket`) for all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pinsights.server.ratelimit.bucket import Decision, RateLimit
from pinsights.server.ratelimit.memory import MemoryLimiter
from pinsights.server.ratelimit.shared import SharedMemoryLimiter, create_table

MEMORY = "memory://"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

__all__ = [
    "MEMORY",
    "Decision",
    "Limiter",
    "MemoryLimiter",
    "RateLimit",
    "SharedMemoryLimiter",
    "check_storage",
    "create_table",
    "open_limiter",
]


class Limiter(Protocol):
    """What the API asks of a storage: spend one request of a client's bucket."""

    limit: RateLimit

    async def take(self, client_id: str) -> Decision:
        """The decision for one request; raises StorageUnavailable (503) if it cannot decide."""
        ...

    async def close(self) -> None: ...


def check_storage(uri: str) -> str:
    """``uri`` if it names a storage this server has, else ValueError with a clear message."""
    if uri == MEMORY or uri.startswith(REDIS_SCHEMES):
        return uri
    raise ValueError(
        f"invalid rate-limit storage {uri!r}: expected memory:// or redis://HOST:PORT/DB"
    )


def open_limiter(uri: str, limit: RateLimit, shared_table: Path | None = None) -> Limiter:
    """The limiter for a storage URI; ``shared_table`` is the workers' table, if the server has one."""
    check_storage(uri)
    if uri != MEMORY:
        from pinsights.server.ratelimit.redis_store import RedisLimiter

        return RedisLimiter(uri, limit)
    if shared_table is not None:
        return SharedMemoryLimiter(shared_table, limit)
    return MemoryLimiter(limit)
