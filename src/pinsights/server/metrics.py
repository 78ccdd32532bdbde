"""Prometheus metrics at ``GET /metrics`` (SPEC §6): what a running server is doing.

| metric | type | labels |
| --- | --- | --- |
| ``pinsights_http_requests_total`` | counter | ``operation``, ``status`` |
| ``pinsights_http_request_duration_seconds`` | histogram | ``operation`` |
| ``pinsights_rate_limit_rejections_total`` | counter | ``operation`` (answers 429) |
| ``pinsights_rate_limit_storage_errors_total`` | counter | ``operation`` (answers 503: storage unreachable) |
| ``pinsights_http_refused_total`` | counter | ``status``: requests the HTTP protocol answered itself (400 unparsable, 408 too slow, 414/431 too large) |
| ``pinsights_documents_total`` | counter | ``source``: ``cache`` (the worker's LRU) or ``store`` |
| ``pinsights_newest_snapshot_age_seconds`` | gauge | — seconds since the newest snapshot was published |
| ``pinsights_newest_snapshot_data_age_seconds`` | gauge | — seconds since the end of its date (UTC) |
| ``pinsights_snapshots_retained`` | gauge | — |

Labels take their values from fixed sets — operation ids of the API (``audience_insights_get``,
``oauth_token``…, ``other`` for any unknown path) and HTTP statuses — never from a request's
path, account, client id or token, so a caller can neither learn who else uses the server nor
grow the number of series.

With ``--workers N`` the counters of every worker are summed: prometheus-client's multiprocess
mode, in which each worker writes its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``
(a private directory ``pinsights serve`` creates, and removes at exit) and the worker answering a
scrape reads them all. The snapshot gauges are computed at scrape time from the store. Requests are
counted in batches from the router's :class:`~pinsights.server.journal.Journal` (at most 0.1 s
late; the worker answering a scrape counts its own first), which keeps the hot path to appending
one tuple.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from pinsights.server import protocol
from pinsights.server.documents import Documents
from pinsights.server.journal import Entry
from pinsights.server.runner import MULTIPROCESS_ENV

PATH = "/metrics"
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: Operation label of the paths outside /v5/ad_accounts/ (the data operations name themselves).
WEB_OPERATIONS = {
    "/v5/oauth/token": "oauth_token",
    "/healthz": "health",
    "/v5/openapi.json": "openapi",
    "/v5/docs": "docs",
    "/": "dashboard",
    PATH: "metrics",
}
OTHER = "other"
#: Seconds; cached answers take well under a millisecond, store reads a few, token requests ~0.2 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The server's metrics, and the ASGI app that exposes them."""

    def __init__(self, documents: Documents) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        own = CollectorRegistry(auto_describe=True)
        # In multiprocess mode values live in the shared files and are read back by the collector;
        # registering them as well would report this worker's twice.
        registry = None if self.multiprocess else own
        self.requests = Counter(
            "pinsights_http_requests",
            "HTTP requests answered, by operation and status.",
            ["operation", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "pinsights_http_request_duration_seconds",
            "Time from a request's arrival to its last byte sent, by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rejections = Counter(
            "pinsights_rate_limit_rejections",
            "Requests refused with 429 because the client's bucket was empty.",
            ["operation"],
            registry=registry,
        )
        self.storage_errors = Counter(
            "pinsights_rate_limit_storage_errors",
            "Requests refused with 503 because the rate-limit storage was unreachable.",
            ["operation"],
            registry=registry,
        )
        refused = Counter(
            "pinsights_http_refused",
            "Requests answered by the HTTP protocol before the app (400 unparsable, 408 too slow,"
            " 414/431 head too large), by status; the app's own answers are in http_requests.",
            ["status"],
            registry=registry,
        )
        protocol.on_refusal = lambda status: refused.labels(str(status)).inc()
        documents_served = Counter(
            "pinsights_documents",
            "Answers of the data operations, by where they came from: the LRU or the store.",
            ["source"],
            registry=registry,
        )
        self._documents = documents
        self._from_cache = documents_served.labels("cache")
        self._from_store = documents_served.labels("store")
        self._counted = (0, 0)  # documents.hits and .misses already counted
        if self.multiprocess:
            MultiProcessCollector(own)
        own.register(SnapshotCollector(documents))
        self.registry = own
        self.path = PATH
        #: Called before each scrape: the router flushes its journal, so the numbers are current.
        self.before_scrape: Callable[[], None] = lambda: None
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        #: The histogram's bucket bounds, +Inf last: a latency goes to the first it does not exceed.
        self._upper_bounds = (*LATENCY_BUCKETS, math.inf)

    def count(self, entries: list[Entry], to_unix_time: float = 0.0) -> None:
        """Count a batch of answered requests (a journal sink).

        Counted per batch, not per request: the requests of each (operation, status) are added up
        and each added once, and so are the latencies of each operation, per histogram bucket —
        the same values ``Histogram.observe`` would leave, one by one, at a fraction of the cost
        (``observe`` takes two locks and walks the buckets in Python for every request; a test
        holds the two to the same exposition).
        """
        tally: dict[tuple[str, int], int] = {}
        latencies: dict[str, list[float]] = {}  # operation -> [sum, count of bucket 0, 1, …]
        buckets = len(self._upper_bounds)
        for _, path, _, _, _, data_operation, status, _, started, finished in entries:
            operation = data_operation or WEB_OPERATIONS.get(path, OTHER)
            key = (operation, status)
            tally[key] = tally.get(key, 0) + 1
            seconds = finished - started
            observed = latencies.get(operation)
            if observed is None:
                observed = latencies[operation] = [0.0] * (buckets + 1)
            observed[0] += seconds
            observed[1 + bisect_left(self._upper_bounds, seconds)] += 1
        for key, count in tally.items():
            children = self._children.get(key)
            if children is None:
                children = self._bind(*key)
            children[0].inc(count)
            if children[1] is not None:
                children[1].inc(count)
        for operation, observed in latencies.items():
            _observe_many(self.latency.labels(operation), observed)
        hits, misses = self._documents.hits, self._documents.misses
        self._from_cache.inc(hits - self._counted[0])
        self._from_store.inc(misses - self._counted[1])
        self._counted = (hits, misses)

    def _bind(self, operation: str, status: int) -> tuple[Any, Any]:
        refusals = {429: self.rejections, 503: self.storage_errors}.get(status)
        children = (
            self.requests.labels(operation, str(status)),
            refusals.labels(operation) if refusals is not None else None,
        )
        self._children[(operation, status)] = children
        return children

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """``GET /metrics``: the text exposition format (HEAD: headers only)."""
        self.before_scrape()
        if scope["method"] not in ("GET", "HEAD"):
            body, status = b'{"code":405,"message":"Method not allowed."}', 405
            headers = [(b"content-type", b"application/json"), (b"allow", b"GET, HEAD")]
        else:
            body, status = self.exposition(), 200
            headers = [(b"content-type", CONTENT_TYPE)]
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def _observe_many(histogram: Any, observed: list[float]) -> None:
    """What ``histogram.observe`` would leave after each latency of a batch: ``observed`` is their
    sum, then how many fell in each bucket. (Through the child's value objects, in memory or in
    the multiprocess files alike: prometheus-client keeps one non-cumulative value per bucket and
    the sum, and adds them up at exposition.)"""
    histogram._sum.inc(observed[0])
    for value, count in zip(histogram._buckets, observed[1:], strict=True):
        if count:
            value.inc(count)


class SnapshotCollector(Collector):
    """Gauges about the snapshots served, computed from the store's manifest at scrape time."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshots = self.documents.store.snapshots()
        yield GaugeMetricFamily(
            "pinsights_snapshots_retained", "Snapshot dates the server can answer.", len(snapshots)
        )
        if not snapshots:
            return
        newest, now = snapshots[0], dt.datetime.now(dt.UTC)
        published = dt.datetime.fromisoformat(newest.published_at)
        if published.tzinfo is None:
            published = published.replace(tzinfo=dt.UTC)
        yield GaugeMetricFamily(
            "pinsights_newest_snapshot_age_seconds",
            "Seconds since the newest snapshot was published.",
            (now - published).total_seconds(),
        )
        end_of_date = dt.datetime.combine(newest.date + dt.timedelta(days=1), dt.time(), dt.UTC)
        yield GaugeMetricFamily(
            "pinsights_newest_snapshot_data_age_seconds",
            "Seconds since the end of the newest snapshot's date (UTC): how old its data is.",
            (now - end_of_date).total_seconds(),
        )
