"""Access log: one JSON line per request on stderr, for log shippers to parse.

It records who asked what and how it went — never a credential. Nothing is written verbatim that a
caller chose freely: no header is read (Authorization, Cookie), no body; of the query string only
the parameters the API defines (``audience_insight_type``, ``date``, ``sort``) are written, decoded,
each other parameter as ``[other]`` (its name may be the secret: ``?%74oken=…``, ``?eyJ…``); and
a path is cut at ``MAX_PATH`` characters (a token pasted into a path loses its signature).

A line is bounded whatever the request: a run of other parameters is written once with its count
(``[7900 others]``), only the first ``MAX_PARAMETERS`` parameters are looked at (the rest are
counted, ``[+N more]``), and the query is cut at ``MAX_QUERY`` characters. (Before that, a 15.8 KB
``?N&a&a&…`` made a 62 KB line and cost 9.6 ms of CPU.) The cache of formatted parts keeps only
requests whose path and query are short, as the API's are: a flood of long distinct queries is
formatted each time, never kept.

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
from pinsights.server.sightings import Sightings

__all__ = ["FLUSH_INTERVAL", "AccessLog"]

ASGIApp = Any
#: Formatted parts of lines kept, per request and caller (forgotten all at once when full)…
REQUESTS_REMEMBERED = 4096
#: … for requests whose path and query together are at most this long (the API's are shorter).
MAX_REMEMBERED_REQUEST = 256
#: Longer paths are cut; longer values of logged parameters too (no defined value is that long).
MAX_PATH = 128
MAX_VALUE = 32
#: Parameters looked at in a query (the rest are only counted), and the longest query written.
MAX_PARAMETERS = 16
MAX_QUERY = 256
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
        # Requests repeat: for each (method, path, query, remote, client id) the escaped parts of
        # its line — what comes after the time up to the status, and the end — are kept from its
        # second time on (most requests of a platform's API come once: sightings.py).
        self._parts: dict[tuple[str, str, bytes, str | None, str | None], tuple[str, str]] = {}
        self._sightings = Sightings(REQUESTS_REMEMBERED)
        # Queries repeat far more than paths (a request never seen before — an advertiser's own
        # document — mostly has a query seen many times): redacted once per query string; and so
        # do the fields around the path and the query (method, remote address, client id).
        self._queries: dict[bytes, str] = {}
        self._around: dict[tuple[str, str | None, str | None], tuple[str, str]] = {}
        self._second = -1  # the Unix second of _stamp, whose text is formatted once per second
        self._stamp = ""

    def write(self, entries: list[Entry], to_unix_time: float) -> None:
        """Format a batch's lines (one loop, by hand: json.dumps of a dict per line costs more
        than the rest of a cached request) and write them at once."""
        known, lines = self._parts, []
        second, stamp = self._second, self._stamp
        for method, path, query, remote, client_id, _, status, size, started, finished in entries:
            now = finished + to_unix_time
            if not 0.0 <= now - second < 1.0:
                second = int(now)
                stamp = time.strftime('{"time":"%Y-%m-%dT%H:%M:%S', time.gmtime(second))
            key = (method, path, query, remote, client_id)
            parts = known.get(key)
            if parts is None:
                parts = self._parts_of(key)
            lines.append(
                _LINE
                % (
                    stamp,
                    (now - second) * 1000,
                    parts[0],
                    status,
                    size,
                    (finished - started) * 1000,
                    parts[1],
                )
            )
        self._second, self._stamp = second, stamp
        self.stream.write("".join(lines))
        self.stream.flush()

    def _parts_of(self, key: tuple[str, str, bytes, str | None, str | None]) -> tuple[str, str]:
        """A request's parts, of which only the path is escaped anew when the rest was seen
        before (a cold request: an account's path never asked for, by a caller seen already)."""
        method, path, query, remote, client_id = key
        around = self._around.get((method, remote, client_id))
        if around is None:
            around = self._around_of(method, remote, client_id)
        parts = (
            f'{around[0]}{_string(_cut(path, MAX_PATH))},"query":{self._query(query, len(path))}',
            around[1],
        )
        if len(path) + len(query) <= MAX_REMEMBERED_REQUEST and self._sightings.again(key):
            if len(self._parts) >= REQUESTS_REMEMBERED:
                self._parts.clear()
            self._parts[key] = parts
        return parts

    def _around_of(self, method: str, remote: str | None, client_id: str | None) -> tuple[str, str]:
        """What comes before a line's path (from the remote address on) and after its query."""
        around = (
            f'"remote":{_string(remote) if remote is not None else "null"},'
            f'"method":{_string(method)},"path":',
            f',"client_id":{_string(client_id) if client_id is not None else "null"}}}\n',
        )
        if len(self._around) >= REQUESTS_REMEMBERED:
            self._around.clear()
        self._around[(method, remote, client_id)] = around
        return around

    def _query(self, query: bytes, path_length: int) -> str:
        """The query's redacted text as a JSON string, remembered under the same bound as lines."""
        text = self._queries.get(query)
        if text is None:
            text = _string(_redacted(query))
            if path_length + len(query) <= MAX_REMEMBERED_REQUEST:
                if len(self._queries) >= REQUESTS_REMEMBERED:
                    self._queries.clear()
                self._queries[query] = text
        return text


_string = json.encoder.encode_basestring_ascii
#: After the time's second: its milliseconds, the parts, the numbers. (%-formatting: a fifth
#: faster here than the same f-string.)
_LINE = '%s.%03dZ",%s,"status":%d,"bytes":%d,"ms":%.3f%s'


def _redacted(query_string: bytes) -> str:
    """The defined parameters, decoded; each run of other ones as ``[other]`` or ``[N others]``;
    past the first ``MAX_PARAMETERS``, only a count; at most ``MAX_QUERY`` characters."""
    if not query_string:
        return ""
    parts = query_string.decode("latin-1").split("&", MAX_PARAMETERS)
    unread = parts.pop().count("&") + 1 if len(parts) > MAX_PARAMETERS else 0
    written: list[str] = []
    others = 0
    for part in parts:
        if not part:
            continue
        if "%" in part or "+" in part:
            pairs = parse_qsl(part, keep_blank_values=True)
            name, value = pairs[0] if pairs else (part, "")
        else:  # nearly always: nothing to decode
            name, _, value = part.partition("=")
        if name in LOGGED_PARAMETERS:
            if others:
                written.append(_others(others))
                others = 0
            written.append(f"{name}={_cut(value, MAX_VALUE)}")
        else:
            others += 1
    if others:
        written.append(_others(others))
    if unread:
        written.append(f"[+{unread} more]")
    return _cut("&".join(written), MAX_QUERY)


def _others(count: int) -> str:
    return OTHER if count == 1 else f"[{count} others]"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
