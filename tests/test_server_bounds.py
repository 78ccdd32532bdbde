"""What one request may make the server keep or write is bounded, whatever its query (issue 18).

The second security review sent ``GET /healthz?N&a&a&…`` (15.8 KB): each unknown parameter became
``[other]`` in a 62 KB access-log line, the access log's cache of formatted parts kept 4,096 such
requests (+320 MB), and with a token the data API's cache of checked requests kept 10,000 of them
(+140 MB). ``/v5/openapi.json`` was deep-copied and serialised on every request.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import time
from pathlib import Path

import httpx

from pinsights.server import openapi
from pinsights.server.accesslog import AccessLog
from pinsights.server.app import Router, create_app
from pinsights.server.settings import ServerSettings
from tests.conftest import TEST_SECRET, RunningServer, bearer, mint

LONG_QUERY = "N" + "&a" * 7900  # 15,801 bytes: under the 16 KiB head limit, so it is answered
INSIGHTS = "/v5/ad_accounts/1001/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"


def test_an_access_log_line_is_bounded_whatever_the_query(server: RunningServer) -> None:
    before = len(server.log_path.read_bytes())
    assert server.get(f"/healthz?{LONG_QUERY}").status_code == 200
    entries = server.access_log()
    written = len(server.log_path.read_bytes()) - before
    entry = next(e for e in reversed(entries) if e["path"] == "/healthz")
    assert entry["query"] == "[16 others]&[+7885 more]"
    # the request's line plus the marker's that access_log() sent after it
    assert written < 1024, f"{written} bytes of access log for one request"


def test_runs_of_other_parameters_are_collapsed_with_a_count(server: RunningServer) -> None:
    query = "a=1&b=2&audience_insight_type=YOUR_TOTAL_AUDIENCE&c&date=2026-10-31&d&e&f"
    assert server.get(f"/v5/ad_accounts/1001/audience_insights?{query}", mint()).status_code == 200
    entry = next(
        e for e in reversed(server.access_log()) if e["path"].endswith("/audience_insights")
    )
    assert entry["query"] == (
        "[2 others]&audience_insight_type=YOUR_TOTAL_AUDIENCE&[other]&date=2026-10-31&[3 others]"
    )


def entry(path: str, query: bytes) -> tuple:
    now = time.perf_counter()
    return ("GET", path, query, "127.0.0.1", None, None, 200, 10, now, now)


def test_the_access_log_keeps_no_long_request_in_its_cache() -> None:
    log = AccessLog(io.StringIO())
    log.write([entry("/healthz", f"N{i}{'&a' * 7900}".encode()) for i in range(100)], 0.0)
    log.write([entry("/" + "p" * 10_000, b"")], 0.0)
    assert len(log._parts) == 0  # each formatted afresh, none kept
    short = entry("/healthz", b"audience_insight_type=YOUR_TOTAL_AUDIENCE")
    log.write([short], 0.0)
    assert len(log._parts) == 0  # a request seen once is not kept (most never come again)
    log.write([short], 0.0)
    assert len(log._parts) == 1  # the API's requests are short, and kept when they repeat
    lines = log.stream.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 103
    assert max(len(line) for line in lines) < 1024
    assert all(json.loads(line)["status"] == 200 for line in lines)


def in_process_app(store: Path) -> Router:
    app = create_app(
        ServerSettings(
            store=store, secret=TEST_SECRET, rate_limit="100000/s", metrics=False, access_log=False
        )
    )
    gc.unfreeze()  # create_app froze the test process's objects; give them back to the collector
    return app


def ask(app: Router, paths: list[str], headers: dict[str, str]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.get(path, headers=headers) for path in paths]

    return asyncio.run(run())


def test_the_data_api_keeps_no_long_request_among_its_checked_ones(handmade_store: Path) -> None:
    app = in_process_app(handmade_store)
    long_ones = [f"{INSIGHTS}&n={i}{'&a' * 2000}" for i in range(50)]
    answers = ask(app, [*long_ones, *long_ones, INSIGHTS, INSIGHTS], bearer(mint()))
    assert [a.status_code for a in answers] == [200] * 102
    assert list(app.data_api._checked) == [
        (b"/v5/ad_accounts/1001/audience_insights", b"audience_insight_type=YOUR_TOTAL_AUDIENCE")
    ]


def test_the_openapi_document_is_serialised_once_per_process(handmade_store: Path) -> None:
    openapi.served_json.cache_clear()
    app = in_process_app(handmade_store)
    answers = ask(app, ["/v5/openapi.json"] * 20, {})
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert answers[0].headers["content-type"] == "application/json"
    assert answers[0].json()["servers"] == [{"url": "/v5"}]
    assert openapi.served_json.cache_info().misses == 1


def test_an_insights_request_never_seen_is_checked_without_routing_once_its_query_was(
    handmade_store: Path, monkeypatch
) -> None:
    """The usual cold request (an account's document asked for the first time, with a query seen
    before) is checked by matching its raw path, not split and routed: routing is made to fail
    after the first request, and the others are answered as the general way answers them."""
    from pinsights.server import api

    headers = bearer(mint())
    app = in_process_app(handmade_store)
    general = ask(app, [INSIGHTS], headers)[0]
    assert general.status_code == 200

    def no_routing(segments: list[str]) -> None:
        raise AssertionError("routed")

    paths = [
        INSIGHTS.replace("1001", "1002"),  # another account: answered at once
        INSIGHTS.replace("1001", "9999"),  # an unknown account: 403/29, as ever
        INSIGHTS.replace("1001", "9" * 19),  # an id the contract refuses: the general way
        INSIGHTS.replace("1001", ""),  # no id at all: the general way
        INSIGHTS.replace("1001/", "1001%2F"),  # an escape in the path: the general way
        INSIGHTS + "&date=2026-13-01",  # a query never checked: the general way
    ]
    expected = ask(in_process_app(handmade_store), [INSIGHTS, *paths], headers)[1:]
    monkeypatch.setattr(api, "_route", no_routing)
    fast = ask(app, paths[:2], headers)
    assert [(a.status_code, a.content) for a in fast] == [
        (e.status_code, e.content) for e in expected[:2]
    ]
    assert fast[0].json()["date"] and fast[1].json()["code"] == 29
    for path in paths[2:]:  # each of these needs routing
        assert ask(app, [path], headers)[0].status_code == 500


def test_a_line_of_a_path_never_seen_escapes_only_the_path(monkeypatch) -> None:
    """A cold request's line (an account's path never asked for, by a caller seen before, with a
    query seen before) escapes only its path: the fields around it are kept per caller. The lines
    say what they said."""
    from pinsights.server import accesslog

    query = b"audience_insight_type=YOUR_TOTAL_AUDIENCE"
    log = AccessLog(io.StringIO())
    log.write([entry("/v5/ad_accounts/1001/audience_insights", query)], 0.0)
    escaped: list[str] = []
    escape = accesslog._string
    monkeypatch.setattr(accesslog, "_string", lambda text: escaped.append(text) or escape(text))
    paths = [f"/v5/ad_accounts/{n}/audience_insights" for n in range(2000, 2010)]
    log.write([entry(path, query) for path in paths], 0.0)
    assert escaped == paths
    other = ("HEAD", paths[0], query, '10.0.0."2', "c\u00e9", None, 200, 0, 0.0, 0.0)
    log.write([other], 0.0)
    lines = [json.loads(line) for line in log.stream.getvalue().splitlines()]
    assert [line["path"] for line in lines] == [
        "/v5/ad_accounts/1001/audience_insights",
        *paths,
        paths[0],
    ]
    assert {(line["remote"], line["method"], line["client_id"]) for line in lines[:-1]} == {
        ("127.0.0.1", "GET", None)
    }
    assert (lines[-1]["remote"], lines[-1]["method"], lines[-1]["client_id"]) == (
        '10.0.0."2',
        "HEAD",
        "c\u00e9",
    )
    assert {line["query"] for line in lines} == {"audience_insight_type=YOUR_TOTAL_AUDIENCE"}


def test_an_insights_request_checked_without_routing_is_still_refused_without_the_right_token(
    handmade_store: Path, monkeypatch
) -> None:
    """The shortcut for a never-seen account's document only replaces parsing: a request taking
    it with no token, a forged one, one for other accounts or one without the read scope gets
    what the general way answers (401 or 403, the same body), never the document, and no answer
    tells an existing account from an unknown one."""
    from pinsights.server import api

    app = in_process_app(handmade_store)
    assert ask(app, [INSIGHTS], bearer(mint()))[0].status_code == 200  # the query checked once

    def no_routing(segments: list[str]) -> None:
        raise AssertionError("routed")

    refused = {
        "no token": {},
        "forged": bearer(mint() + "x"),
        "other accounts": bearer(mint(["1001"])),
        "no read scope": bearer(mint(scopes=("ads:write",))),
    }
    paths = [INSIGHTS.replace("1001", "1002"), INSIGHTS.replace("1001", "9999")]
    expected = {
        why: [(a.status_code, a.content) for a in ask(in_process_app(handmade_store), paths, h)]
        for why, h in refused.items()
    }
    monkeypatch.setattr(api, "_route", no_routing)
    for why, headers in refused.items():
        fast = [(a.status_code, a.content) for a in ask(app, paths, headers)]
        assert fast == expected[why], why
        assert {status for status, _ in fast} <= {401, 403}, why
        assert fast[0] == fast[1], why  # an existing and an unknown account alike
