"""A scripted HTTP server on loopback for the client's tests, plus sample wire documents.

A real socket and a real HTTP server (not a mocked transport), so the tests exercise what a user's
client does: connection handling, headers, timeouts, ``Retry-After`` and time actually spent waiting.
Each path answers from a script of :class:`Reply` objects, in order, the last one repeating; every
request is recorded as a :class:`Seen` with the monotonic time it arrived.

This module holds no tests; it is named ``test_client_*`` because that is the client's corner of tests/.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

TOKEN = "tok-SECRET-0123456789abcdef"
ACCOUNT = "549755885175"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


def error(status: int, code: int, message: str, **headers: str) -> Reply:
    """An error answer shaped as SPEC §1 says: ``{"code": int, "message": str}``."""
    return Reply(status, {"code": code, "message": message}, dict(headers))


class ScriptedServer:
    """A ThreadingHTTPServer on 127.0.0.1 with an ephemeral port, answering from per-path scripts."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                reply = server._next(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    if not isinstance(reply.body, bytes):
                        self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test); nothing to answer

            do_GET = do_POST = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v5"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def script(self, path: str, *replies: Reply) -> None:
        """Answer requests for ``/v5{path}`` with ``replies`` in order, then the last one forever."""
        self.scripts[f"/v5{path}"] = list(replies)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == f"/v5{path}"]

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            script = self.scripts.get(seen.path)
            if not script:
                return error(404, 404, f"nothing scripted for {seen.path}")
            return script.pop(0) if len(script) > 1 else script[0]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


#: Sockets bound (never listening) for the rest of the session, so their ports stay closed.
_HELD_PORTS: list[socket.socket] = []


def closed_port_url() -> str:
    """A loopback base URL nothing listens on, so connecting is refused at once.

    The port stays bound by this process (without listening) for the rest of the session: no
    other process can start listening there between this call and the test's connection.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD_PORTS.append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/v5"


def insights_document(
    kind: str = "YOUR_TOTAL_AUDIENCE", date: str = "2026-11-30"
) -> dict[str, Any]:
    """A small but complete AudienceInsightsResponse, shaped as a pinsights server answers."""
    is_platform = kind == "PINTEREST_TOTAL_AUDIENCE"
    return {
        "type": kind,
        "date": date,
        "size": 52000 if is_platform else 1234,
        "size_is_upper_bound": False,
        "categories": [
            {
                "id": "935541271955",
                "key": "935541271955",
                "name": "Home decor",
                "ratio": 0.31 if is_platform else 0.4812,
                "index": 1.0 if is_platform else 1.5523,
                "subcategories": [
                    {
                        "id": "961238559656",
                        "key": "961238559656",
                        "name": "Living room",
                        "ratio": 0.5,
                        "index": 1.0 if is_platform else 1.2,
                    }
                ],
            },
            {
                "id": "918105274631",
                "key": "918105274631",
                "name": "Travel",
                "ratio": 0.2 if is_platform else 0.1,
                "index": 1.0 if is_platform else 0.5,
                "subcategories": [],
            },
        ]
        + (
            [{"id": "1", "key": "1", "name": "Gardening", "ratio": 0.05, "index": 1.0}]
            if is_platform
            else []
        ),
        "demographics": {
            "ages": [
                {"key": "18-24", "name": "18-24", "ratio": 0.25},
                {"key": "25-34", "name": "25-34", "ratio": 0.5},
            ],
            "genders": [
                {"key": "female", "name": "Female", "ratio": 0.7},
                {"key": "male", "name": "Male", "ratio": 0.3},
            ],
            "countries": [{"key": "us", "name": "United States", "ratio": 0.9}],
            "metros": [{"key": "501", "name": "New York, NY", "ratio": 0.2}],
            "devices": [{"key": "iphone", "name": "iPhone", "ratio": 0.6}],
        },
    }


def definitions_document(date: str = "2026-11-30") -> dict[str, Any]:
    return {
        "items": [
            {"date": date, "scope": "PARTNER", "type": "IMPRESSION_PLUS_ENGAGEMENT"},
            {"date": date, "scope": "PARTNER", "type": "ENGAGEMENT"},
            {"date": date, "scope": "PINTEREST", "type": "IMPRESSION_PLUS_ENGAGEMENT"},
        ]
    }


FLAVOURS = ["sync", "async"]


def call(
    flavour: str,
    method: str,
    *args: Any,
    client_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Run one client operation with :class:`Client` or :class:`AsyncClient`, the same way."""
    from pinsights.client import AsyncClient, Client

    options: dict[str, Any] = {"access_token": TOKEN, **(client_options or {})}
    if flavour == "sync":
        with Client(**options) as client:
            return getattr(client, method)(*args, **kwargs)

    async def main() -> Any:
        async with AsyncClient(**options) as client:
            return await getattr(client, method)(*args, **kwargs)

    return anyio.run(main)


def record_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every wait the clients (sync and async) make between attempts; they still wait.

    Tests read the waits the client chose instead of bounding wall-clock time from above, which
    a busy machine can always exceed.
    """
    import types

    from pinsights.client import _async, _sync

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    async def async_sleep(seconds: float) -> None:
        waits.append(seconds)
        await anyio.sleep(seconds)

    monkeypatch.setattr(_sync, "time", types.SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(_async, "anyio", types.SimpleNamespace(sleep=async_sleep))
    return waits
