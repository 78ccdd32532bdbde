"""Access log: one JSON line per request on stderr, for log shippers to parse.

It records who asked what and how it went — never a credential: the Authorization header is not
read, and query values named like a token or secret are replaced by ``"[redacted]"``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from pinsights.server.api import CLIENT_ID_KEY, Receive, Scope, Send

ASGIApp = Any
_SENSITIVE = ("token", "secret", "password", "key")


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
            entry = {
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "remote": client[0] if client else None,
                "method": scope["method"],
                "path": scope["path"],
                "query": _redacted(scope["query_string"]),
                "status": status,
                "bytes": size,
                "ms": round((time.perf_counter() - started) * 1000, 3),
                "client_id": scope.get(CLIENT_ID_KEY),
            }
            self.stream.write(json.dumps(entry, separators=(",", ":")) + "\n")


def _redacted(query_string: bytes) -> str:
    query = query_string.decode("latin-1")
    lowered = query.lower()
    if not any(word in lowered for word in _SENSITIVE):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(k, "[redacted]" if any(w in k.lower() for w in _SENSITIVE) else v) for k, v in pairs]
    )
