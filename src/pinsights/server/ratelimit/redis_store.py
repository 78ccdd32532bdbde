"""Buckets in Redis, for several servers (on several hosts) that must hold one limit together.

Each request runs one Lua script in Redis: it reads the client's bucket, refills it by Redis' own
clock (``TIME``: one clock for every server, however far apart their hosts' clocks drift), spends
one request if it can and writes it back, atomically, because Redis runs a script alone. It is
:func:`~pinsights.server.ratelimit.bucket.spend`, step for step, so the burst and the
``x-ratelimit-*`` headers are exactly those of the other storages (a test compares them). A bucket
expires from Redis once it would have refilled completely: idle clients cost no memory.

Requests that arrive while a call to Redis is under way go together in the next one, a pipeline of
script calls (one round trip, a fraction of the client library's CPU per request).

When Redis cannot be reached the request is answered ``503`` (:class:`StorageUnavailable`),
never served without a limit. A failure opens a circuit breaker: for ``BREAK_SECONDS`` requests get
their 503 at once instead of each waiting for a connection to fail; then one request tries Redis
again (the others still get 503 meanwhile), and its success closes the breaker. Connect and read
timeouts are short (``TIMEOUT_SECONDS``), so a Redis that hangs costs a request that long at most.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from pinsights.server.errors import StorageUnavailable
from pinsights.server.ratelimit.bucket import Decision, RateLimit, decide

logger = logging.getLogger("pinsights.server")

KEY_PREFIX = "pinsights:ratelimit:"
#: Test hook: ``PINSIGHTS_TEST_REDIS_TIMEOUT`` (seconds) replaces ``TIMEOUT_SECONDS``, so that
#: tests bursting requests at a loaded machine see the limit, not the machine's delays as 503s.
TIMEOUT_ENV = "PINSIGHTS_TEST_REDIS_TIMEOUT"
#: Connect and read timeout of every Redis call, seconds.
TIMEOUT_SECONDS = float(os.environ.get(TIMEOUT_ENV, "0.25"))
#: How long requests are refused without trying Redis after it failed, seconds.
BREAK_SECONDS = 1.0

#: KEYS[1]: the bucket; ARGV: burst (capacity), refill rate per second. Returns {allowed, tokens}.
#: Mirrors bucket.spend; times are microseconds (integers: exact in Lua's doubles and in Redis).
SPEND_SCRIPT = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = burst
  updated = now
end
local elapsed = math.max(0, now - updated) / 1000000
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local text = string.format('%.17g', tokens)
redis.call('HSET', KEYS[1], 'tokens', text, 'updated', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, text}
"""


class RedisLimiter:
    """Token buckets keyed by client id, in the Redis at ``url`` (``redis://HOST:PORT/DB``).

    Requests that arrive while a round trip is under way wait for it, then go to Redis together,
    as one pipeline of script calls: one round trip, and a fraction of redis-py's per-call CPU,
    for however many requests came meanwhile (each still its own atomic script call).
    """

    def __init__(self, url: str, limit: RateLimit) -> None:
        self.limit = limit
        self.url = url
        self._redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            # once more on a broken connection: after Redis restarts, the pool's old ones are
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self._sha = hashlib.sha1(SPEND_SCRIPT.encode()).hexdigest()
        self._args = (limit.burst, repr(limit.per_second))
        self._waiting: list[tuple[str, asyncio.Future[tuple[int, bytes]]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._closed_until = 0.0  # the breaker is open until then (time.monotonic)
        self._probing = False

    async def take(self, client_id: str) -> Decision:
        if self._closed_until:
            self._refuse_while_open()
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self._waiting.append((KEY_PREFIX + client_id, answer))
        if self._sender is None:
            self._sender = loop.create_task(self._send())
        try:
            allowed, tokens = await answer
        finally:
            self._probing = False
        return decide(self.limit, bool(allowed), float(tokens))

    async def _send(self) -> None:
        """Spend the waiting requests' tokens, a pipeline at a time, until none are waiting."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    replies = await self._spend([key for key, _ in batch])
                except Exception as error:  # whatever it is, no request may wait for ever
                    if not isinstance(error, (RedisError, OSError)):
                        logger.exception("unexpected error from the rate-limit storage")
                    self._open(error)
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(StorageUnavailable(math.ceil(BREAK_SECONDS)))
                    continue
                if self._closed_until:
                    logger.warning("rate-limit storage %s reachable again", _safe(self.url))
                    self._closed_until = 0.0
                for (_, answer), reply in zip(batch, replies, strict=True):
                    if not answer.done():
                        answer.set_result(reply)
        finally:
            self._sender = None

    async def _spend(self, keys: list[str]) -> list[Any]:
        for attempt in range(2):
            try:
                if len(keys) == 1:
                    return [await self._redis.evalsha(self._sha, 1, keys[0], *self._args)]
                pipeline = self._redis.pipeline(transaction=False)
                for key in keys:
                    pipeline.evalsha(self._sha, 1, key, *self._args)
                return list(await pipeline.execute())
            except NoScriptError:  # a Redis that (re)started without the script: load it, once
                if attempt:
                    raise
                await self._redis.script_load(SPEND_SCRIPT)
        raise AssertionError("unreachable")

    def _refuse_while_open(self) -> None:
        """Raise 503 while the breaker is open, and while another request is trying Redis."""
        if self._probing or time.monotonic() < self._closed_until:
            raise StorageUnavailable(max(1, math.ceil(self._closed_until - time.monotonic())))
        self._probing = True  # this request tries Redis; the finally in take() resets it

    def _open(self, error: BaseException) -> None:
        if not self._closed_until:
            logger.error(
                "rate-limit storage %s unreachable (%s): answering 503 until it returns",
                _safe(self.url),
                type(error).__name__,
            )
        self._closed_until = time.monotonic() + BREAK_SECONDS

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        await self._redis.aclose()


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
