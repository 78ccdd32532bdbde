"""The serving path: stored bytes out unchanged, definitions in SPEC order, snapshots switched live."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from pinsights.store import Store
from tests.conftest import (
    AUDIENCES_NEW,
    CATEGORIES,
    INSIGHT_TYPES,
    NEW_DATE,
    OLD_DATE,
    RunningServer,
    bearer,
    insight_document,
    mint,
    write_snapshot,
)

INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type={type}"
DEFINITIONS = "/v5/ad_accounts/{account}/insights/audiences"
CATEGORY = "/v5/ad_accounts/{account}/insights/audiences/{scope}/{type}/{category}"
DEFINITION_OF = {
    "YOUR_TOTAL_AUDIENCE": ("PARTNER", "IMPRESSION_PLUS_ENGAGEMENT"),
    "YOUR_ENGAGED_AUDIENCE": ("PARTNER", "ENGAGEMENT"),
    "PINTEREST_TOTAL_AUDIENCE": ("PINTEREST", "IMPRESSION_PLUS_ENGAGEMENT"),
}


def test_every_document_is_served_byte_for_byte(
    server: RunningServer, handmade_store: Path
) -> None:
    snapshot = Store(handmade_store).latest()
    assert snapshot is not None
    token = mint()
    for account in AUDIENCES_NEW:
        for insight_type in INSIGHT_TYPES:
            response = server.get(INSIGHTS.format(account=account, type=insight_type), token)
            assert response.status_code == 200
            assert response.content == snapshot.document(account, insight_type)
            assert response.headers["content-type"] == "application/json"


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
    server: RunningServer, handmade_store: Path
) -> None:
    snapshot = Store(handmade_store).latest()
    assert snapshot is not None
    token = mint()
    for insight_type, (scope, audience_type) in DEFINITION_OF.items():
        for category in CATEGORIES:
            path = CATEGORY.format(
                account="1001", scope=scope, type=audience_type, category=category
            )
            response = server.get(path + "?sort=RATIO", token)
            assert response.status_code == 200
            assert response.content == snapshot.category_items("1001", insight_type, category)
    unserved = CATEGORY.format(account="1001", scope="PARTNER", type="ENGAGEMENT", category="30")
    assert server.get(unserved, token).json() == {"items": []}


def test_new_snapshot_is_picked_up_mid_stream_with_no_error_and_no_mixed_answer(
    tmp_path: Path, server_factory
) -> None:
    """Readers stream requests while six snapshots are published (retain 3, so files get unlinked)."""
    store = tmp_path / "store"
    start = dt.date(2026, 11, 1)
    dates = [start + dt.timedelta(days=i) for i in range(7)]

    def audiences(i: int) -> dict[str, dict[str, int]]:
        return {"1001": {"YOUR_TOTAL_AUDIENCE": 1000 + i, "YOUR_ENGAGED_AUDIENCE": 500 + i}}

    def document_bytes(i: int) -> bytes:
        document = insight_document("YOUR_TOTAL_AUDIENCE", dates[i], 1000 + i)
        return json.dumps(document, separators=(",", ":")).encode()

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
    known_documents = {document_bytes(i) for i in range(len(dates))}
    known_definitions = [definitions(i) for i in range(len(dates))]
    stop = threading.Event()
    answers: list[tuple[str, int, bytes]] = []

    def read() -> None:
        with httpx.Client(base_url=server.base_url, headers=bearer(token), timeout=10) as client:
            while not stop.is_set():
                for kind, path in (
                    ("insights", INSIGHTS.format(account="1001", type="YOUR_TOTAL_AUDIENCE")),
                    ("definitions", DEFINITIONS.format(account="1001")),
                ):
                    response = client.get(path)
                    answers.append((kind, response.status_code, response.content))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for i in range(1, len(dates)):
            time.sleep(0.3)
            write_snapshot(store, dates[i], audiences(i), retain=3)
        deadline = time.monotonic() + 5
        newest = document_bytes(len(dates) - 1)
        while time.monotonic() < deadline and not any(a[2] == newest for a in answers[-20:]):
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        stop.set()
        for reader in readers:
            reader.join()

    assert len(answers) > 100, "the readers should have streamed throughout"
    assert [a for a in answers if a[1] != 200] == []
    insights = [a[2] for a in answers if a[0] == "insights"]
    assert set(insights) <= known_documents, "every answer is one snapshot's whole document"
    assert insights[-1] == document_bytes(len(dates) - 1)
    assert len(set(insights)) >= 3, "the switch happened while requests streamed"
    for _, _, body in answers:
        if body.startswith(b'{"items"'):
            assert json.loads(body)["items"] in known_definitions
