"""The client's ad accounts (``Client.ad_accounts()``, ``ad_accounts_list``, ``ad_account``), sync and
async, against a real server: every page followed, the names of the snapshot, the v5 errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from pinsights.cli import app
from pinsights.client import (
    AsyncClient,
    Client,
    ForbiddenError,
    InvalidArgumentError,
    PinsightsDecodeError,
)
from pinsights.contract import AdAccount
from tests.conftest import RunningServer, mint, start_server, write_snapshot

ACCOUNTS = [str(n) for n in range(100, 131)]  # 31: pages of 250, 7 and 1 end at different places
DETAILS = {a: {"name": f"Brand {a}", "country": "FR", "currency": "EUR"} for a in ACCOUNTS}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("accounts") / "store"
    write_snapshot(
        store, dt.date(2026, 11, 5), {account: {} for account in ACCOUNTS}, details=DETAILS
    )
    running = start_server(store)
    yield running
    running.stop()


def every_account(
    server: RunningServer, flavour: str, token: str, **options: Any
) -> list[AdAccount]:
    base_url = server.base_url + "/v5"
    if flavour == "sync":
        with Client(token, base_url=base_url) as client:
            return list(client.ad_accounts(**options))

    async def collect() -> list[AdAccount]:
        async with AsyncClient(token, base_url=base_url) as client:
            return [account async for account in client.ad_accounts(**options)]

    return anyio.run(collect)


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("page_size", [1, 7, 250])
def test_ad_accounts_follows_every_page(
    server: RunningServer, flavour: str, page_size: int
) -> None:
    accounts = every_account(server, flavour, mint("*"), page_size=page_size)
    assert [a.model_dump(exclude_none=True) for a in accounts] == [
        {"id": a, **DETAILS[a]} for a in ACCOUNTS
    ]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_ad_accounts_of_a_token_for_some(server: RunningServer, flavour: str) -> None:
    accounts = every_account(server, flavour, mint(["130", "101", "5"]), page_size=1)
    assert [(a.id, a.name) for a in accounts] == [("101", "Brand 101"), ("130", "Brand 130")]


def test_one_page_and_one_account(server: RunningServer) -> None:
    with Client(mint("*"), base_url=server.base_url) as client:
        page = client.ad_accounts_list(page_size=2, include_shared_accounts=False)
        assert [a.id for a in page.items] == ["100", "101"] and page.bookmark
        following = client.ad_accounts_list(bookmark=page.bookmark, page_size=2)
        assert [a.id for a in following.items] == ["102", "103"]
        assert client.ad_account(117) == AdAccount(
            id="117", name="Brand 117", country="FR", currency="EUR"
        )
    with Client(mint(["100"]), base_url=server.base_url) as client, pytest.raises(ForbiddenError):
        client.ad_account("117")


def test_bad_arguments_are_refused_before_any_request(server: RunningServer) -> None:
    with Client(mint("*"), base_url=server.base_url) as client:
        for page_size in (0, 251, True, "5"):
            with pytest.raises(InvalidArgumentError, match="page_size"):
                client.ad_accounts_list(page_size=page_size)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="ad_account_id"):
            client.ad_account("12a")


def test_a_server_repeating_a_bookmark_does_not_page_forever() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": "1"}], "bookmark": "again"})

    client = Client("t", base_url="http://test/v5", transport=httpx.MockTransport(answer))
    with client, pytest.raises(PinsightsDecodeError, match="same bookmark twice"):
        list(client.ad_accounts())


def test_the_cli_lists_every_account_as_a_table_and_as_json(server: RunningServer) -> None:
    options = ["--base-url", server.base_url, "--token", mint(["129", "102", "130", "7"])]
    table = CliRunner().invoke(app, ["accounts", *options])
    assert table.exit_code == 0, table.output
    assert "Ad accounts (3)" in table.stdout
    lines = [line.replace("│", " ") for line in table.stdout.splitlines()]
    rows = [line.split() for line in lines if line.strip()[:3].isdigit()]
    assert rows == [
        ["102", "Brand", "102", "FR", "EUR"],
        ["129", "Brand", "129", "FR", "EUR"],
        ["130", "Brand", "130", "FR", "EUR"],
    ]
    as_json = CliRunner().invoke(app, ["accounts", "--json", *options])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [{"id": a, **DETAILS[a]} for a in ("102", "129", "130")]
    # every page: 31 accounts with a '*' token (the client asks for 250 a page)
    every = CliRunner().invoke(
        app, ["accounts", "--json", "--base-url", server.base_url, "--token", mint("*")]
    )
    assert [a["id"] for a in json.loads(every.stdout)] == ACCOUNTS


def test_the_cli_names_the_problem_of_a_token_without_ads_read(server: RunningServer) -> None:
    token = mint("*", scopes=("pins:read",))
    result = CliRunner().invoke(app, ["accounts", "--base-url", server.base_url, "--token", token])
    assert result.exit_code == 1
    assert "forbidden" in result.output and "ads:read" in result.output


def test_the_demo_prints_the_names_the_newest_snapshot_gives(
    tmp_path: Any, server: RunningServer
) -> None:
    from pinsights.cli.server_commands import account_names

    assert account_names(server.store) == {a: DETAILS[a]["name"] for a in ACCOUNTS}
    assert account_names(tmp_path / "no-store") == {}
