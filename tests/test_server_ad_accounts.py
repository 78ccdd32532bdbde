"""``GET /v5/ad_accounts`` and ``GET /v5/ad_accounts/{ad_account_id}`` (v5 ``ad_accounts/list`` and
``ad_accounts/get``) on a live server: the accounts a token covers, with the names of the newest
snapshot, bookmark pagination, 403/29 without an existence oracle, and the parameter errors."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, mint, start_server, write_snapshot

DATE = dt.date(2026, 11, 2)
#: 57 accounts of varied id lengths (so text order and number order differ), named after their id.
ACCOUNTS = [
    str(n) for n in (*range(1, 40, 3), *range(990, 1020), *range(549755813000, 549755813014))
]
COUNTRIES = ("US", "DE", "FR")
CURRENCIES = ("USD", "EUR", "GBP")


def details_of(account: str) -> dict[str, str]:
    index = ACCOUNTS.index(account)
    return {
        "name": f"Advertiser {account} — café",  # non-ASCII on purpose
        "country": COUNTRIES[index % 3],
        "currency": CURRENCIES[index % 3],
    }


def expected(account: str) -> dict[str, str]:
    return {"id": account, **details_of(account)}


#: The order the list answers in: the accounts as numbers.
IN_ORDER = sorted(ACCOUNTS, key=int)


@pytest.fixture(scope="module")
def named_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("named") / "store"
    write_snapshot(
        store,
        DATE,
        {account: {"YOUR_TOTAL_AUDIENCE": 500} for account in ACCOUNTS},
        details={account: details_of(account) for account in ACCOUNTS},
    )
    running = start_server(store)
    yield running
    running.stop()


def pages(server: RunningServer, token: str, page_size: int | None) -> list[dict[str, Any]]:
    answers = []
    params: dict[str, Any] = {} if page_size is None else {"page_size": page_size}
    while True:
        response = server.get("/v5/ad_accounts", token, params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        answers.append(response.json())
        bookmark = answers[-1]["bookmark"]
        if bookmark is None:
            return answers
        params["bookmark"] = bookmark
        assert len(answers) < 100, "paging does not end"


@pytest.mark.parametrize("page_size", [1, 7, 57, 250, None])
def test_every_account_of_the_snapshot_for_a_star_token_page_by_page(
    named_server: RunningServer, page_size: int | None
) -> None:
    answers = pages(named_server, mint("*"), page_size)
    size = page_size or 25
    assert [len(a["items"]) for a in answers[:-1]] == [size] * (len(answers) - 1)
    assert 1 <= len(answers[-1]["items"]) <= size
    assert [item for a in answers for item in a["items"]] == [expected(a) for a in IN_ORDER]


def test_a_token_for_some_accounts_lists_those_the_snapshot_has(
    named_server: RunningServer,
) -> None:
    mine = ["549755813005", "7", "1003", "999999"]  # the last is in no snapshot
    answers = pages(named_server, mint(mine), 2)
    assert [item for a in answers for item in a["items"]] == [
        expected("7"),
        expected("1003"),
        expected("549755813005"),
    ]
    assert [len(a["items"]) for a in answers] == [2, 1]


def test_a_token_for_no_account_of_the_snapshot_lists_nothing(
    named_server: RunningServer,
) -> None:
    response = named_server.get("/v5/ad_accounts", mint(["424242"]))
    assert response.status_code == 200
    assert response.json() == {"items": [], "bookmark": None}


def test_a_forged_bookmark_moves_within_the_tokens_accounts_only(
    named_server: RunningServer,
) -> None:
    """A bookmark naming any id (one the token does not cover, one that does not exist) only says
    where to continue: the page still holds the token's own accounts, and nothing else."""
    token = mint(["4", "1010", "549755813001"])
    for after, rest in (("5", ["1010", "549755813001"]), ("1009", ["1010", "549755813001"])):
        for forged_after in (after, "123456789012345678"):
            forged = base64.urlsafe_b64encode(f"after:{forged_after}".encode()).decode()
            response = named_server.get("/v5/ad_accounts", token, params={"bookmark": forged})
            assert response.status_code == 200
            ids = [item["id"] for item in response.json()["items"]]
            assert set(ids) <= {"4", "1010", "549755813001"}
            if forged_after == after:
                assert ids == rest


def test_get_answers_the_account_as_the_list_does(named_server: RunningServer) -> None:
    token = mint(["1001", "19"])
    for account in ("1001", "19"):
        response = named_server.get(f"/v5/ad_accounts/{account}", token)
        assert response.status_code == 200
        assert response.json() == expected(account)
    assert named_server.get("/v5/ad_accounts/549755813013", mint("*")).json() == expected(
        "549755813013"
    )


def test_get_outside_the_token_is_403_29_whether_or_not_the_account_exists(
    named_server: RunningServer,
) -> None:
    """No existence oracle: an account the token does not cover, and one it covers that the
    snapshot does not have, get the same answer as an insights route gives."""
    token = mint(["1001", "777777"])
    answers = [
        named_server.get(path, token)
        for path in (
            "/v5/ad_accounts/1002",  # exists, not covered
            "/v5/ad_accounts/888888",  # neither
            "/v5/ad_accounts/777777",  # covered, not in the snapshot
            "/v5/ad_accounts/777777/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE",
        )
    ]
    assert {(a.status_code, a.content) for a in answers} == {
        (403, b'{"code":29,"message":"Not authorized to access this ad account."}')
    }
    star = named_server.get("/v5/ad_accounts/888888", mint("*"))
    assert (star.status_code, star.json()["code"]) == (403, 29)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "251"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_size": "-1"}, "page_size"),
        ({"page_size": ["5", "6"]}, "page_size"),
        ({"bookmark": "not a bookmark"}, "bookmark"),
        ({"bookmark": base64.urlsafe_b64encode(b"after:12a").decode()}, "bookmark"),
        ({"bookmark": ["", ""]}, "bookmark"),
        ({"include_shared_accounts": "maybe"}, "include_shared_accounts"),
    ],
)
def test_bad_list_parameters_are_400_1_naming_them(
    named_server: RunningServer, query: dict[str, Any], parameter: str
) -> None:
    response = named_server.get("/v5/ad_accounts", mint("*"), params=query)
    assert response.status_code == 400
    assert response.json()["code"] == 1
    assert f"'{parameter}'" in response.json()["message"]


def test_an_empty_bookmark_is_the_first_page(named_server: RunningServer) -> None:
    token = mint("*")
    first = named_server.get("/v5/ad_accounts", token, params={"page_size": 3}).json()
    empty = named_server.get("/v5/ad_accounts", token, params={"page_size": 3, "bookmark": ""})
    assert empty.json() == first


def test_include_shared_accounts_is_accepted_and_changes_nothing(
    named_server: RunningServer,
) -> None:
    token = mint(["4", "7"])
    plain = named_server.get("/v5/ad_accounts", token).json()
    for value in ("true", "false"):
        response = named_server.get(
            "/v5/ad_accounts", token, params={"include_shared_accounts": value}
        )
        assert response.json() == plain


def test_bad_account_id_is_400_1(named_server: RunningServer) -> None:
    for account in ("12x", "1234567890123456789", "%E0%A5%A7"):  # the last: a non-ASCII digit
        response = named_server.get(f"/v5/ad_accounts/{account}", mint("*"))
        assert (response.status_code, response.json()["code"]) == (400, 1), account
        assert "'ad_account_id'" in response.json()["message"]


def test_auth_scope_and_method_as_on_the_insights_routes(named_server: RunningServer) -> None:
    for path in ("/v5/ad_accounts", "/v5/ad_accounts/1001"):
        no_token = named_server.get(path)
        assert (no_token.status_code, no_token.json()["code"]) == (401, 2)
        assert no_token.headers["www-authenticate"] == "Bearer"
        no_scope = named_server.get(path, mint("*", scopes=("pins:read",)))
        assert (no_scope.status_code, no_scope.json()["code"]) == (403, 3)
        post = named_server.client.post(path, headers={"Authorization": f"Bearer {mint('*')}"})
        assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
        head = named_server.client.head(path, headers={"Authorization": f"Bearer {mint('*')}"})
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0


def test_rate_limited_access_logged_and_counted_like_the_others(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_snapshot(store, DATE, {"1001": {}}, details={"1001": {"name": "Solo"}})
    server = start_server(store, rate_limit="2/min")  # a burst of 4
    try:
        token = mint("*", client_id="limited")
        paths = ["/v5/ad_accounts", "/v5/ad_accounts/1001", "/v5/ad_accounts?page_size=2"]
        paths += ["/v5/ad_accounts", "/v5/ad_accounts", "/v5/ad_accounts/1001"]
        answers = [server.get(path, token) for path in paths]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
        assert answers[-1].json()["code"] == 8 and int(answers[-1].headers["retry-after"]) >= 1
        assert answers[0].headers["x-ratelimit-limit"] == answers[1].headers["x-ratelimit-limit"]
        logged = [e for e in server.access_log() if e["path"].startswith("/v5/ad_accounts")]
        assert [(e["path"], e["status"], e["client_id"]) for e in logged] == [
            ("/v5/ad_accounts", 200, "limited"),
            ("/v5/ad_accounts/1001", 200, "limited"),
            ("/v5/ad_accounts", 200, "limited"),
            ("/v5/ad_accounts", 200, "limited"),
            ("/v5/ad_accounts", 429, "limited"),
            ("/v5/ad_accounts/1001", 429, "limited"),
        ]
        assert logged[2]["query"] == "page_size=2"
        metrics = server.client.get("/metrics").text
        for line in (
            'pinsights_http_requests_total{operation="ad_accounts_list",status="200"} 3.0',
            'pinsights_http_requests_total{operation="ad_accounts_list",status="429"} 1.0',
            'pinsights_http_requests_total{operation="ad_accounts_get",status="200"} 1.0',
            'pinsights_rate_limit_rejections_total{operation="ad_accounts_get"} 1.0',
        ):
            assert line in metrics, line
    finally:
        server.stop()


def test_a_snapshot_without_names_lists_bare_ids(server: RunningServer) -> None:
    """A snapshot written before names were carried still answers: ids only (the one required
    field of AdAccount)."""
    response = server.get("/v5/ad_accounts", mint("*"))
    assert response.json() == {
        "items": [{"id": "1001"}, {"id": "1002"}, {"id": "1003"}],
        "bookmark": None,
    }


def test_a_newer_snapshot_is_listed_at_once_and_paging_carries_on(tmp_path: Path) -> None:
    store = tmp_path / "store"
    accounts = {account: {} for account in ("1", "2", "3", "4")}
    write_snapshot(store, DATE, accounts, details={a: {"name": f"old {a}"} for a in accounts})
    server = start_server(store)
    try:
        token = mint("*")
        first = server.get("/v5/ad_accounts", token, params={"page_size": 2}).json()
        assert [i["name"] for i in first["items"]] == ["old 1", "old 2"]
        newer = {account: {} for account in ("1", "3", "5")}
        write_snapshot(
            store,
            DATE + dt.timedelta(days=1),
            newer,
            details={a: {"name": f"new {a}"} for a in newer},
        )
        rest = server.get(
            "/v5/ad_accounts", token, params={"page_size": 2, "bookmark": first["bookmark"]}
        ).json()
        assert rest == {
            "items": [{"id": "3", "name": "new 3"}, {"id": "5", "name": "new 5"}],
            "bookmark": None,
        }
    finally:
        server.stop()
