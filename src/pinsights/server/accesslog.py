"""Access log: one JSON line per request on stderr, for log shippers to parse.

It records who asked what and how it went — never a credential: the Authorization header is not
read, and query values named like a token or secret are replaced by ``"[redacted]"``.

Lines are buffered and written together at most ``FLUSH_INTERVAL`` seconds after the first of them
(or once ``FLUSH_LINES`` are waiting, and at exit): one write per request was, on this project's
machine, a tenth of the whole request's cost. A crash loses at most that last fraction of a second.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import re
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from pinsights.server.api import CLIENT_ID_KEY, Scope

ASGIApp = Any
FLUSH_INTERVAL = 0.1
FLUSH_LINES = 512
_SENSITIVE = re.compile("token|secret|password|key")  # matched against lower-cased text


class AccessLog:
    """Writes one line per HTTP request once its response has been sent.

    The router calls :meth:`record` once a response is sent, with its status and size (for the
    data operations without wrapping ``send``, which is the hot path).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending: list[str] = []
        atexit.register(self.flush)

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self.stream.write("".join(lines))
            self.stream.flush()

    def record(self, scope: Scope, status: int, size: int, started: float) -> None:
        client = scope.get("client")
        client_id = scope.get(CLIENT_ID_KEY)
        # Formatted by hand (strings escaped by json's C encoder): json.dumps of a dict costs more
        # than the rest of a cached request.
        line = (
            f'{{"time":"{_timestamp()}",'
            f'"remote":{_string(client[0]) if client else "null"},'
            f'"method":{_string(scope["method"])},'
            f'"path":{_string(scope["path"])},'
            f'"query":{_string(_redacted(scope["query_string"]))},'
            f'"status":{status},"bytes":{size},'
            f'"ms":{(time.perf_counter() - started) * 1000:.3f},'
            f'"client_id":{_string(client_id) if client_id is not None else "null"}}}\n'
        )
        if not self._pending:
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)
        self._pending.append(line)
        if len(self._pending) >= FLUSH_LINES:
            self.flush()


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
    lowered = query.lower()
    if not _SENSITIVE.search(lowered):  # nearly always: no parsing
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    redacted = [(k, "[redacted]" if _SENSITIVE.search(k.lower()) else v) for k, v in pairs]
    return urlencode(redacted, safe="[]")
