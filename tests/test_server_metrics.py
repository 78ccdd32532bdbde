"""``GET /metrics`` (SPEC §6): Prometheus metrics of a live server, summed over its workers."""

from __future__ import annotations

import datetime as dt
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pinsights.server.documents import Documents
from pinsights.server.journal import FLUSH_INTERVAL
from pinsights.server.metrics import LATENCY_BUCKETS, Metrics
from pinsights.server.runner import SHARED_MEMORY
from pinsights.store import Store
from tests.conftest import NEW_DATE, RunningServer, bearer, mint

#: Where `pinsights serve` puts its workers' private directory.
PRIVATE_BASE = SHARED_MEMORY if os.access(SHARED_MEMORY, os.W_OK) else Path(tempfile.gettempdir())

INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"


def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and labels."""
    response = server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_total(samples: dict, operation: str, status: str) -> float:
    key = ("pinsights_http_requests_total", (("operation", operation), ("status", status)))
    return samples.get(key, 0.0)


def test_requests_are_counted_by_operation_and_status(server: RunningServer) -> None:
    token = mint(["1001"])
    before = scrape(server)
    for account, times in (("1001", 3), ("1002", 2)):  # 200 thrice, 403 (not its account) twice
        for _ in range(times):
            server.get(INSIGHTS.format(account=account), token)
    server.get("/v5/ad_accounts/1001/insights/audiences", token)
    server.get("/healthz")
    server.get("/no/such/path/1001")
    after = scrape(server)
    for operation, status, count in (
        ("audience_insights_get", "200", 3),
        ("audience_insights_get", "403", 2),
        ("audience_insights_scope_and_type_get", "200", 1),
        ("health", "200", 1),
        ("other", "404", 1),
    ):
        assert (
            requests_total(after, operation, status) - requests_total(before, operation, status)
            == count
        ), (operation, status)
    latency = ("pinsights_http_request_duration_seconds_count", (("operation", "health"),))
    assert after[latency] >= 1
    assert after[("pinsights_snapshots_retained", ())] == 2
    data_age = after[("pinsights_newest_snapshot_data_age_seconds", ())]
    end_of_date = dt.datetime.combine(NEW_DATE + dt.timedelta(days=1), dt.time(), dt.UTC)
    expected = (dt.datetime.now(dt.UTC) - end_of_date).total_seconds()
    assert abs(data_age - expected) < 120
    assert 0 <= after[("pinsights_newest_snapshot_age_seconds", ())] < 24 * 3600


def refused_total(samples: dict, status: str) -> float:
    return samples.get(("pinsights_http_refused_total", (("status", status),)), 0.0)


def raw_exchange(server: RunningServer, data: bytes) -> bytes:
    """Send bytes as they are and read until the server closes the connection."""
    host, port = server.base_url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(data)
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_requests_the_protocol_refuses_are_counted_by_status(server: RunningServer) -> None:
    """The app never sees them, so only this counter (and stderr) tells an operator of them."""
    before = scrape(server)
    assert raw_exchange(server, b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 400 "
    )
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n"
    for _ in range(2):
        assert raw_exchange(server, big).startswith(b"HTTP/1.1 431 ")
    after = scrape(server)
    assert refused_total(after, "400") - refused_total(before, "400") == 1
    assert refused_total(after, "431") - refused_total(before, "431") == 2
    assert requests_total(after, "health", "400") == requests_total(before, "health", "400")


def test_labels_never_carry_accounts_clients_or_tokens(server: RunningServer) -> None:
    token = mint(["549000000042"], client_id="secret-client-name")
    server.get(INSIGHTS.format(account="549000000042"), token)
    server.get("/v5/ad_accounts/549000000042/nope?token=" + token)
    text = server.client.get("/metrics").text
    for secret in ("549000000042", "secret-client-name", token, "nope"):
        assert secret not in text


def test_workers_counts_are_summed_and_refusals_counted(
    handmade_store: Path, server_factory
) -> None:
    server = server_factory(handmade_store, rate_limit="5/hour", args=("--workers", "2"))
    # Named by the serving process, so servers other tests or sessions start meanwhile don't count.
    private = set(PRIVATE_BASE.glob(f"pinsights-serve-{server.process.pid}-*"))
    assert len(private) == 1, "the server keeps its workers' shared files in a private directory"
    (directory,) = private
    assert directory.stat().st_mode & 0o777 == 0o700
    token = mint(["1001"], client_id="counted")
    statuses = [
        httpx.get(
            server.base_url + INSIGHTS.format(account="1001"), headers=bearer(token)
        ).status_code
        for _ in range(14)
    ]
    assert statuses == [200] * 10 + [429] * 4
    # Workers count in batches, at most FLUSH_INTERVAL late: scrape until the other has counted.
    deadline = time.monotonic() + 10
    samples = scrape(server)
    while sum(requests_total(samples, "audience_insights_get", s) for s in ("200", "429")) < 14:
        assert time.monotonic() < deadline, "the other worker never counted its requests"
        time.sleep(FLUSH_INTERVAL)
        samples = scrape(server)
    assert requests_total(samples, "audience_insights_get", "200") == 10
    assert requests_total(samples, "audience_insights_get", "429") == 4
    rejections = (
        "pinsights_rate_limit_rejections_total",
        (("operation", "audience_insights_get"),),
    )
    assert samples[rejections] == 4
    latency, operation = "pinsights_http_request_duration_seconds", "audience_insights_get"
    assert samples[(f"{latency}_count", (("operation", operation),))] == 14
    assert samples[(f"{latency}_bucket", (("le", "+Inf"), ("operation", operation)))] == 14
    served = sum(
        samples.get(("pinsights_documents_total", (("source", source),)), 0)
        for source in ("cache", "store")
    )
    assert served == 10
    server.stop()
    assert not directory.exists(), "removed when the server stops"


@settings(max_examples=50, deadline=None)
@given(
    latencies=st.lists(
        st.one_of(
            st.sampled_from(LATENCY_BUCKETS),  # exactly on a bound: counted in that bucket
            st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
        ),
        max_size=60,
    ),
    data=st.data(),
)
def test_a_batch_counts_what_observing_each_request_would(
    latencies: list[float], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Metrics.count adds a batch up per (operation, status) and per histogram bucket: the
    exposition is the one prometheus-client gives when each request is observed on its own."""
    operations = ["audience_insights_get", None]  # None: a web path, named from WEB_OPERATIONS
    entries = []
    for i, seconds in enumerate(latencies):
        operation = data.draw(st.sampled_from(operations))
        status = data.draw(st.sampled_from([200, 403, 429, 503]))
        entries.append(("GET", "/healthz", b"", None, None, operation, status, 0, i, i + seconds))
    store = Store(tmp_path_factory.mktemp("empty") / "store")
    metrics = Metrics(Documents(store))
    metrics.count(entries[: len(entries) // 2])  # in two batches, as a journal would hand them
    metrics.count(entries[len(entries) // 2 :])

    reference = CollectorRegistry()
    requests = Counter("pinsights_http_requests", "", ["operation", "status"], registry=reference)
    latency = Histogram(
        "pinsights_http_request_duration_seconds",
        "",
        ["operation"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    for _, _, _, _, _, operation, status, _, started, finished in entries:
        name = operation or "health"
        requests.labels(name, str(status)).inc()
        latency.labels(name).observe(finished - started)

    def samples(registry: CollectorRegistry, prefix: str) -> dict[tuple[Any, ...], float]:
        text = generate_latest(registry).decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith(prefix) and not sample.name.endswith("_created")
        }

    for prefix in ("pinsights_http_requests", "pinsights_http_request_duration_seconds"):
        counted, observed = samples(metrics.registry, prefix), samples(reference, prefix)
        assert counted.keys() == observed.keys()
        for key, value in observed.items():
            assert counted[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_no_metrics_turns_the_endpoint_off(handmade_store: Path, server_factory) -> None:
    server = server_factory(handmade_store, args=("--no-metrics",))
    response = server.client.get("/metrics")
    assert response.status_code == 404 and response.json()["code"] == 404
    assert server.get(INSIGHTS.format(account="1001"), mint()).status_code == 200
