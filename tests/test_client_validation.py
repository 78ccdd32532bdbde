"""Arguments the contract can never accept are refused before any request is sent.

The transport here records every request; each test asserts it recorded none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from pinsights.client import (
    DEFAULT_BASE_URL,
    AsyncClient,
    Client,
    InvalidArgumentError,
)
from pinsights.contract import AudienceInsightType

sent: list[httpx.Request] = []


def _record(request: httpx.Request) -> httpx.Response:
    sent.append(request)
    return httpx.Response(200, json={"items": []})


@pytest.fixture
def client() -> Iterator[Client]:
    sent.clear()
    with Client(
        "token", base_url="http://127.0.0.1:9/v5", transport=httpx.MockTransport(_record)
    ) as c:
        yield c
    assert sent == [], "an invalid argument reached the network"


@pytest.mark.parametrize(
    "ad_account_id",
    ["", "abc", "12a", "-1", " 123", "123\n", "1" * 19, "١٢٣", None, 1.5, True, -5],
)
def test_an_ad_account_id_that_is_not_1_to_18_digits_is_refused(
    client: Client, ad_account_id: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="ad_account_id"):
        client.audience_insights_get(ad_account_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="ad_account_id"):
        client.audience_insights_scope_and_type_get(ad_account_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["", "your_total_audience", "TOTAL", "YOUR_TOTAL_AUDIENCE ", None])
def test_an_unknown_insight_type_is_refused_naming_the_valid_ones(
    client: Client, kind: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="YOUR_ENGAGED_AUDIENCE"):
        client.audience_insights_get("123", kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "date", ["2026-13-01", "2026-02-30", "20261101", "2026-1-1", "yesterday", 20261101]
)
def test_a_date_that_is_not_a_calendar_day_written_yyyy_mm_dd_is_refused(
    client: Client, date: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="date"):
        client.audience_insights_get("123", date=date)  # type: ignore[arg-type]


def test_a_datetime_is_refused_because_snapshots_are_whole_days(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="not a datetime"):
        client.audience_insights_get("123", date=dt.datetime(2026, 11, 1, 12))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scope", "type_", "category_id", "named"),
    [
        ("partner", "ENGAGEMENT", "1", "scope"),
        ("PARTNER", "IMPRESSION", "1", "type"),
        ("PARTNER", "ENGAGEMENT", "x1", "category_id"),
        ("PARTNER", "ENGAGEMENT", "9" * 19, "category_id"),
    ],
)
def test_the_deprecated_category_list_refuses_bad_path_parameters(
    client: Client, scope: str, type_: str, category_id: str, named: str
) -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidArgumentError, match=named):
        client.audiences_insights_category_list("123", scope, type_, category_id)


def test_valid_arguments_are_sent_as_the_contract_spells_them() -> None:
    sent.clear()
    with Client("token", base_url="http://h/v5", transport=httpx.MockTransport(_record)) as client:
        client.audience_insights_scope_and_type_get(42)
        client.audience_insights_get(
            "42", AudienceInsightType.YOUR_ENGAGED_AUDIENCE, date=dt.date(2026, 11, 1)
        )
    assert [str(r.url) for r in sent] == [
        "http://h/v5/ad_accounts/42/insights/audiences",
        "http://h/v5/ad_accounts/42/audience_insights?audience_insight_type=YOUR_ENGAGED_AUDIENCE&date=2026-11-01",
    ]
    assert sent[0].headers["Authorization"] == "Bearer token"


def test_the_async_client_validates_the_same_way() -> None:
    async def main() -> None:
        async with AsyncClient("token", base_url="http://h/v5") as client:
            with pytest.raises(InvalidArgumentError):
                await client.audience_insights_get("not-digits")

    import anyio

    anyio.run(main)


# --- configuration ------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PINSIGHTS_BASE_URL", raising=False)
    monkeypatch.delenv("PINTEREST_ACCESS_TOKEN", raising=False)
    return monkeypatch


def test_the_base_url_defaults_to_pinterest(clean_env: pytest.MonkeyPatch) -> None:
    with Client("t") as client:
        assert client.base_url == DEFAULT_BASE_URL == "https://api.pinterest.com/v5"


def test_the_base_url_comes_from_the_environment_unless_given(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PINSIGHTS_BASE_URL", "http://127.0.0.1:8000/v5/")
    with Client("t") as client:
        assert client.base_url == "http://127.0.0.1:8000/v5"
    with Client("t", base_url="http://other:9000/v5") as client:
        assert client.base_url == "http://other:9000/v5"


def test_a_server_root_as_base_url_means_its_v5_api(clean_env: pytest.MonkeyPatch) -> None:
    with Client("t", base_url="http://127.0.0.1:8000") as client:
        assert client.base_url == "http://127.0.0.1:8000/v5"


@pytest.mark.parametrize("base_url", ["ftp://host/v5", "127.0.0.1:8000", "http:///v5"])
def test_a_base_url_that_is_not_http_is_refused(
    clean_env: pytest.MonkeyPatch, base_url: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="base_url"):
        Client("t", base_url=base_url)


def test_the_token_comes_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    sent.clear()
    clean_env.setenv("PINTEREST_ACCESS_TOKEN", "from-env")
    with Client(base_url="http://h/v5", transport=httpx.MockTransport(_record)) as client:
        client.audience_insights_scope_and_type_get("1")
    assert sent[0].headers["Authorization"] == "Bearer from-env"


def test_without_any_credentials_the_client_says_how_to_give_one(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(InvalidArgumentError, match="PINTEREST_ACCESS_TOKEN"):
        Client()


def test_a_token_and_an_auth_flow_together_are_ambiguous(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError, match="either"):
        Client("t", auth=httpx.BasicAuth("a", "b"))


def test_the_repr_of_a_client_shows_where_it_points_not_its_token(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with Client("super-secret-token", base_url="http://h/v5") as client:
        assert repr(client) == "Client(base_url='http://h/v5')"
        assert "super-secret-token" not in repr(client._auth)
