"""Access log: one JSON line per request on stderr, for log shippers to parse.

It records who asked what and how it went — never a credential: the Authorization header is not
read, and query values named like a token or secret are replaced by ``"[redacted]"``.

Lines are formatted and written a batch at a time, at most ``FLUSH_INTERVAL`` seconds after the
first of them (see :mod:`pinsights.server.journal`): one write per request was, on this project's
machine, a tenth of the whole request's cost. A crash loses at most that last fraction of a second.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from pinsights.server.journal import FLUSH_INTERVAL, Entry

__all__ = ["FLUSH_INTERVAL", "AccessLog"]

ASGIApp = Any
#: Formatted method-path-query parts kept (forgotten all at once when full).
REQUESTS_REMEMBERED = 4096
_SENSITIVE = re.compile("token|secret|password|key")  # matched against lower-cased text


class AccessLog:
    """Writes one line per HTTP request once its response has been sent, a batch at a time
    (:class:`~pinsights.server.journal.Journal` collects them)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        # method, path and redacted query, escaped: requests repeat, so each is formatted once
        self._requests: dict[tuple[str, str, bytes], str] = {}

    def write(self, entries: list[Entry], to_unix_time: float) -> None:
        self.stream.write("".join([self.line(*entry, to_unix_time) for entry in entries]))
        self.stream.flush()

    def line(
        self,
        method: str,
        path: str,
        query_string: bytes,
        remote: str | None,
        client_id: str | None,
        operation: str | None,
        status: int,
        size: int,
        started: float,
        finished: float,
        to_unix_time: float,
    ) -> str:
        request = self._requests.get((method, path, query_string))
        if request is None:
            request = self._request(method, path, query_string)
        # Formatted by hand (strings escaped by json's C encoder): json.dumps of a dict costs more
        # than the rest of a cached request.
        return (
            f'{{"time":"{_timestamp(finished + to_unix_time)}",'
            f'"remote":{_string(remote) if remote is not None else "null"},'
            f"{request},"
            f'"status":{status},"bytes":{size},'
            f'"ms":{(finished - started) * 1000:.3f},'
            f'"client_id":{_string(client_id) if client_id is not None else "null"}}}\n'
        )

    def _request(self, method: str, path: str, query_string: bytes) -> str:
        request = (
            f'"method":{_string(method)},'
            f'"path":{_string(path)},'
            f'"query":{_string(_redacted(query_string))}'
        )
        if len(self._requests) >= REQUESTS_REMEMBERED:
            self._requests.clear()
        self._requests[method, path, query_string] = request
        return request


_string = json.encoder.encode_basestring_ascii
_second = [0, ""]


def _timestamp(now: float) -> str:
    """UTC ISO 8601 with milliseconds; the part up to the second is formatted once per second."""
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
