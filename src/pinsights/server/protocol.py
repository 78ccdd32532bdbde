"""The HTTP/1.1 protocol pinsights serves with: uvicorn's httptools protocol, bounded, answering JSON.

uvicorn's httptools protocol reads a request's head (request line and headers) whole before the app
sees it, however large it grows — a security review sent a 60 MB header and watched every other
request on the worker stall — and answers a request it cannot parse in plain text. This protocol
counts the bytes of each head as they arrive and, once they pass ``PINSIGHTS_MAX_REQUEST_HEAD``
(16 KiB by default, what uvicorn's h11 protocol and Node allow), answers at once and closes the
connection: 414 when the request line alone is that long, 431 otherwise. Requests httptools rejects
(a method that is not a token, bytes not allowed in a header, a broken chunked body…) get 400. All
three in the error shape of every other answer, ``{"code": <status>, "message": "…"}``.

A head must also arrive whole within ``PINSIGHTS_HEAD_TIMEOUT`` seconds (10 by default) of its first
byte, or of the connection's opening: a client trickling its headers a byte at a time ("slowloris")
would otherwise hold a connection for ever (uvicorn times out only idle kept-alive connections).
It is answered 408 and the connection closed; a connection that sent nothing is just closed. A
request's body (the token endpoint's form) must likewise arrive whole within the same time of its
head's end: a client trickling a body would otherwise hold the connection, and the app waiting for
it, for ever. It is answered 408 if the app has not answered yet, and the connection closed.

Two measures of size: while the head arrives, the bytes received so far (so memory is bounded: a head is
cut off at most one read buffer, 256 KiB with uvloop, past the limit); once it is whole, its exact
size (request target plus headers), so the limit holds to the byte whatever the chunking.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from pinsights.server.errors import ApiError

#: Environment variable (set by ``pinsights serve`` for its workers) and its default, in bytes.
MAX_REQUEST_HEAD_ENV = "PINSIGHTS_MAX_REQUEST_HEAD"
DEFAULT_MAX_REQUEST_HEAD = 16 * 1024
HEAD_TIMEOUT_ENV = "PINSIGHTS_HEAD_TIMEOUT"
DEFAULT_HEAD_TIMEOUT = 10.0
#: What ``uvicorn.run(http=…)`` is given: the class, by import path (workers import it themselves).
PROTOCOL = "pinsights.server.protocol:BoundedHttpToolsProtocol"


def _ignore(status: int) -> None:
    pass


#: Told the status of each request the protocol answers itself (the app never sees those, so the
#: access log and the request metrics do not either): the worker's metrics set it to a counter.
on_refusal: Callable[[int], None] = _ignore


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a bound on the request head and JSON error bodies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head = int(os.environ.get(MAX_REQUEST_HEAD_ENV, DEFAULT_MAX_REQUEST_HEAD))
        self.head_timeout = float(os.environ.get(HEAD_TIMEOUT_ENV, DEFAULT_HEAD_TIMEOUT))
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = True  # between requests, what arrives is the next request's head
        self._in_body = False  # a head was whole, its body is not yet
        self._line_seen = False  # the head's request line has ended

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            self._line_seen = self._line_seen or b"\n" in data
        super().data_received(data)
        if self._in_body and self._head_timer is None and not self.transport.is_closing():
            # The head is whole but its body is not: the body gets head_timeout to arrive.
            self._start_head_timer()
        if not self._in_head or not self._head_bytes or self.transport.is_closing():
            return
        if self._head_bytes > self.max_head:
            status = 431 if self._line_seen else 414
            self._refuse(status, self._too_large(status))
        elif self._head_timer is None:
            # A head still incomplete after this chunk must be whole within head_timeout. The
            # usual request arrives whole in one chunk and never arms (nor cancels) a timer.
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        """The head is whole: measure it exactly (the chunk count above may fall short by the last
        chunk), and answer one that is too large with the refusal instead of the app."""
        self._in_head, self._head_bytes = False, 0
        self._stop_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size <= self.max_head:
            self._in_body = True  # until on_message_complete, which follows at once without a body
            super().on_headers_complete()
            return
        status = 431 if len(self.url) <= self.max_head else 414
        app, self.app = self.app, _refusal(status, self._too_large(status))
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._in_body:
            self._body_timed_out()
            return
        if not self._in_head:
            return
        if self._head_bytes:
            self._refuse(408, f"The request's head did not arrive within {self.head_timeout:g} s.")
        else:
            self.transport.close()

    def _body_timed_out(self) -> None:
        message = f"The request's body did not arrive within {self.head_timeout:g} s."
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # Marked started first, so the app (told of the disconnect) cannot answer too.
            cycle.response_started = True
            self._refuse(408, message)
        else:
            self.logger.warning("closed a connection from %s: %s", _address(self.client), message)
            self.transport.close()

    def _too_large(self, status: int) -> str:
        if status == 414:
            return f"The request line exceeds {self.max_head} bytes."
        return f"The request's headers exceed {self.max_head} bytes."

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._in_body:
            self._in_body = False
            self._stop_head_timer()
        self._in_head, self._line_seen = True, False

    def send_400_response(self, msg: str) -> None:
        """What uvicorn calls when httptools cannot parse the request."""
        self._refuse(400, "Invalid HTTP request.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer now, from the protocol (the request is not whole), and close the connection."""
        body = _error_body(status, message)
        self.logger.warning("refused a request from %s: %s", _address(self.client), message)
        on_refusal(status)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def _error_body(status: int, message: str) -> bytes:
    error = ApiError(message)
    error.status = error.code = status
    return error.body()


def _refusal(status: int, message: str) -> Any:
    """An ASGI app answering every request with this error, closing the connection after it."""
    body = _error_body(status, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        logging.getLogger("uvicorn.error").warning(
            "refused a request from %s: %s", _address(scope.get("client")), message
        )
        on_refusal(status)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return refuse


def _address(client: tuple[str, int] | None) -> str:
    return client[0] if client else "an unknown address"


def write_response(send: Any, status: int, fields: bytes, body: bytes) -> bool:
    """Write a whole response — status line, headers, body — in one write, if ``send`` allows.

    The hot path's shortcut past two ASGI messages: when ``send`` is the ``send`` of uvicorn's
    httptools cycle (this protocol's), and nothing is pending on the connection, the status line,
    the server's default headers (``date``), ``fields`` (header lines, each ``name: value\\r\\n``,
    lower-case names, values the caller built from constants and digits) and ``body`` go out as
    one buffer: one ``write`` system call where uvicorn's ``send`` makes two (the head, then the
    body; on loopback, two TCP segments where one will do), and none of its per-header regular
    expression checks, which are for headers an application copies from elsewhere. The cycle's
    state is left exactly as uvicorn's ``send`` leaves it after a complete response.

    Returns False, having done nothing, when the shortcut does not apply (another server, a
    response already started, a disconnected client, a paused transport, uvicorn's own access log
    on, which its ``send`` writes): the caller then sends the usual ``http.response.start`` and
    ``http.response.body`` messages. A HEAD response's ``body`` is empty; ``fields`` still carry
    the content-length of the document.
    """
    cycle = getattr(send, "__self__", None)
    if (
        type(cycle) is not RequestResponseCycle
        or cycle.response_started
        or cycle.disconnected
        or cycle.flow.write_paused
        or cycle.access_log  # uvicorn's own access log, which `pinsights serve` turns off
    ):
        return False
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    close = not cycle.keep_alive
    cycle.transport.write(
        b"".join(
            (
                STATUS_LINE[status],
                _default_fields(cycle.default_headers),
                fields,
                b"connection: close\r\n\r\n" if close else b"\r\n",
                body,
            )
        )
    )
    cycle.response_complete = True
    cycle.message_event.set()
    if close:
        cycle.transport.close()
    cycle.on_response()
    return True


#: The server's default headers (uvicorn renews the list each second, for ``date``), joined.
_defaults: list[Any] = [None, b""]


def _default_fields(headers: list[tuple[bytes, bytes]]) -> bytes:
    if headers is not _defaults[0]:
        _defaults[0] = headers
        _defaults[1] = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in headers)
    return _defaults[1]
