"""Serving at scale (SPEC §6): one limit across workers and servers, a snapshot published under load.

Live servers are the real ``pinsights serve`` (tests.conftest), Redis is Debian's ``redis-server``
on a free loopback port (tests.redis_server). Limits are set so slow (a few per hour) that no
bucket refills noticeably during a test: the number of requests answered is then the bucket's
capacity, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinsights.server.ratelimit import (
    Decision,
    MemoryLimiter,
    RateLimit,
    SharedMemoryLimiter,
    bucket,
    create_table,
)
from pinsights.server.ratelimit.redis_store import BREAK_SECONDS, TIMEOUT_ENV, RedisLimiter
from pinsights.server.ratelimit.shared import PROBES
from tests.conftest import RunningServer, bearer, insight_document, mint, write_snapshot
from tests.redis_server import RedisServer, running_redis

INSIGHTS = "/v5/ad_accounts/1001/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"
SLOW = "5/hour"  # a burst of 10, then one more request every 720 s
BURST = 10
#: Servers under test wait this long for Redis: a burst on a loaded machine is slow, not down.
PATIENT = {TIMEOUT_ENV: "10"}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- one bucket, whatever the storage ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 11), st.sampled_from([0.0, 0.01, 0.05, 0.3, 2.0]), st.booleans()),
        max_size=80,
    )
)
def test_workers_sharing_a_table_decide_exactly_like_one_bucket(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, float, bool]]
) -> None:
    """Two workers (two mappings of one table, one window of slots, so clients share slots and
    reuse refilled ones) give the very decisions of one in-memory bucket per client — and both
    (each writes the common case out) those of the bucket's own functions."""
    table = tmp_path_factory.mktemp("table") / "buckets"
    create_table(table, slots=PROBES)
    limit = RateLimit.parse("10/s")
    shared_clock, memory_clock = FakeClock(), FakeClock()
    workers = [SharedMemoryLimiter(table, limit, shared_clock) for _ in range(2)]
    memory = MemoryLimiter(limit, memory_clock)
    reference: dict[str, tuple[float, float]] = {}  # client -> (tokens, when), by bucket.spend
    for client, advance, second_worker in steps:
        shared_clock.now += advance
        memory_clock.now += advance
        worker = workers[second_worker]
        name = f"client-{client}"
        tokens, when = reference.get(name, (float(limit.burst), shared_clock.now))
        allowed, tokens = bucket.spend(limit, tokens, shared_clock.now - when)
        reference[name] = (tokens, shared_clock.now)
        expected = bucket.decide(limit, allowed, tokens)
        assert worker.spend(name) == memory.spend(name) == expected


def test_a_window_full_of_active_buckets_gives_up_the_fullest(tmp_path: Path) -> None:
    table = tmp_path / "buckets"
    create_table(table, slots=PROBES)
    clock = FakeClock()
    limiter = SharedMemoryLimiter(table, RateLimit.parse("10/s"), clock)
    for client in range(PROBES):  # every slot holds an active bucket; client 0's is the fullest
        for _ in range(2 if client == 0 else 5):
            limiter.spend(f"c{client}")
    assert limiter.spend("newcomer").remaining == 19
    assert limiter.spend("c0").remaining == 19, "c0's bucket was given up: it starts full again"
    assert limiter.spend("c1").remaining == 14, "the others keep theirs"


def test_redis_bucket_decides_like_the_memory_bucket(redis_server: RedisServer) -> None:
    """Redis refills by its own clock, the memory bucket here by a stopped one: the decisions and
    the remaining counts are equal; the reset and retry-after of Redis are those of the memory
    bucket less what refilled while the requests ran (at most the elapsed seconds, rounded up)."""
    limit = RateLimit.parse(SLOW)

    async def decisions() -> list[Decision]:
        limiter = RedisLimiter(redis_server.url, limit)
        try:
            return [await limiter.take("client") for _ in range(BURST + 3)]
        finally:
            await limiter.close()

    memory = MemoryLimiter(limit, FakeClock())
    expected = [memory.spend("client") for _ in range(BURST + 3)]
    started = time.monotonic()
    actual = asyncio.run(decisions())
    slack = math.ceil(time.monotonic() - started)
    assert [d.allowed for d in expected] == [True] * BURST + [False] * 3
    assert [(d.allowed, d.limit, d.remaining) for d in actual] == [
        (d.allowed, d.limit, d.remaining) for d in expected
    ]
    for got, want in zip(actual, expected, strict=True):
        assert want.reset - slack <= got.reset <= want.reset, (got, want)
        assert want.retry_after - slack <= got.retry_after <= want.retry_after, (got, want)
        assert got.allowed or got.retry_after >= 1


# --- live servers ----------------------------------------------------------------------------------


def _burst(server: RunningServer, token: str, requests: int) -> list[httpx.Response]:
    """``requests`` requests at once, each on a new connection (so any worker may take it)."""

    def one(_: int) -> httpx.Response:
        return httpx.get(server.base_url + INSIGHTS, headers=bearer(token), timeout=10)

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(requests)))


def _allowed_at_most(elapsed: float) -> int:
    """What one bucket allows in ``elapsed`` seconds: its capacity plus what refills meanwhile."""
    limit = RateLimit.parse(SLOW)
    return limit.burst + math.floor(elapsed * limit.per_second)


def test_workers_of_one_server_hold_one_limit(handmade_store: Path, server_factory) -> None:
    server = server_factory(handmade_store, rate_limit=SLOW, args=("--workers", "2"))
    started = time.monotonic()
    responses = _burst(server, mint(client_id="greedy"), 60)
    elapsed = time.monotonic() - started
    answered = [r for r in responses if r.status_code == 200]
    assert {r.status_code for r in responses} == {200, 429}
    assert BURST <= len(answered) <= _allowed_at_most(elapsed)
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in answered)
    assert remaining[:BURST] == list(range(BURST)), "each token of the one bucket spent once"
    other = server.get(INSIGHTS, mint(client_id="patient"))
    assert other.status_code == 200 and other.headers["x-ratelimit-remaining"] == str(BURST - 1)


def test_two_servers_sharing_redis_hold_one_limit(
    handmade_store: Path, server_factory, redis_server: RedisServer
) -> None:
    args = ("--rate-limit-storage", redis_server.url)
    servers = [
        server_factory(handmade_store, rate_limit=SLOW, args=args, env=PATIENT) for _ in range(2)
    ]
    token = mint(client_id="shared")
    started = time.monotonic()
    responses = [servers[i % 2].get(INSIGHTS, token) for i in range(2 * BURST + 4)]
    elapsed = time.monotonic() - started
    answered = [r for r in responses if r.status_code == 200]
    assert BURST <= len(answered) <= _allowed_at_most(elapsed)
    assert [r.headers["x-ratelimit-remaining"] for r in answered[:BURST]] == [
        str(n) for n in range(BURST - 1, -1, -1)
    ], "one bucket, spent alternately from both servers"
    refused = responses[-1]
    assert refused.status_code == 429 and refused.json()["code"] == 8
    # 720 s per token, less what refilled while the requests ran (a loaded machine takes > 1 s).
    assert 720 - math.ceil(elapsed) <= int(refused.headers["retry-after"]) <= 720
    assert refused.headers["x-ratelimit-limit"] == str(BURST)


def test_concurrent_requests_through_redis_spend_one_token_each(
    handmade_store: Path, server_factory, redis_server: RedisServer
) -> None:
    """Requests arriving together go to Redis as one pipeline: still one token each."""
    args = ("--rate-limit-storage", redis_server.url, "--workers", "2")
    server = server_factory(handmade_store, rate_limit=SLOW, args=args, env=PATIENT)
    started = time.monotonic()
    responses = _burst(server, mint(client_id="crowd"), 60)
    elapsed = time.monotonic() - started
    answered = [r for r in responses if r.status_code == 200]
    assert {r.status_code for r in responses} == {200, 429}
    assert BURST <= len(answered) <= _allowed_at_most(elapsed)
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in answered)
    assert remaining[:BURST] == list(range(BURST))


class SilentPort:
    """A listener that accepts connections and never answers: a Redis that hangs. It counts the
    connections made to it, so a test can tell how often the server tried Redis."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self.listener.accept()[0])

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join()
        for connection in self.connections:
            connection.close()


def test_unreachable_redis_means_503_until_it_returns(
    handmade_store: Path, server_factory, redis_server: RedisServer
) -> None:
    server = server_factory(handmade_store, args=("--rate-limit-storage", redis_server.url))
    token = mint(client_id="steady")
    assert server.get(INSIGHTS, token).status_code == 200
    redis_server.kill()
    for _ in range(5):  # never served without a limit: every request is refused
        response = server.get(INSIGHTS, token)
        assert response.status_code == 503
        assert (
            response.json()
            == {
                "code": 503,
                "message": response.json()["message"],
            }
            and "rate-limit storage" in response.json()["message"]
        )
        assert int(response.headers["retry-after"]) >= 1
    # A Redis that hangs instead: with the breaker open, requests get their 503 without trying it;
    # one request per BREAK_SECONDS probes it (a connection and its retry, each timing out).
    hanging = SilentPort(redis_server.port)
    try:
        started = time.monotonic()
        for _ in range(20):
            assert server.get(INSIGHTS, token).status_code == 503
        elapsed = time.monotonic() - started
        probes = 1 + math.ceil(elapsed / BREAK_SECONDS)
        assert len(hanging.connections) <= 2 * probes, (len(hanging.connections), elapsed)
    finally:
        hanging.close()
    token_request = httpx.post(
        server.base_url + "/v5/oauth/token", data={"grant_type": "client_credentials"}
    )
    assert token_request.status_code == 401, "no client registered: 401 before the limit"
    redis_server.start()  # a fresh Redis, same port: no script cached, no buckets
    deadline = time.monotonic() + 60  # a bound on a hang: the breaker lets a probe through each s
    status = 503
    while status == 503 and time.monotonic() < deadline:
        status = server.get(INSIGHTS, token).status_code
        if status == 503:
            time.sleep(0.1)
    assert status == 200, "service returns by itself once Redis is back"
    response = server.get(INSIGHTS, token)
    assert response.status_code == 200 and "x-ratelimit-remaining" in response.headers


def test_snapshot_published_under_load_is_served_without_a_failure(
    tmp_path: Path, server_factory
) -> None:
    """Load generators stream requests at two workers while a new snapshot is published: no
    answer fails, every answer is one snapshot's whole document, and every request sent after the
    publish returned gets the new snapshot's."""
    store = tmp_path / "store"
    old, new = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    audiences = {"1001": {"YOUR_TOTAL_AUDIENCE": 1000, "YOUR_ENGAGED_AUDIENCE": 500}}
    write_snapshot(store, old, audiences)
    server = server_factory(store, args=("--workers", "2"))
    documents = {
        day: json.dumps(
            insight_document("YOUR_TOTAL_AUDIENCE", day, 1000), separators=(",", ":")
        ).encode()
        for day in (old, new)
    }
    token = mint()
    stop, loaded = threading.Event(), threading.Barrier(5)
    published_at: list[float] = []
    answers: list[tuple[float, int, bytes]] = []  # (sent at, status, body)
    seen_new = [threading.Event() for _ in range(4)]

    def load(me: int) -> None:
        with httpx.Client(base_url=server.base_url, headers=bearer(token), timeout=10) as client:
            for _ in range(10):  # warm: connections open, documents cached
                answers.append((time.monotonic(), client.get(INSIGHTS).status_code, b""))
            loaded.wait()
            while not stop.is_set():
                sent = time.monotonic()
                response = client.get(INSIGHTS)
                answers.append((sent, response.status_code, response.content))
                if published_at and sent > published_at[0] and response.content == documents[new]:
                    seen_new[me].set()

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        loaded.wait()
        write_snapshot(store, new, audiences)
        published_at.append(time.monotonic())
        for event in seen_new:
            assert event.wait(30), "every load generator gets the new snapshot"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(answers) > 40
    assert [status for _, status, _ in answers if status != 200] == []
    bodies = [(sent, body) for sent, _, body in answers if body]
    assert {body for _, body in bodies} <= set(documents.values()), "no mixed answer"
    after = [body for sent, body in bodies if sent > published_at[0]]
    assert after and set(after) == {documents[new]}, "after the publish, only the new snapshot"
    health = httpx.get(server.base_url + "/healthz").json()
    assert health["snapshot_date"] == new.isoformat()


def test_remembered_requests_never_answer_a_different_raw_path(server: RunningServer) -> None:
    """Checked requests are remembered per (raw path, query): after the plain path is answered,
    its percent-encoded twin is not. An encoded slash is part of a value, so the twin is
    ``ad_accounts/get`` with the id ``1001/audience_insights``: a bad parameter, never the document."""
    token = mint()
    assert server.get(INSIGHTS, token).status_code == 200
    encoded = INSIGHTS.replace("1001/audience_insights", "1001%2Faudience_insights")
    response = server.get(encoded, token)
    assert response.status_code == 400 and response.json()["code"] == 1
    assert "ad_account_id" in response.json()["message"]
    assert server.get(INSIGHTS, token).status_code == 200
