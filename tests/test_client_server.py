"""The client against a real pinsights server on loopback (``pinsights serve`` in a subprocess).

Two stores: the hand-made one of ``conftest.py`` (known accounts, dates and sizes, for the error
cases), and the shared platform generated and built by the engine (realistic documents, for agreement
between the sync client, the async client and the raw wire, the CLI and the README example).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import (
    AUDIENCES_NEW,
    NEW_DATE,
    BuiltPlatform,
    RunningServer,
    mint,
    write_snapshot,
)
from pydantic import BaseModel
from test_client_fakes import FLAVOURS, call, record_sleeps
from test_client_readme import run_example
from typer.testing import CliRunner

from pinsights.cli import app
from pinsights.client import (
    AsyncClient,
    BadRequestError,
    Client,
    ClientCredentialsAuth,
    ForbiddenError,
    NotFoundError,
    PinsightsAPIError,
    RateLimitedError,
    UnauthorizedError,
    compare,
)
from pinsights.client._base import _Call
from pinsights.contract import (
    DEFINITION_OF_INSIGHT_TYPE,
    AudienceInsightsResponse,
    AudienceInsightType,
)

INSIGHT_TYPES = [kind.value for kind in AudienceInsightType]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- a small platform built by the engine ---------------------------------------------------------


@dataclass
class Platform:
    server: RunningServer
    accounts: list[str]
    token: str

    @property
    def base_url(self) -> str:
        return f"{self.server.base_url}/v5"


@pytest.fixture(scope="module")
def platform(built_platform: BuiltPlatform, built_server: RunningServer) -> Platform:
    """The shared platform (conftest: 3,000 users, 5 advertisers, two snapshot dates), served;
    its four largest advertisers."""
    return Platform(built_server, built_platform.ad_account_ids[:4], mint("*"))


def every_call(platform: Platform) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Every operation the platform can answer: each account's definitions, each audience on each
    retained date, and each category of each audience through the deprecated listing."""
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    with Client(platform.token, base_url=platform.base_url) as client:
        for account in platform.accounts:
            calls.append(("audience_insights_scope_and_type_get", (account,), {}))
            dates = {
                d.date for d in client.audience_insights_scope_and_type_get(account).items or []
            }
            for kind in INSIGHT_TYPES:
                for date in sorted(dates):
                    calls.append(("audience_insights_get", (account, kind), {"date": date}))
                newest = client.audience_insights_get(account, kind)
                scope, type_ = DEFINITION_OF_INSIGHT_TYPE[AudienceInsightType(kind)]
                for category in newest.categories or []:
                    args = (account, scope.value, type_.value, category.id)
                    calls.append(("audiences_insights_category_list", args, {}))
    return calls


def test_sync_async_and_the_wire_agree_on_every_document(platform: Platform) -> None:
    calls = every_call(platform)
    assert len(calls) > 50  # the platform is not trivially small

    with pytest.warns(DeprecationWarning), Client(platform.token, base_url=platform.base_url) as c:
        synced = [getattr(c, method)(*args, **kwargs) for method, args, kwargs in calls]

    async def run_all() -> list[BaseModel | None]:
        results: list[BaseModel | None] = [None] * len(calls)
        async with AsyncClient(platform.token, base_url=platform.base_url) as client:

            async def one(
                i: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
            ) -> None:
                results[i] = await getattr(client, method)(*args, **kwargs)

            async with anyio.create_task_group() as tg:
                for i, (method, args, kwargs) in enumerate(calls):
                    tg.start_soon(one, i, method, args, kwargs)
        return results

    with pytest.warns(DeprecationWarning):
        awaited = anyio.run(run_all)

    for (method, args, kwargs), sync_doc, async_doc in zip(calls, synced, awaited, strict=True):
        assert async_doc is not None
        assert sync_doc.model_dump() == async_doc.model_dump(), (method, args, kwargs)
    # …and both are exactly what the server sent, byte for byte once parsed as JSON.
    with httpx.Client(
        base_url=platform.base_url, headers={"Authorization": f"Bearer {platform.token}"}
    ) as raw:
        for (method, args, kwargs), sync_doc in zip(calls, synced, strict=True):
            path, params = wire_request(method, args, kwargs)
            assert (
                sync_doc.model_dump(mode="json", exclude_unset=True)
                == raw.get(path, params=params).json()
            )


def wire_request(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    account = args[0]
    if method == "audience_insights_scope_and_type_get":
        return f"/ad_accounts/{account}/insights/audiences", {}
    if method == "audience_insights_get":
        return f"/ad_accounts/{account}/audience_insights", {
            "audience_insight_type": args[1],
            "date": kwargs["date"],
        }
    _, scope, type_, category = args
    return f"/ad_accounts/{account}/insights/audiences/{scope}/{type_}/{category}", {
        "sort": "RATIO"
    }


def test_compare_of_engaged_and_platform_audiences_reproduces_the_served_index(
    platform: Platform,
) -> None:
    pytest.importorskip("pandas")
    with Client(platform.token, base_url=platform.base_url) as client:
        engaged = client.audience_insights_get(platform.accounts[0], "YOUR_ENGAGED_AUDIENCE")
        everyone = client.audience_insights_get(platform.accounts[0], "PINTEREST_TOTAL_AUDIENCE")

    frame = compare(engaged, everyone)
    categories = frame[frame["dimension"] == "categories"].dropna(
        subset=["ratio_your_engaged_audience"]
    )

    assert len(categories) > 3
    assert (categories["index_pinterest_total_audience"] == 1.0).all()
    # lift = engaged ratio / platform ratio is the index the server computed (up to rounding)
    for lift, index in zip(
        categories["ratio_lift"], categories["index_your_engaged_audience"], strict=True
    ):
        assert lift == pytest.approx(index, rel=0.01)


def test_the_cli_prints_readable_tables_from_a_real_server(platform: Platform) -> None:
    account = platform.accounts[0]
    options = ["--base-url", platform.base_url, "--token", platform.token]

    result = CliRunner().invoke(app, ["insights", account, "-t", "your_engaged_audience", *options])

    assert result.exit_code == 0, result.output
    for title in (
        "Categories",
        "Subcategories",
        "Ages",
        "Genders",
        "Countries",
        "Metros",
        "Devices",
    ):
        assert title in result.stdout
    assert f"Your engaged audience of ad account {account}" in result.stdout
    assert "people" in result.stdout and "x █" in result.stdout


def test_the_cli_json_is_the_wire_document_of_a_real_server(platform: Platform) -> None:
    account = platform.accounts[1]
    options = ["--base-url", platform.base_url, "--token", platform.token]

    insights = CliRunner().invoke(app, ["insights", account, "--json", *options])
    definitions = CliRunner().invoke(app, ["definitions", account, "--json", *options])

    auth = {"Authorization": f"Bearer {platform.token}"}
    wire = platform.server.client.get(
        f"/v5/ad_accounts/{account}/audience_insights",
        params={"audience_insight_type": "YOUR_TOTAL_AUDIENCE"},
        headers=auth,
    )
    assert json.loads(insights.stdout) == wire.json()
    wire = platform.server.client.get(f"/v5/ad_accounts/{account}/insights/audiences", headers=auth)
    assert json.loads(definitions.stdout) == wire.json()


def test_the_readme_example_runs_against_a_real_server(platform: Platform) -> None:
    result = run_example(platform.base_url, platform.token, platform.accounts[0])

    assert result.returncode == 0, result.stderr
    assert f"engaged with account {platform.accounts[0]}" in result.stdout
    assert "ratio_pinterest_total_audience" in result.stdout


# --- errors from a real server (the hand-made store of conftest.py) -------------------------------


def get(flavour: str, server: RunningServer, token: str, *args: Any, **kwargs: Any) -> Any:
    options = {"access_token": token, "base_url": server.base_url, "max_retries": 0}
    return call(flavour, "audience_insights_get", *args, client_options=options, **kwargs)


def raised(action: Callable[[], object]) -> PinsightsAPIError:
    with pytest.raises(PinsightsAPIError) as info:
        action()
    return info.value


def test_a_missing_parameter_is_a_bad_request_naming_it(server: RunningServer) -> None:
    # The client never sends this request (it validates first), so build it by hand.
    missing_type = _Call("/ad_accounts/1001/audience_insights", {}, AudienceInsightsResponse)
    with Client(mint("*"), base_url=server.base_url) as client:
        error = raised(lambda: client._request(missing_type))

    assert type(error) is BadRequestError
    assert error.code == 1 and "audience_insight_type" in error.message


def test_a_bad_token_is_unauthorized(flavour: str, server: RunningServer) -> None:
    error = raised(lambda: get(flavour, server, "not-a-token", "1001"))

    assert type(error) is UnauthorizedError and (error.status, error.code) == (401, 2)
    assert "not-a-token" not in str(error)


def test_a_token_without_ads_read_is_forbidden_with_code_3(
    flavour: str, server: RunningServer
) -> None:
    error = raised(lambda: get(flavour, server, mint("*", scopes=("pins:read",)), "1001"))

    assert type(error) is ForbiddenError and (error.status, error.code) == (403, 3)


@pytest.mark.parametrize("account", ["1002", "999999"])
def test_an_account_the_token_does_not_cover_is_forbidden_with_code_29(
    flavour: str, server: RunningServer, account: str
) -> None:
    error = raised(lambda: get(flavour, server, mint(["1001"]), account))

    assert type(error) is ForbiddenError and (error.status, error.code) == (403, 29)


def test_a_date_without_a_snapshot_is_not_found(flavour: str, server: RunningServer) -> None:
    error = raised(lambda: get(flavour, server, mint("*"), "1001", date="2020-01-01"))

    assert type(error) is NotFoundError and (error.status, error.code) == (404, 404)


def test_the_newest_and_an_older_snapshot_are_both_readable(
    flavour: str, server: RunningServer
) -> None:
    newest = get(flavour, server, mint("*"), "1001")
    older = get(flavour, server, mint("*"), "1001", date="2026-10-30")

    assert (newest.date, newest.size) == (
        NEW_DATE.isoformat(),
        AUDIENCES_NEW["1001"]["YOUR_TOTAL_AUDIENCE"],
    )
    assert (older.date, older.size) == ("2026-10-30", 900)


def test_pinterest_engagement_is_not_offered_by_the_category_listing(server: RunningServer) -> None:
    with Client(mint("*"), base_url=server.base_url) as client, pytest.warns(DeprecationWarning):
        error = raised(
            lambda: client.audiences_insights_category_list("1001", "PINTEREST", "ENGAGEMENT", "10")
        )

    assert type(error) is NotFoundError


def test_an_exhausted_rate_limit_is_rate_limited_with_the_servers_retry_after(
    flavour: str,
    handmade_store: Path,
    server_factory: Callable[..., RunningServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limited = server_factory(handmade_store, rate_limit="1/min")  # a burst of 2, then 1 a minute
    options = {"access_token": mint("*"), "base_url": limited.base_url, "max_retry_after": 5}
    for _ in range(2):
        call(flavour, "audience_insights_scope_and_type_get", "1001", client_options=options)
    waits = record_sleeps(monkeypatch)

    with pytest.raises(RateLimitedError) as info:
        call(flavour, "audience_insights_scope_and_type_get", "1001", client_options=options)

    assert (info.value.status, info.value.code) == (429, 8)
    assert info.value.retry_after is not None and info.value.retry_after > 5
    assert waits == [], "a wait past max_retry_after is not slept"


def test_a_real_servers_rate_limit_is_waited_out(
    handmade_store: Path, server_factory: Callable[..., RunningServer]
) -> None:
    limited = server_factory(handmade_store, rate_limit="2/s")  # a burst of 4, then 2 a second
    started = time.monotonic()
    with Client(mint("*"), base_url=limited.base_url) as client:
        sizes = [client.audience_insights_get("1001").size for _ in range(7)]

    assert sizes == [AUDIENCES_NEW["1001"]["YOUR_TOTAL_AUDIENCE"]] * 7
    assert time.monotonic() - started >= 1.0  # at least one Retry-After was honoured
    statuses = [entry.get("status") for entry in limited.access_log()]
    assert 429 in statuses


def test_client_credentials_work_against_a_real_server(
    tmp_path: Path, server_factory: Callable[..., RunningServer]
) -> None:
    from pinsights.server.clients import ClientRegistry

    store = tmp_path / "store"
    write_snapshot(store, NEW_DATE, {"1001": {"YOUR_TOTAL_AUDIENCE": 1000}})
    registered, secret = ClientRegistry(store).add("analyst", ["1001"])
    running = server_factory(store)

    auth = ClientCredentialsAuth(registered.client_id, secret)
    with Client(auth=auth, base_url=running.base_url) as client:
        assert client.audience_insights_get("1001").size == 1000
        assert client.audience_insights_get("1001").size == 1000
        with pytest.raises(ForbiddenError):
            client.audience_insights_get("1002")

    wrong = ClientCredentialsAuth(registered.client_id, "not-the-secret")
    with (
        Client(auth=wrong, base_url=running.base_url) as client,
        pytest.raises(UnauthorizedError) as info,
    ):
        client.audience_insights_get("1001")
    assert info.value.path == "/v5/oauth/token"
    assert secret not in running.log_path.read_text()
