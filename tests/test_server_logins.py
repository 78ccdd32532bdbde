"""The token endpoint under attack (review finding): argon2 checks are bounded in number, failed
logins are limited per source address and per client id, and none of it tells ids apart."""

from __future__ import annotations

import base64
import socket
import tracemalloc
from pathlib import Path

import pytest

from pinsights.server.errors import Busy, RateLimited
from pinsights.server.logins import MAX_BUCKETS, LoginGuard
from pinsights.server.ratelimit import RateLimit
from pinsights.server.web import CHECK_STEP
from pinsights.store import PAUSE_ENV
from tests.conftest import RunningServer
from tests.test_server_auth import add_client
from tests.test_server_errors import assert_error

FORM = {"grant_type": "client_credentials"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the guard, on an explicit clock -------------------------------------------------------------


def test_failures_are_limited_per_address_and_per_client() -> None:
    clock = Clock()
    guard = LoginGuard(failed_logins=RateLimit.parse("6/min"), clock=clock)  # bursts of 12
    for _ in range(12):
        guard.admit("10.0.0.1", "victim")
        guard.failed("10.0.0.1", "victim")
    with pytest.raises(RateLimited) as refused:
        guard.admit("10.0.0.1", "someone-else")  # the address is spent
    assert refused.value.headers["Retry-After"] == "10"  # one failure back every 10 s
    with pytest.raises(RateLimited):
        guard.admit("10.0.0.2", "victim")  # so is the client id, from any address
    guard.admit("10.0.0.2", "someone-else")
    clock.now += 10
    guard.admit("10.0.0.1", "victim")  # refilled by one


def test_failures_with_long_made_up_client_ids_keep_the_guard_small() -> None:
    """A client id is whatever the caller's Basic header says, up to the request head's 16 KiB:
    the guard's memory is bounded by the number of buckets, not by what callers send."""
    clock = Clock()
    guard = LoginGuard(failed_logins=RateLimit.parse("6/min"), clock=clock)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(MAX_BUCKETS):
            clock.now += 1e-3
            guard.failed(f"10.0.{n // 256}.{n % 256}", f"{n:08d}" + "x" * 12_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 8 * 2**20, f"{grown / 2**20:.0f} MiB for {MAX_BUCKETS} failed logins"
    with pytest.raises(RateLimited):  # and each long id still has its own bucket
        for _ in range(12):
            guard.admit("10.9.9.9", "00000001" + "x" * 12_000)
            guard.failed("10.9.9.9", "00000001" + "x" * 12_000)
    guard.admit("10.9.9.8", "00000002" + "x" * 12_000)


def test_checks_in_flight_are_bounded() -> None:
    guard = LoginGuard(max_checks=2)
    with guard.checking(), guard.checking():
        with pytest.raises(Busy) as busy, guard.checking():
            pass
        assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "1"
    with guard.checking():  # slots come back
        assert guard.checks_in_flight == 1


# --- a live server ------------------------------------------------------------------------------


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def login(server: RunningServer, client_id: str, secret: str, address: str | None = None) -> int:
    headers = {"Authorization": basic(client_id, secret)}
    if address:
        headers["X-Forwarded-For"] = address
    return server.client.post("/v5/oauth/token", data=FORM, headers=headers).status_code


def peak_memory_kib(server: RunningServer) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _raw_login(host: str, port: int, client_id: str) -> socket.socket:
    body = b"grant_type=client_credentials"
    request = (
        f"POST /v5/oauth/token HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {basic(client_id, 'guess')}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    sock = socket.create_connection((host, port), timeout=60)
    sock.sendall(request)
    return sock


def _answer(sock: socket.socket) -> bytes:
    with sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_flood_of_bogus_logins_is_answered_503_at_once(tmp_path: Path, server_factory) -> None:
    """While one argon2 check is in flight (held there by the test hook, see CHECK_STEP), every
    other login needing a check is answered 503 at once; the held one then ends 401."""
    store = tmp_path / "store"
    control, server_end = socket.socketpair()
    with control, server_end:
        server = server_factory(
            store,
            env={
                "PINSIGHTS_MAX_CREDENTIAL_CHECKS": "1",
                PAUSE_ENV: f"{CHECK_STEP}:{server_end.fileno()}",
            },
            pass_fds=(server_end.fileno(),),
        )
        control.settimeout(60)
        client_id, secret = add_client(store)
        host, port = server.base_url.removeprefix("http://").split(":")
        held = _raw_login(host, int(port), "bogus-held")
        assert control.recv(64) == f"{CHECK_STEP}\n".encode(), "the check is in flight"
        flood = [_raw_login(host, int(port), f"bogus-{i}") for i in range(29)]
        for sock in flood:
            answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b"retry-after: 1" in answer.lower() and b'{"code":503,' in answer
        control.sendall(b"g")  # let the held check finish
        assert _answer(held).startswith(b"HTTP/1.1 401 ")
        # argon2 takes 64 MiB per check: one at a time keeps the server far from the review's
        # 2.1 GiB
        assert peak_memory_kib(server) < 400 * 1024
        control.sendall(b"g")  # the next check (a real client's) goes through at once
        assert login(server, client_id, secret) == 200  # and real clients still get in
        assert control.recv(64) == f"{CHECK_STEP}\n".encode()


def test_failed_logins_are_limited_per_address(tmp_path: Path, server_factory) -> None:
    store = tmp_path / "store"
    server = server_factory(
        store,
        args=("--forwarded-allow-ips", "127.0.0.1"),
        env={"PINSIGHTS_FAILED_LOGIN_LIMIT": "2/hour"},  # bursts of 4
    )
    known_id, known_secret = add_client(store)
    other_id, other_secret = add_client(store)
    assert login(server, known_id, known_secret, "198.51.100.1") == 200  # verified once
    attacker = "203.0.113.7"
    assert [login(server, f"guess-{i}", "x", attacker) for i in range(4)] == [401] * 4
    response = server.client.post(
        "/v5/oauth/token",
        data=FORM,
        headers={"Authorization": basic("guess-5", "x"), "X-Forwarded-For": attacker},
    )
    body = assert_error(response, 429, 8)
    assert "failed logins" in str(body["message"]) and int(response.headers["retry-after"]) > 0
    assert login(server, other_id, other_secret, attacker) == 429  # even right, from there
    assert login(server, other_id, other_secret, "198.51.100.2") == 200  # from elsewhere, fine
    assert login(server, known_id, known_secret, attacker) == 200  # a secret already verified


def test_failed_logins_are_limited_per_client_id_alike_for_unknown_ids(
    tmp_path: Path, server_factory
) -> None:
    store = tmp_path / "store"
    server = server_factory(
        store,
        args=("--forwarded-allow-ips", "127.0.0.1"),
        env={"PINSIGHTS_FAILED_LOGIN_LIMIT": "2/hour"},
    )
    real_id, real_secret = add_client(store)
    for target in (real_id, "0123456789abcdef"):  # a registered id and one that is not
        statuses = [login(server, target, "wrong", f"192.0.2.{i}") for i in range(6)]
        assert statuses == [401, 401, 401, 401, 429, 429], target
    assert login(server, real_id, real_secret, "192.0.2.99") == 429  # its failures are spent
