"""Access log: one JSON line per request on stderr, for log shippers to parse.

It records who asked what and how it went — never a credential: the Authorization header is not
read, and query values named like a token or secret are replaced by ``"[redacted]"``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from pinsights.server.api import CLIENT_ID_KEY, Receive, Scope, Send

ASGIApp = Any
_SENSITIVE = re.compile("token|secret|password|key", re.IGNORECASE)


class AccessLog:
    """ASGI middleware writing one line per HTTP request once its response has been sent."""

    def __init__(self, app: ASGIApp, stream: TextIO) -> None:
        self.app = app
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        size = 0

        async def observing_send(message: dict[str, Any]) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            client = scope.get("client")
            client_id = scope.get(CLIENT_ID_KEY)
            # Formatted by hand (strings escaped by json's C encoder): json.dumps of a dict costs
            # more than the rest of a cached request.
            self.stream.write(
                f'{{"time":"{_timestamp()}",'
                f'"remote":{_string(client[0]) if client else "null"},'
                f'"method":{_string(scope["method"])},'
                f'"path":{_string(scope["path"])},'
                f'"query":{_string(_redacted(scope["query_string"]))},'
                f'"status":{status},"bytes":{size},'
                f'"ms":{(time.perf_counter() - started) * 1000:.3f},'
                f'"client_id":{_string(client_id) if client_id is not None else "null"}}}\n'
            )


_string = json.encoder.encode_basestring_ascii
_second = [0, ""]


def _timestamp() -> str:
    """UTC ISO 8601 with milliseconds; the part up to the second is formatted once per second."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0] = second
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{int((now - second) * 1000):03d}Z"


def _redacted(query_string: bytes) -> str:
    query = query_string.decode("latin-1")
    if not _SENSITIVE.search(query):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    redacted = [(k, "[redacted]" if _SENSITIVE.search(k) else v) for k, v in pairs]
    return urlencode(redacted, safe="[]")
