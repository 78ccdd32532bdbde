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

Requests on one connection are read one at a time. uvicorn parses whatever has arrived, and keeps
every pipelined request it finds waiting as a request object (about 2.4 KB each; 8 MB of pipelined
``GET /healthz`` grew a server by 556 MB in a security review). This protocol hands the parser one
request at a time — its head, then exactly its body — and holds the bytes that follow, unparsed,
with reading paused, until that request is answered (as h11 does): a connection costs at most one
request in flight and one read buffer, and a connection flooding pipelined requests is served one
request per turn of the event loop, like every other connection.

An ``Upgrade`` is never accepted (the server speaks only HTTP/1.1; no WebSocket endpoint). httptools
stops at the head of a request asking for one, and uvicorn then dropped the rest of that read and
parsed the next read's bytes as a new request: the request's body became a request of its own
(``/metrics`` smuggled behind ``/healthz``). Here, a request asking for an upgrade is a plain HTTP/1.1
request when it has no body (``curl --http2`` over ``http://`` asks for ``h2c``): what follows it is
the next request. One with a body (``Content-Length`` or ``Transfer-Encoding``) is answered 400 and
the connection closed, its body never parsed.

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

import httptools
from uvicorn.protocols.http.flow_control import FlowControl
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
UPGRADE_WITH_BODY = (
    "An Upgrade request with a body is refused: this server speaks only HTTP/1.1, and upgrades "
    "to no other protocol."
)
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
        self._head_tail = (
            b""  # the last bytes of the head given to the parser (its end may span reads)
        )
        self._body_left: int | None = None  # bytes of a Content-Length body not yet parsed
        self._unparsed = b""  # bytes received, from offset _at on, not yet given to the parser
        self._at = 0
        self._upgrade_refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = self._flow = _HoldingFlow(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._upgrade_refused:  # the refusal is answered and the connection closing
            return
        if self._at < len(self._unparsed):
            self._unparsed = self._unparsed[self._at :] + data
        else:
            self._unparsed = data
        self._at = 0
        self._parse()

    def _parse(self) -> None:
        """Give the parser what it may read now: the current request, not the one after it."""
        data = self._unparsed
        while self._at < len(data) and not self.transport.is_closing():
            cycle = self.cycle
            if self._in_head and cycle is not None and not cycle.response_complete:
                break  # a whole request waits for its answer: the next one waits unparsed
            start = self._at
            end = self._piece_end(data, start)
            self._at = end
            if not self._feed(data if start == 0 and end == len(data) else data[start:end]):
                self._at = len(data)
                break
        if self._at >= len(data):
            self._unparsed, self._at = b"", 0
        self._flow.holding = self._at < len(self._unparsed)
        if self._flow.holding:
            self.flow.pause_reading()
        if self.transport.is_closing():
            return
        if self._in_body and self._head_timer is None:
            # The head is whole but its body is not: the body gets head_timeout to arrive.
            self._start_head_timer()
        if not self._in_head or not self._head_bytes:
            return
        if self._head_bytes > self.max_head:
            status = 431 if self._line_seen else 414
            self._refuse(status, self._too_large(status))
        elif self._head_timer is None:
            # A head still incomplete after this chunk must be whole within head_timeout. The
            # usual request arrives whole in one chunk and never arms (nor cancels) a timer.
            self._start_head_timer()

    def _piece_end(self, data: bytes, start: int) -> int:
        """Where the next piece for the parser ends: never past the end of the current request."""
        if self._in_head:  # up to the blank line ending the head (httptools requires CRLFs)
            tail = self._head_tail
            if tail:
                found = (tail + data[start : start + 3]).find(b"\r\n\r\n")
                if found >= 0:
                    return start + found + 4 - len(tail)
            found = data.find(b"\r\n\r\n", start)
            return len(data) if found < 0 else found + 4
        if self._body_left is not None:  # exactly the rest of a Content-Length body
            return min(len(data), start + self._body_left)
        found = data.find(
            b"\n", start
        )  # chunked: a line at a time; the message ends at a line's end
        return len(data) if found < 0 else found + 1

    def _feed(self, piece: bytes) -> bool:
        """Parse one piece; False when the rest of the connection's bytes must not be parsed."""
        if self._in_head:
            self._head_bytes += len(piece)
            self._line_seen = self._line_seen or b"\n" in piece
            self._head_tail = (self._head_tail + piece[-3:])[-3:]
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserError:
            self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserUpgrade as upgrade:
            # httptools stops after the head of a request asking for an upgrade, and would parse
            # what follows as a new request: here that is the body, unless the request had none.
            if self._upgrade_refused:
                return False
            offset = upgrade.args[0] if upgrade.args else len(piece)
            self._at -= len(piece) - offset  # (the piece ends at the head's end: nothing)
        return True

    def on_headers_complete(self) -> None:
        """The head is whole: measure it exactly (the chunk count above may fall short by the last
        chunk), and answer one that is too large with the refusal instead of the app."""
        self._in_head, self._head_bytes, self._head_tail = False, 0, b""
        self._stop_head_timer()
        self._body_left = None
        for name, value in self.headers:
            if name == b"content-length":  # one, digits only: httptools refuses anything else
                self._body_left = int(value)
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head:
            status = 431 if len(self.url) <= self.max_head else 414
            refusal = _refusal(status, self._too_large(status))
        elif self.parser.should_upgrade() and self._declares_body():
            self._upgrade_refused = True
            refusal = _refusal(400, UPGRADE_WITH_BODY)
        else:
            self._in_body = True  # until on_message_complete, which follows at once without a body
            super().on_headers_complete()
            return
        app, self.app = self.app, refusal
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _declares_body(self) -> bool:
        return any(
            name == b"transfer-encoding" or (name == b"content-length" and value.strip(b"0") != b"")
            for name, value in self.headers
        )

    def on_body(self, body: bytes) -> None:
        if self._body_left is not None:
            self._body_left -= len(body)
        super().on_body(body)

    def on_response_complete(self) -> None:
        """An answer is complete: parse the request that waited for it, if any (uvicorn's own
        version resumes reading and starts a request it had queued)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        if self.pipeline:  # (uvicorn queues a request there only if one was parsed ahead: never)
            self._start_asgi_task(*self.pipeline.pop())
            return
        if self._at < len(self._unparsed):
            self._parse()
        if self._flow.holding or self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.cycle.response_complete and self._in_head and not self._head_bytes:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

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
        self._in_head, self._line_seen, self._body_left = True, False, None

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


class _HoldingFlow(FlowControl):
    """uvicorn's flow control, which keeps reading paused while a request waits unparsed (the
    cycle resumes reading when the app waits for a body, uvicorn's protocol after each answer)."""

    holding = False

    def resume_reading(self) -> None:
        if not self.holding:
            super().resume_reading()


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
