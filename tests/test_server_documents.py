"""The serving path: stored bytes out unchanged, definitions in SPEC order, snapshots switched live."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from pinsights.contract import AudienceInsightType
from pinsights.server.documents import Documents
from pinsights.server.storefiles import RECHECK_AFTER
from pinsights.store import Store
from tests.conftest import (
    AUDIENCES_NEW,
    CATEGORIES,
    INSIGHT_TYPES,
    NEW_DATE,
    OLD_DATE,
    SERVED_CATEGORIES,
    RunningServer,
    bearer,
    insight_document,
    mint,
    write_snapshot,
)
from tests.test_server_metrics import scrape

INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type={type}"
DEFINITIONS = "/v5/ad_accounts/{account}/insights/audiences"
CATEGORY = "/v5/ad_accounts/{account}/insights/audiences/{scope}/{type}/{category}"
DEFINITION_OF = {
    "YOUR_TOTAL_AUDIENCE": ("PARTNER", "IMPRESSION_PLUS_ENGAGEMENT"),
    "YOUR_ENGAGED_AUDIENCE": ("PARTNER", "ENGAGEMENT"),
    "PINTEREST_TOTAL_AUDIENCE": ("PINTEREST", "IMPRESSION_PLUS_ENGAGEMENT"),
}


def stored_bytes(document: dict[str, Any]) -> bytes:
    """A document as the hand-made store holds it (conftest.write_snapshot): compact JSON."""
    return json.dumps(document, separators=(",", ":")).encode()


def expected_size(account: str, insight_type: str) -> int:
    """What conftest.write_snapshot was given for the newest snapshot (missing: nobody)."""
    if insight_type == "PINTEREST_TOTAL_AUDIENCE":
        return 5000
    return AUDIENCES_NEW[account].get(insight_type, 0)


def test_every_document_is_served_byte_for_byte(server: RunningServer) -> None:
    """Expected bytes come from what the store was built from, not from reading the store."""
    token = mint()
    for account in AUDIENCES_NEW:
        for insight_type in INSIGHT_TYPES:
            response = server.get(INSIGHTS.format(account=account, type=insight_type), token)
            assert response.status_code == 200
            document = insight_document(
                insight_type, NEW_DATE, expected_size(account, insight_type)
            )
            assert response.content == stored_bytes(document)
            assert response.headers["content-type"] == "application/json"


def raw_answer(server: RunningServer, target: str, token: str) -> bytes:
    """One GET on a new connection: the response's exact bytes (status line, headers, body)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        while True:
            part = sock.recv(65536)
            received += part
            fields, separator, body = received.partition(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: (\d+)", fields)
            if not part or (separator and length and len(body) >= int(length.group(1))):
                return received


def test_a_cold_read_answers_exactly_as_a_hot_one(handmade_store: Path, server_factory) -> None:
    """A document read from the store (its first and second reading: the LRU admits it when it is
    read again) and from the LRU goes out as the same bytes: status line, headers (but the
    date's value), body; and so does the 403 of an unknown account, read and cached, exactly
    as the 403 of an account the token does not cover."""
    server = server_factory(handmade_store)
    path = INSIGHTS.format(account="1001", type="YOUR_TOTAL_AUDIENCE")
    unknown = INSIGHTS.format(account="4242", type="YOUR_TOTAL_AUDIENCE")

    def store_reads() -> float:
        return scrape(server).get(("pinsights_documents_total", (("source", "store"),)), 0.0)

    before = store_reads()
    answers = [raw_answer(server, path, mint()) for _ in range(4)]
    assert store_reads() - before == 2  # then from the LRU
    refusals = [raw_answer(server, unknown, mint()) for _ in range(3)]
    refusals.append(raw_answer(server, path, mint("1002")))  # a token for another account
    for same in (answers, refusals):
        dated = [re.sub(rb"\r\ndate: [^\r]*", b"\r\ndate: -", answer) for answer in same]
        assert len(set(dated)) == 1, dated
    document = insight_document(
        "YOUR_TOTAL_AUDIENCE", NEW_DATE, expected_size("1001", "YOUR_TOTAL_AUDIENCE")
    )
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert answers[0].endswith(b"\r\n\r\n" + stored_bytes(document))
    assert refusals[0].startswith(b"HTTP/1.1 403 Forbidden\r\n")


def test_documents_read_once_never_push_a_hot_one_out_of_the_lru(handmade_store: Path) -> None:
    """A scan of documents each read once (a platform's advertisers each reading their own)
    leaves a document read again in the LRU: it is admitted on its second reading, they never."""
    documents = Documents(Store(handmade_store), cache_size=1)
    hot = ("1001", AudienceInsightType.YOUR_TOTAL_AUDIENCE, None)
    first = documents.cached_insights(*hot)
    assert documents.cached_insights(*hot) == first and documents.misses == 2
    for account in ("1001", "1002"):
        for insight_type in AudienceInsightType:
            if (account, insight_type) != hot[:2]:
                assert documents.cached_insights(account, insight_type, None)
    hits = documents.hits
    assert documents.cached_insights(*hot) == first
    assert documents.hits == hits + 1


def test_head_answers_headers_only(server: RunningServer) -> None:
    path = INSIGHTS.format(account="1001", type="YOUR_TOTAL_AUDIENCE")
    response = server.client.head(path, headers=bearer(mint()))
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) == len(server.get(path, mint()).content)


def test_small_audience_is_served_as_an_upper_bound(server: RunningServer) -> None:
    document = server.get(
        INSIGHTS.format(account="1002", type="YOUR_ENGAGED_AUDIENCE"), mint()
    ).json()
    assert document["size"] == 100 and document["size_is_upper_bound"] is True
    assert document["categories"] == []


def test_definitions_list_qualifying_audiences_newest_snapshot_first(server: RunningServer) -> None:
    def items(date: dt.date, types: tuple[str, ...]) -> list[dict[str, str]]:
        return [
            {"date": date.isoformat(), "scope": DEFINITION_OF[t][0], "type": DEFINITION_OF[t][1]}
            for t in types
        ]

    everything = INSIGHT_TYPES
    got = server.get(DEFINITIONS.format(account="1001"), mint()).json()
    assert got == {"items": items(NEW_DATE, everything) + items(OLD_DATE, everything)}
    # 1002: both own audiences below 100; the older snapshot does not know it, so its date has
    # nothing that the insights operation would serve for 1002 and is not listed
    got = server.get(DEFINITIONS.format(account="1002"), mint()).json()
    assert got == {"items": items(NEW_DATE, ("PINTEREST_TOTAL_AUDIENCE",))}


def test_category_operation_serves_subcategories_of_the_newest_snapshot(
    server: RunningServer,
) -> None:
    token = mint()
    for insight_type, (scope, audience_type) in DEFINITION_OF.items():
        document = insight_document(insight_type, NEW_DATE, expected_size("1001", insight_type))
        for category in CATEGORIES:
            path = CATEGORY.format(
                account="1001", scope=scope, type=audience_type, category=category
            )
            response = server.get(path + "?sort=RATIO", token)
            assert response.status_code == 200
            shown = {c["id"]: c["subcategories"] for c in document["categories"]}
            assert category in shown or category not in SERVED_CATEGORIES
            assert response.content == stored_bytes({"items": shown.get(category, [])})
    unserved = CATEGORY.format(account="1001", scope="PARTNER", type="ENGAGEMENT", category="30")
    assert server.get(unserved, token).json() == {"items": []}


def test_new_snapshot_is_picked_up_mid_stream_with_no_error_and_no_mixed_answer(
    tmp_path: Path, server_factory
) -> None:
    """Readers stream requests while six snapshots are published (retain 3, so files get unlinked).

    Each publish waits until every reader has been answered from it (events, not sleeps): so every
    reader crosses every switch mid-stream, and no request sent after a publish returned (and the
    server's stat window passed) is answered from an older snapshot.
    """
    store = tmp_path / "store"
    start = dt.date(2026, 11, 1)
    dates = [start + dt.timedelta(days=i) for i in range(7)]

    def audiences(i: int) -> dict[str, dict[str, int]]:
        return {"1001": {"YOUR_TOTAL_AUDIENCE": 1000 + i, "YOUR_ENGAGED_AUDIENCE": 500 + i}}

    def document_bytes(i: int) -> bytes:
        return stored_bytes(insight_document("YOUR_TOTAL_AUDIENCE", dates[i], 1000 + i))

    def definitions(newest: int) -> list[dict[str, Any]]:
        kept = [dates[i] for i in range(newest, max(newest - 3, -1), -1)]
        return [
            {"date": day.isoformat(), "scope": DEFINITION_OF[t][0], "type": DEFINITION_OF[t][1]}
            for day in kept
            for t in INSIGHT_TYPES
        ]

    write_snapshot(store, dates[0], audiences(0), retain=3)
    server = server_factory(store)
    token = mint()
    snapshot_of = {document_bytes(i): i for i in range(len(dates))}
    known_definitions = [definitions(i) for i in range(len(dates))]
    stop = threading.Event()
    readers_count = 3
    published_at: dict[int, float] = {0: 0.0}  # snapshot -> when its publish returned
    seen = {(r, i): threading.Event() for r in range(readers_count) for i in range(len(dates))}
    answers: list[tuple[int, float, str, int, bytes]] = []  # (reader, sent, kind, status, body)

    def read(me: int) -> None:
        with httpx.Client(base_url=server.base_url, headers=bearer(token), timeout=30) as client:
            while not stop.is_set():
                for kind, path in (
                    ("insights", INSIGHTS.format(account="1001", type="YOUR_TOTAL_AUDIENCE")),
                    ("definitions", DEFINITIONS.format(account="1001")),
                ):
                    sent = time.monotonic()
                    response = client.get(path)
                    answers.append((me, sent, kind, response.status_code, response.content))
                    index = snapshot_of.get(response.content)
                    if index is not None and sent > published_at.get(index, float("inf")):
                        seen[(me, index)].set()

    readers = [threading.Thread(target=read, args=(r,)) for r in range(readers_count)]
    for reader in readers:
        reader.start()
    try:
        for r in range(readers_count):
            assert seen[(r, 0)].wait(60), "every reader is answered before the first switch"
        for i in range(1, len(dates)):
            write_snapshot(store, dates[i], audiences(i), retain=3)
            published_at[i] = time.monotonic()
            for r in range(readers_count):
                assert seen[(r, i)].wait(60), f"reader {r} is answered from snapshot {i}"
    finally:
        stop.set()
        for reader in readers:
            reader.join()

    assert [a for a in answers if a[3] != 200] == []
    for _, sent, kind, _, body in answers:
        if kind == "insights":
            assert body in snapshot_of, "every answer is one snapshot's whole document"
            newest = max(i for i, at in published_at.items() if at < sent - 2 * RECHECK_AFTER)
            assert snapshot_of[body] >= newest, "no older snapshot after a publish returned"
        else:
            assert json.loads(body)["items"] in known_definitions
