"""What every answered request leaves behind — an access-log line and metric updates — batched.

The router appends one tuple per request (:meth:`Journal.add`, a fraction of a microsecond); at
most ``FLUSH_INTERVAL`` seconds later, or once ``FLUSH_ENTRIES`` are waiting, or when metrics are
scraped, or at exit, the batch goes to each sink: the access log formats and writes its lines in
one write, the metrics count them. Formatting and counting a batch in one loop costs a fraction of
doing it request by request, between two requests' worth of other work (BENCHMARKS.md, *Serving*).
A crash loses at most the last fraction of a second.
"""

from __future__ import annotations

import asyncio
import atexit
import time
from collections.abc import Callable
from typing import Any

from pinsights.server.api import CLIENT_ID_KEY, OPERATION_KEY

#: (method, path, query string, remote address, client id, operation id, status, body bytes sent,
#: started, finished): times from time.perf_counter(). Plain values, not the request's scope:
#: keeping hundreds of scopes alive until a flush would feed them to the garbage collector.
Entry = tuple[str, str, bytes, str | None, str | None, str | None, int, int, float, float]
#: A consumer of batches; the second argument turns perf_counter times into Unix times.
Sink = Callable[[list[Entry], float], None]
FLUSH_INTERVAL = 0.1
#: A batch is handled between two requests, all 32-odd connections' answers waiting meanwhile: 128
#: entries take ~0.2 ms (hot) to ~0.35 ms (cold: each new path's line formatted afresh), where 512
#: took 0.9 to 1.4 ms, every 512 requests — a p99 stall — for the same cost per request.
FLUSH_ENTRIES = 128


class Journal:
    """Entries of answered requests, handed to the sinks in batches."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self._entries: list[Entry] = []
        atexit.register(self.flush)

    def add(self, scope: dict[str, Any], status: int, size: int, started: float) -> None:
        entries = self._entries
        if not entries:
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)
        client = scope.get("client")
        entries.append(
            (
                scope["method"],
                scope["path"],
                scope["query_string"],
                client[0] if client else None,
                scope.get(CLIENT_ID_KEY),
                scope.get(OPERATION_KEY),
                status,
                size,
                started,
                time.perf_counter(),
            )
        )
        if len(entries) >= FLUSH_ENTRIES:
            self.flush()

    def flush(self) -> None:
        if self._entries:
            entries, self._entries = self._entries, []
            to_unix_time = time.time() - time.perf_counter()
            for sink in self.sinks:
                sink(entries, to_unix_time)
