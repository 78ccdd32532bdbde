"""How the server frames requests on one connection, against a live server over raw sockets.

Replays two findings of the second security review (issue 18):

- an ``Upgrade`` the server does not accept made httptools stop at the head, and uvicorn later parsed
  the body's bytes as a request of their own: ``GET /healthz`` with ``Connection: Upgrade`` and a
  40-byte body ``GET /metrics …`` sent in a second segment got two answers, the second the whole
  ``/metrics`` page — past a load balancer that keeps ``/metrics`` to itself;
- pipelined requests were parsed as fast as they arrived, each kept waiting as a request object
  (about 2.4 KB) however many were ahead of it: 8 MB of them grew a server by 556 MB.

Each exchange is bounded in bytes and in seconds (socket timeouts), and waits on what the server
sends, never on a sleep.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: internal\r\n\r\n"
UPGRADE = b"Connection: Upgrade\r\nUpgrade: foo\r\n"


def connect(server: RunningServer, timeout: float = 10) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


class Answers:
    """Reads whole responses (each with a Content-Length) from a socket, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.closed = False

    def next(self) -> tuple[int, dict[bytes, bytes], bytes] | None:
        """The next whole response, or None once the server has closed the connection."""
        while True:
            head, separator, rest = self.buffer.partition(b"\r\n\r\n")
            if separator:
                lines = head.split(b"\r\n")
                fields = dict(
                    (name.strip().lower(), value.strip())
                    for name, _, value in (line.partition(b":") for line in lines[1:])
                )
                length = int(fields[b"content-length"])
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return int(lines[0].split()[1]), fields, rest[:length]
            if self.closed:
                assert not self.buffer, f"a partial answer before the close: {self.buffer[:200]!r}"
                return None
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.buffer += chunk

    def all(self) -> list[tuple[int, dict[bytes, bytes], bytes]]:
        """Every answer until the server closes the connection."""
        answers = []
        while (answer := self.next()) is not None:
            answers.append(answer)
        return answers


def send(sock: socket.socket, data: bytes) -> None:
    """Send, ignoring a connection the server already closed (its answer is still to be read)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def upgrade_head(body: bytes, framing: bytes | None = None) -> bytes:
    framing = b"Content-Length: %d\r\n" % len(body) if framing is None else framing
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + UPGRADE + framing + b"\r\n"


# --- finding 1: a body after an upgrade the server does not accept ---------------------------------


def test_an_upgrade_with_a_body_in_a_second_segment_is_one_400_and_no_smuggled_request(
    server: RunningServer,
) -> None:
    with connect(server) as sock:
        answers = Answers(sock)
        send(sock, upgrade_head(SMUGGLED))
        first = answers.next()  # the second segment goes only once the head has been answered
        send(sock, SMUGGLED)
        rest = answers.all()
    assert rest == [], [(status, body[:80]) for status, _, body in rest]  # no /metrics page
    assert first is not None and first[0] == 400, first
    assert b"upgrade" in first[2].lower()
    assert first[1][b"connection"] == b"close"
    assert server.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "framing, body",
    [
        (None, SMUGGLED),
        (b"Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)),
    ],
    ids=["content-length", "chunked"],
)
def test_an_upgrade_with_a_body_in_the_same_segment_is_one_400(
    server: RunningServer, framing: bytes | None, body: bytes
) -> None:
    with connect(server) as sock:
        send(sock, upgrade_head(SMUGGLED, framing) + body + HEALTH)
        answers = Answers(sock).all()
    assert [status for status, _, _ in answers] == [400]
    assert server.get("/healthz").status_code == 200


@pytest.mark.parametrize("split", [False, True], ids=["same-segment", "second-segment"])
def test_an_upgrade_without_a_body_is_plain_http(server: RunningServer, split: bool) -> None:
    """``Upgrade: h2c`` (``curl --http2`` over http://) is ignored: the request is answered as an
    HTTP/1.1 one, and what follows it is the next request, pipelined or not — not dropped."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    head += b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
    second = b"GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(server) as sock:
        answers = Answers(sock)
        if split:
            send(sock, head)
            first = answers.next()
            send(sock, second)
            statuses = [first[0] if first else None] + [status for status, _, _ in answers.all()]
        else:
            send(sock, head + second)
            statuses = [status for status, _, _ in answers.all()]
    assert statuses == [200, 404]


# --- finding 2: requests read ahead of their answers -----------------------------------------------


def test_a_pipelined_request_is_read_only_once_the_one_before_is_answered(
    server: RunningServer,
) -> None:
    """A request the parser refuses, pipelined behind a good one, is seen only after the good one
    is answered: both answers arrive, in order. (A server that reads ahead — the one the review
    found — parses the bad request at once and answers 400 first, dropping the good one.)"""
    with connect(server) as sock:
        send(sock, HEALTH * 3 + b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n" + HEALTH)
        statuses = [status for status, _, _ in Answers(sock).all()]
    assert statuses == [200, 200, 200, 400]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


@pytest.fixture
def own_server(handmade_store: Path, server_factory) -> Iterator[RunningServer]:
    """A server of its own, so that its memory is this test's alone."""
    yield server_factory(handmade_store, args=("--no-access-log",))


#: A flood of 2 MiB of the smallest request the data API answers (a 404, before any token check).
FLOOD_REQUEST = b"GET /v5/ad_accounts/1/x HTTP/1.1\r\nHost: x\r\n\r\n"
FLOOD_BYTES = 2 << 20


def test_a_pipelined_flood_holds_no_more_than_a_read_and_others_are_served(
    own_server: RunningServer,
) -> None:
    """2 MiB of pipelined requests on one connection, read back as they are answered, while
    another client asks for /healthz: the server's memory does not grow with the flood (it stops
    reading while a request is answered), and the other client is answered during the flood."""
    pid = own_server.process.pid
    count = FLOOD_BYTES // len(FLOOD_REQUEST)
    before = rss_kib(pid)
    peak = before
    answered = 0
    latencies_ms: list[float] = []

    with connect(own_server, timeout=60) as flood:
        sender = threading.Thread(target=send, args=(flood, FLOOD_REQUEST * count), daemon=True)
        sender.start()
        answers = Answers(flood)
        with connect(own_server) as other:
            other_answers = Answers(other)
            for answered in range(1, count + 1):
                answer = answers.next()
                assert answer is not None and answer[0] == 404, answer
                if answered % 1000 == 0:  # the flood is under way: the other client asks now
                    peak = max(peak, rss_kib(pid))
                    asked = time.perf_counter()
                    other.sendall(HEALTH)
                    reply = other_answers.next()
                    latencies_ms.append((time.perf_counter() - asked) * 1000)
                    assert reply is not None and reply[0] == 200
        sender.join(timeout=60)
    peak = max(peak, rss_kib(pid))
    growth_mib = (peak - before) / 1024
    print(
        f"\n{count} pipelined requests: RSS {before / 1024:.1f} MiB, peak +{growth_mib:.1f} MiB;"
        f" another client's /healthz meanwhile: median {statistics.median(latencies_ms):.1f} ms,"
        f" max {max(latencies_ms):.1f} ms ({len(latencies_ms)} requests)"
    )
    # 2.4 KB per request read ahead would be ~100 MiB here; a read buffer and one request are < 1
    assert growth_mib < 24, f"the server grew by {growth_mib:.1f} MiB under a pipelined flood"
