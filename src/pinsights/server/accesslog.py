"""Access log: one JSON line per request on stderr, for log shippers to parse.

It records who asked what and how it went — never a credential. Nothing is written verbatim that a
caller chose freely: no header is read (Authorization, Cookie), no body; of the query string only
the parameters the API defines (``audience_insight_type``, ``date``, ``sort``) are written, decoded,
each other parameter as ``[other]`` (its name may be the secret: ``?%74oken=…``, ``?eyJ…``); and
a path is cut at ``MAX_PATH`` characters (a token pasted into a path loses its signature).

Lines are formatted and written a batch at a time, at most ``FLUSH_INTERVAL`` seconds after the
first of them (see :mod:`pinsights.server.journal`): one write per request was, on this project's
machine, a tenth of the whole request's cost. A crash loses at most that last fraction of a second.
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl

from pinsights.server.journal import FLUSH_INTERVAL, Entry
from pinsights.server.openapi import served_document

__all__ = ["FLUSH_INTERVAL", "AccessLog"]

ASGIApp = Any
#: Formatted method-path-query parts kept (forgotten all at once when full).
REQUESTS_REMEMBERED = 4096
#: Longer paths are cut; longer values of logged parameters too (no defined value is that long).
MAX_PATH = 128
MAX_VALUE = 32
OTHER = "[other]"


def _defined_query_parameters() -> frozenset[str]:
    """Every query parameter the served OpenAPI document defines, resolving ``$ref``s."""
    document = served_document(None)
    shared = document["components"].get("parameters", {})
    names = set()
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if "$ref" in parameter:
                    parameter = shared[parameter["$ref"].rsplit("/", 1)[1]]
                if parameter.get("in") == "query":
                    names.add(parameter["name"])
    return frozenset(names)


LOGGED_PARAMETERS = _defined_query_parameters()


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
            f'"path":{_string(_cut(path, MAX_PATH))},'
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
    """The defined parameters, decoded; ``[other]`` in place of each other one."""
    if not query_string:
        return ""
    query = query_string.decode("latin-1")
    if "%" in query or "+" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
    else:  # nearly always: nothing to decode
        pairs = [part.partition("=")[::2] for part in query.split("&") if part]
    return "&".join(
        f"{name}={_cut(value, MAX_VALUE)}" if name in LOGGED_PARAMETERS else OTHER
        for name, value in pairs
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
