"""Settings only the environment sets (docs/server.md), each shown to change what a live server does:
PINSIGHTS_TOKEN_TTL, PINSIGHTS_DOCUMENT_CACHE_SIZE (0 turns the cache off),
PINSIGHTS_TOKEN_CACHE_SIZE and PINSIGHTS_MAX_REQUEST_HEAD."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt

from tests.conftest import TEST_SECRET, RunningServer, mint
from tests.processes import scrubbed_environment
from tests.test_server_auth import FORM, add_client
from tests.test_server_hostile import exchange, in_pieces, request_head
from tests.test_server_metrics import scrape

INSIGHTS = "/v5/ad_accounts/1001/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"


def _documents_by_source(server: RunningServer) -> dict[str, float]:
    samples = scrape(server)
    return {
        source: samples.get(("pinsights_documents_total", (("source", source),)), 0.0)
        for source in ("cache", "store")
    }


def test_token_ttl_sets_the_life_of_issued_tokens(handmade_store: Path, server_factory) -> None:
    server = server_factory(handmade_store, env={"PINSIGHTS_TOKEN_TTL": "120"})
    client_id, secret = add_client(server.store)
    answer = server.client.post("/v5/oauth/token", data=FORM, auth=(client_id, secret)).json()
    assert answer["expires_in"] == 120
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


def test_document_cache_size_0_reads_every_document_from_the_store(
    handmade_store: Path, server_factory
) -> None:
    uncached = server_factory(handmade_store, env={"PINSIGHTS_DOCUMENT_CACHE_SIZE": "0"})
    cached = server_factory(handmade_store)
    token = mint()
    for server in (uncached, cached):
        before = _documents_by_source(server)
        for _ in range(5):
            assert server.get(INSIGHTS, token).status_code == 200
        after = _documents_by_source(server)
        served = {source: after[source] - before[source] for source in after}
        if server is uncached:
            assert served == {"cache": 0, "store": 5}
        else:
            # read from the store until read again (the LRU admits a document on its second
            # reading), then from the LRU
            assert served["cache"] >= 3 and served["store"] <= 2


def _serve_fails(store: Path, **env: str) -> str:
    """Start `pinsights serve` with a bad setting: it must refuse before listening."""
    result = subprocess.run(
        [sys.executable, "-m", "pinsights.cli", "serve", "--store", str(store), "--port", "0"],
        env=scrubbed_environment(PINSIGHTS_SECRET=TEST_SECRET, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_token_cache_size_is_read_and_checked(handmade_store: Path, server_factory) -> None:
    """0 remembers no verified token: every request verifies its token, and is still served."""
    server = server_factory(handmade_store, env={"PINSIGHTS_TOKEN_CACHE_SIZE": "0"})
    token = mint()
    assert [server.get(INSIGHTS, token).status_code for _ in range(3)] == [200] * 3
    assert server.get(INSIGHTS, token + "x").status_code == 401
    assert "token_cache_size" in _serve_fails(handmade_store, PINSIGHTS_TOKEN_CACHE_SIZE="-1")


def test_max_request_head_bounds_the_head(handmade_store: Path, server_factory) -> None:
    small = server_factory(handmade_store, env={"PINSIGHTS_MAX_REQUEST_HEAD": "2048"})
    default = server_factory(handmade_store)
    filler = b"X-Filler: " + b"a" * 3000  # over 2 KiB, well under the default 16 KiB
    for server, status in ((small, 431), (default, 200)):
        answer = exchange(server, in_pieces(request_head("/healthz", None, filler)))
        assert answer.status == status, answer
    assert small.get(INSIGHTS, mint(), headers={"X-Filler": "b" * 1000}).status_code == 200
    assert "max_request_head" in _serve_fails(handmade_store, PINSIGHTS_MAX_REQUEST_HEAD="100")
