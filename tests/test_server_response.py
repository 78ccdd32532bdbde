"""The data operations' answers go out in one write (pinsights.server.protocol.write_response):
byte for byte what the two ASGI messages say, keep-alive and pipelining as uvicorn does them."""

from __future__ import annotations

import asyncio
import gc
import socket
from pathlib import Path

import httpx
import pytest

from pinsights.server.app import create_app
from pinsights.server.settings import ServerSettings
from tests.conftest import TEST_SECRET, RunningServer, bearer, mint

INSIGHTS = "/v5/ad_accounts/1001/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"
#: Values that differ between two servers by when and how often they were asked.
VARYING = {"date", "x-ratelimit-remaining", "x-ratelimit-reset"}


def in_process(
    store: Path, requests: list[tuple[str, str, dict[str, str]]]
) -> list[httpx.Response]:
    """The same requests answered by the app through plain ASGI messages (httpx's transport)."""
    app = create_app(
        ServerSettings(
            store=store, secret=TEST_SECRET, rate_limit="100000/s", metrics=False, access_log=False
        )
    )
    gc.unfreeze()  # create_app froze the test process's objects; give them back to the collector

    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(m, path, headers=h) for m, path, h in requests]

    return asyncio.run(ask())


def test_one_write_answers_are_the_asgi_messages_answers(
    server: RunningServer, handmade_store: Path
) -> None:
    token = mint()
    requests = [
        ("GET", INSIGHTS, bearer(token)),
        ("HEAD", INSIGHTS, bearer(token)),
        ("GET", INSIGHTS, {}),  # 401 with WWW-Authenticate
        ("GET", INSIGHTS.replace("1001", "1009"), bearer(token)),  # 403/29
        ("GET", "/v5/ad_accounts/1001/nothing", bearer(token)),  # 404
        ("GET", INSIGHTS.replace("YOUR_TOTAL", "NO_SUCH"), bearer(token)),  # 400
        ("DELETE", INSIGHTS, bearer(token)),  # 405 with Allow
    ]
    expected = in_process(handmade_store, requests)
    for (method, path, headers), wanted in zip(requests, expected, strict=True):
        live = server.client.request(method, path, headers=headers)
        assert live.status_code == wanted.status_code, (method, path)
        assert live.content == wanted.content
        assert _stable(live.headers) == _stable(wanted.headers)
        assert int(live.headers["content-length"]) == len(wanted.content or expected[0].content)
        assert "date" in live.headers


def _stable(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.multi_items() if name not in VARYING]


def _exchange(server: RunningServer, raw: bytes) -> bytes:
    """Send raw bytes on one connection; everything the server answers until it closes it."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _request(token: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {INSIGHTS} HTTP/{version}", "Host: test", f"Authorization: Bearer {token}"]
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode()


@pytest.mark.parametrize("pipelined", [1, 3])
def test_pipelined_requests_are_answered_in_order_and_close_closes(
    server: RunningServer, pipelined: int
) -> None:
    """Requests sent at once on one connection are each answered whole, in order; the last asks
    ``Connection: close``: it is answered with it and the server then closes the connection (the
    read above ends)."""
    token = mint()
    one = server.client.get(INSIGHTS, headers=bearer(token)).content
    raw = _request(token) * (pipelined - 1) + _request(token, "Connection: close")
    received = _exchange(server, raw)
    heads = received.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(heads) == pipelined
    for i, response in enumerate(heads):
        head, _, body = response.partition(b"\r\n\r\n")
        assert body == one
        assert (b"connection: close" in head.lower()) == (i == pipelined - 1)


def test_http_1_0_gets_connection_close(server: RunningServer) -> None:
    received = _exchange(server, _request(mint(), version="1.0"))
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close" in head
    assert body == server.client.get(INSIGHTS, headers=bearer(mint())).content
