"""SPEC §1's error table, row by row, against a real server: every error is {"code", "message"}."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest

from pinsights.server.tokens import TokenService
from tests.conftest import NEW_DATE, TEST_SECRET, RunningServer, bearer, mint

INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"
DEFINITIONS = "/v5/ad_accounts/{account}/insights/audiences"
CATEGORY = "/v5/ad_accounts/{account}/insights/audiences/PARTNER/ENGAGEMENT/10"
OPERATIONS = (INSIGHTS, DEFINITIONS, CATEGORY)


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text
    return body


# --- 400 / 1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v5/ad_accounts/1001/audience_insights", "audience_insight_type"),
        (INSIGHTS.format(account="abc"), "ad_account_id"),
        (INSIGHTS.format(account="1" * 19), "ad_account_id"),
        (INSIGHTS.format(account="١٢٣"), "ad_account_id"),  # non-ASCII digits
        (DEFINITIONS.format(account="12a"), "ad_account_id"),
        (
            "/v5/ad_accounts/1001/audience_insights?audience_insight_type=EVERYONE",
            "audience_insight_type",
        ),
        ("/v5/ad_accounts/1001/audience_insights?audience_insight_type=", "audience_insight_type"),
        (
            INSIGHTS.format(account="1001") + "&audience_insight_type=YOUR_ENGAGED_AUDIENCE",
            "audience_insight_type",
        ),
        (INSIGHTS.format(account="1001") + "&date=2026-13-01", "date"),
        (INSIGHTS.format(account="1001") + "&date=20261031", "date"),
        ("/v5/ad_accounts/1001/insights/audiences/PARTNERS/ENGAGEMENT/10", "scope"),
        ("/v5/ad_accounts/1001/insights/audiences/PARTNER/ENGAGED/10", "type"),
        ("/v5/ad_accounts/1001/insights/audiences/PARTNER/ENGAGEMENT/x1", "category_id"),
        (CATEGORY.format(account="1001") + "?sort=NAME", "sort"),
    ],
)
def test_invalid_parameter_is_400_1_naming_it(
    server: RunningServer, path: str, parameter: str
) -> None:
    body = assert_error(server.get(path, mint()), 400, 1)
    assert f"'{parameter}'" in str(body["message"])


# --- 401 / 2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_bearer_token_is_401_2(server: RunningServer, operation: str) -> None:
    response = server.get(operation.format(account="1001"))
    assert_error(response, 401, 2)
    assert response.headers["www-authenticate"] == "Bearer"
    assert "x-ratelimit-limit" not in response.headers


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Token abc", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer abc"],
)
def test_malformed_authorization_is_401_2(server: RunningServer, authorization: str) -> None:
    response = server.client.get(
        INSIGHTS.format(account="1001"), headers={"Authorization": authorization}
    )
    assert_error(response, 401, 2)


def test_token_signed_with_another_key_is_401_2(server: RunningServer) -> None:
    forged = TokenService(b"another-key-of-sufficient-length-0123456789").issue(
        "intruder", ["ads:read"], ["*"], 3600
    )
    assert_error(server.get(INSIGHTS.format(account="1001"), forged), 401, 2)


def test_expired_token_is_401_2(server: RunningServer) -> None:
    an_hour_ago = time.time() - 3600
    expired = TokenService(
        b"pinsights-test-secret-0123456789abcdef", clock=lambda: an_hour_ago
    ).issue("test-client", ["ads:read"], ["*"], 60)
    body = assert_error(server.get(INSIGHTS.format(account="1001"), expired), 401, 2)
    assert "expired" in str(body["message"])


def test_token_expires_while_the_server_runs(server: RunningServer) -> None:
    """A token the server accepted (and cached as verified) is refused once its ``exp`` passes.

    The token's ``exp`` is set to a whole second (an explicit clock at the issuer) so it is known
    exactly; the first answer is judged only if it came back before ``exp`` (it was then verified
    before expiry and must be 200); otherwise the machine was too slow to tell and the test tries
    again with a longer life — it never guesses how long a request takes.
    """
    for ttl in (2, 4, 8, 16, 32):
        issued_at = float(int(time.time()))
        expires_at = int(issued_at) + ttl
        issuer = TokenService(TEST_SECRET.encode(), clock=lambda at=issued_at: at)
        token = issuer.issue("test-client", ("ads:read",), ["*"], ttl)
        assert jwt.decode(token, options={"verify_signature": False})["exp"] == expires_at
        response = server.get(INSIGHTS.format(account="1001"), token)
        if time.time() < expires_at:
            assert response.status_code == 200, response.text
            break
    else:
        raise AssertionError("no request was answered within 32 s")
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    assert time.time() >= expires_at
    assert_error(server.get(INSIGHTS.format(account="1001"), token), 401, 2)


# --- 403 / 3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_token_without_ads_read_is_403_3(server: RunningServer, operation: str) -> None:
    token = mint(scopes=("boards:read", "ads:write"))
    assert_error(server.get(operation.format(account="1001"), token), 403, 3)


# --- 403 / 29 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_account_of_another_client_and_missing_account_answer_alike(
    server: RunningServer, operation: str
) -> None:
    token_for_1001 = mint(["1001"])
    other_existing = server.get(operation.format(account="1002"), token_for_1001)
    missing_for_scoped = server.get(operation.format(account="99999"), token_for_1001)
    missing_for_wildcard = server.get(operation.format(account="99999"), mint("*"))
    for response in (other_existing, missing_for_scoped, missing_for_wildcard):
        assert_error(response, 403, 29)
    assert other_existing.content == missing_for_scoped.content == missing_for_wildcard.content
    assert other_existing.headers.keys() == missing_for_wildcard.headers.keys()


def test_token_for_an_account_reads_it(server: RunningServer) -> None:
    assert server.get(INSIGHTS.format(account="1001"), mint(["1001"])).status_code == 200


# --- 404 / 404 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        INSIGHTS.format(account="1001") + "&date=2020-01-01",  # no snapshot that day
        INSIGHTS.format(account="1002") + "&date=2026-10-30",  # snapshot without the account
        "/v5/ad_accounts/1001/insights/audiences/PARTNER/ENGAGEMENT/11",  # not a category
        "/v5/ad_accounts/1001/insights/audiences/PARTNER/ENGAGEMENT/101",  # a subcategory
        "/v5/ad_accounts/1001/insights/audiences/PINTEREST/ENGAGEMENT/10",  # audience not offered
    ],
)
def test_readable_account_without_that_snapshot_or_category_is_404(
    server: RunningServer, path: str
) -> None:
    assert_error(server.get(path, mint(["1001", "1002"])), 404, 404)


def test_date_extension_serves_an_older_snapshot(server: RunningServer) -> None:
    response = server.get(INSIGHTS.format(account="1001") + "&date=2026-10-30", mint())
    assert response.status_code == 200
    assert response.json()["date"] == "2026-10-30"
    newest = server.get(INSIGHTS.format(account="1001") + f"&date={NEW_DATE}", mint())
    assert newest.json()["date"] == NEW_DATE.isoformat()


def test_unknown_route_is_404_in_the_same_shape(server: RunningServer) -> None:
    paths = ("/v5/nothing", "/v5/ad_accounts/1001/x", "/v5/ad_accounts/1001/insights", "/x")
    trailing = (
        INSIGHTS.format(account="1001").replace("?", "/?"),
        DEFINITIONS.format(account="1001") + "/",
    )
    messages = {
        assert_error(server.get(path, mint()), 404, 404)["message"] for path in paths + trailing
    }
    assert messages == {"No such route."}, "one message, whichever router found no match"


def test_head_healthz_answers_like_get_without_a_body(server: RunningServer) -> None:
    """Load balancers check with HEAD; anything but GET and HEAD stays 405 (SPEC's error shape)."""
    got = server.client.get("/healthz")
    head = server.client.head("/healthz")
    assert head.status_code == got.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == got.headers["content-length"]
    response = server.client.post("/healthz")
    assert_error(response, 405, 405)
    assert "HEAD" in response.headers["allow"] and "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", INSIGHTS.format(account="1001"), "GET"),
        ("DELETE", DEFINITIONS.format(account="1001"), "GET"),
        ("PUT", CATEGORY.format(account="1001"), "GET"),
        ("GET", "/v5/oauth/token", "POST"),
    ],
)
def test_wrong_method_is_405_with_allow(
    server: RunningServer, method: str, path: str, allowed: str
) -> None:
    response = server.client.request(method, path, headers=bearer(mint()))
    assert_error(response, 405, 405)
    assert allowed in response.headers["allow"]


# --- 429 / 8 ---------------------------------------------------------------------------------------


def test_rate_limit_exceeded_is_429_8_with_retry_after(
    handmade_store: Path, server_factory
) -> None:
    limited = server_factory(handmade_store, rate_limit="1/min")  # bursts of 2
    token = mint(client_id="greedy")
    statuses = [limited.get(INSIGHTS.format(account="1001"), token).status_code for _ in range(2)]
    assert statuses == [200, 200]
    response = limited.get(INSIGHTS.format(account="1001"), token)
    assert_error(response, 429, 8)
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-limit"] == "2"
    assert response.headers["x-ratelimit-remaining"] == "0"


# --- 500 / 500 -------------------------------------------------------------------------------------


def test_unexpected_failure_is_500_without_a_stack_trace(tmp_path: Path, server_factory) -> None:
    store = tmp_path / "store"
    store.mkdir()
    broken = server_factory(store)
    (store / "manifest.json").write_text("{ this is not json")
    for path in (INSIGHTS.format(account="1001"), "/healthz"):
        response = broken.get(path, mint())
        body = assert_error(response, 500, 500)
        assert "manifest" not in str(body["message"])
