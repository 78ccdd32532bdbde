"""Compatibility: Pinterest's own generated Python client (PyPI Pinterest-Generated-Client 0.1.10,
module ``openapi_generated.pinterest_client``) reads every document of an engine-built store from a
pinsights server, only its base URL changed, and gets exactly what the independent reference
(tests/reference.py) computes from the platform's dataset; and it lists
and gets the ad accounts its token can read, page by page, with their names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_generated.pinterest_client import ApiClient, Configuration
from openapi_generated.pinterest_client.api.ad_accounts_api import AdAccountsApi
from openapi_generated.pinterest_client.api.audience_insights_api import AudienceInsightsApi
from openapi_generated.pinterest_client.exceptions import ApiException
from openapi_generated.pinterest_client.model.audience_insight_category_array_response import (
    AudienceInsightCategoryArrayResponse,
)
from openapi_generated.pinterest_client.model.audience_insight_type import AudienceInsightType

from pinsights.contract import DEFINITION_OF_INSIGHT_TYPE
from pinsights.store import Store
from pinsights.store.snapshot import AccountRecord
from tests.conftest import (
    INSIGHT_TYPES,
    NEW_DATE,
    BuiltPlatform,
    RunningServer,
    bearer,
    mint,
    start_server,
    write_snapshot,
)
from tests.reference import Reference, read_dataset, reference_build

# the generated client calls urllib3 APIs that urllib3 2 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:HTTPResponse.getheader:DeprecationWarning")
CATEGORY_PATH = "/ad_accounts/{ad_account_id}/insights/audiences/{scope}/{type}/{category_id}"


@pytest.fixture(scope="module")
def pinterest(built_server: RunningServer) -> Iterator[AudienceInsightsApi]:
    configuration = Configuration(host=built_server.base_url + "/v5", access_token=mint("*"))
    with ApiClient(configuration) as api_client:
        yield AudienceInsightsApi(api_client)


@pytest.fixture(scope="module")
def references(built_platform: BuiltPlatform) -> list[Reference]:
    """What the build must serve for each of its dates (newest first), computed from the dataset
    by the reference, not read back from the store with the code the server runs."""
    data = read_dataset(built_platform.data)
    expected = [
        reference_build(data.tables, malformed=data.malformed, date=date)
        for date in built_platform.dates
    ]
    assert [reference.date for reference in expected] == built_platform.dates
    return expected


@pytest.fixture(scope="module")
def reference(references: list[Reference]) -> Reference:
    """The newest date's: what the server serves without a date."""
    return references[0]


def plain(model: Any) -> Any:
    """A generated model as plain JSON data (enums as their values)."""
    return json.loads(json.dumps(model.to_dict(), default=lambda value: value.value))


def test_every_insights_document_reads_the_same_through_the_pinterest_client(
    pinterest: AudienceInsightsApi, reference: Reference, built_platform: BuiltPlatform
) -> None:
    read = 0
    for account in built_platform.ad_account_ids:
        for insight_type in INSIGHT_TYPES:
            response = pinterest.audience_insights_get(account, AudienceInsightType(insight_type))
            assert plain(response) == reference.documents[(account, insight_type)]
            read += 1
    assert read == 3 * len(built_platform.ad_account_ids)
    assert any(not d["size_is_upper_bound"] for d in reference.documents.values())


def test_every_definition_list_reads_the_same_through_the_pinterest_client(
    pinterest: AudienceInsightsApi, references: list[Reference], built_platform: BuiltPlatform
) -> None:
    """Every qualifying audience of every retained date, newest date first."""
    listed = 0
    for account in built_platform.ad_account_ids:
        response = plain(pinterest.audience_insights_scope_and_type_get(account))
        expected = []
        for reference in references:
            assert reference.date is not None
            for insight_type, (scope, kind) in DEFINITION_OF_INSIGHT_TYPE.items():
                owner = "" if insight_type.value == "PINTEREST_TOTAL_AUDIENCE" else account
                if reference.audience_sizes[(owner, insight_type.value)] >= 100:
                    when = reference.date.isoformat()
                    expected.append({"date": when, "scope": scope.value, "type": kind.value})
        assert response == {"items": expected}
        listed += len(expected)
    assert listed >= len(built_platform.ad_account_ids), "every account lists P at least"


def test_deprecated_category_operation_reads_the_same_through_the_pinterest_client(
    pinterest: AudienceInsightsApi, reference: Reference, built_platform: BuiltPlatform
) -> None:
    """0.1.10 no longer wraps the deprecated operation, but ships its model: call it generically."""
    account = built_platform.ad_account_ids[0]
    compared = 0
    for insight_type, (scope, kind) in DEFINITION_OF_INSIGHT_TYPE.items():
        document = reference.documents[(account, insight_type.value)]
        for category in document["categories"]:
            response = pinterest.api_client.call_api(
                CATEGORY_PATH,
                "GET",
                path_params={
                    "ad_account_id": account,
                    "scope": scope.value,
                    "type": kind.value,
                    "category_id": category["id"],
                },
                query_params=[("sort", "RATIO")],
                header_params={"Accept": "application/json"},
                response_type=(AudienceInsightCategoryArrayResponse,),
                auth_settings=["pinterest_oauth2"],
                _return_http_data_only=True,
                _check_type=True,
            )
            expected = reference.category_items[(account, insight_type.value, category["id"])]
            assert plain(response) == expected
            compared += 1
    assert compared > 0


def test_pinterest_client_sees_errors_in_the_v5_shape(built_server: RunningServer) -> None:
    configuration = Configuration(host=built_server.base_url + "/v5", access_token=mint(["1"]))
    with ApiClient(configuration) as api_client, pytest.raises(ApiException) as raised:
        AudienceInsightsApi(api_client).audience_insights_get(
            "2", AudienceInsightType("YOUR_TOTAL_AUDIENCE")
        )
    assert raised.value.status == 403
    assert json.loads(raised.value.body) == {
        "code": 29,
        "message": "Not authorized to access this ad account.",
    }


def every_account_through_the_pinterest_client(
    server: RunningServer, token: str, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """``ad_accounts_list`` page after page (the bookmark of each asks for the next), then
    ``ad_accounts_get`` of each account listed; returns the accounts and the number of pages."""
    configuration = Configuration(host=server.base_url + "/v5", access_token=token)
    with ApiClient(configuration) as api_client:
        api = AdAccountsApi(api_client)
        listed: list[dict[str, Any]] = []
        pages, bookmark = 0, None
        while True:
            arguments = {"page_size": page_size} | ({"bookmark": bookmark} if bookmark else {})
            page = plain_dict(api.ad_accounts_list(**arguments))
            pages += 1
            assert len(page["items"]) <= page_size
            listed += page["items"]
            bookmark = page.get("bookmark")
            if not bookmark:
                break
        for account in listed:
            assert plain(api.ad_accounts_get(account["id"])) == account
    return listed, pages


def plain_dict(answer: Any) -> Any:
    """The list operation answers an untyped dict (its schema is inline): as plain JSON data."""
    return json.loads(json.dumps(answer, default=lambda value: value.to_dict()))


def as_served(record: AccountRecord) -> dict[str, str]:
    fields = {"name": record.name, "country": record.country, "currency": record.currency}
    return {"id": record.ad_account_id} | {k: v for k, v in fields.items() if v is not None}


@pytest.fixture(scope="module")
def named_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A hand-made snapshot of 23 accounts with names, countries and currencies."""
    store = tmp_path_factory.mktemp("named") / "store"
    accounts = [str(549755813000 + 7 * n) for n in range(23)]
    details = {
        account: {"name": f"Shop {n} — Ünïcode", "country": "GB", "currency": "GBP"}
        for n, account in enumerate(accounts)
    }
    write_snapshot(store, NEW_DATE, {account: {} for account in accounts}, details=details)
    running = start_server(store)
    yield running
    running.stop()


@pytest.mark.parametrize("page_size", [4, 25])
def test_pinterest_client_pages_through_every_account_with_its_name(
    named_platform: RunningServer, page_size: int
) -> None:
    newest = Store(named_platform.store).latest()
    assert newest is not None
    expected = sorted((as_served(r) for r in newest.accounts()), key=lambda a: int(a["id"]))
    listed, pages = every_account_through_the_pinterest_client(named_platform, mint("*"), page_size)
    assert listed == expected
    assert pages == -(-len(expected) // page_size)
    assert all(account["name"].startswith("Shop ") for account in listed)

    three = [expected[1]["id"], expected[10]["id"], expected[22]["id"]]
    listed, pages = every_account_through_the_pinterest_client(named_platform, mint(three), 2)
    assert [account["id"] for account in listed] == three and pages == 2
    assert listed == [expected[1], expected[10], expected[22]]


def test_pinterest_client_gets_403_29_for_an_account_outside_its_token(
    named_platform: RunningServer,
) -> None:
    configuration = Configuration(host=named_platform.base_url + "/v5", access_token=mint(["1"]))
    with ApiClient(configuration) as api_client, pytest.raises(ApiException) as raised:
        AdAccountsApi(api_client).ad_accounts_get("549755813000")
    assert raised.value.status == 403
    assert json.loads(raised.value.body)["code"] == 29


def test_pinterest_client_reads_every_name_of_an_engine_built_platform(
    built_server: RunningServer, built_platform: BuiltPlatform
) -> None:
    """The names are the input's: the build carries the ad_accounts table's names into the
    snapshot, and the list and get serve them (with a '*' token and a token for three)."""
    import pyarrow.parquet as pq

    table = pq.read_table(built_platform.data / "ad_accounts.parquet").to_pylist()
    named = sorted(
        ({"id": str(row["ad_account_id"]), "name": row["name"]} for row in table),
        key=lambda account: int(account["id"]),
    )
    listed, pages = every_account_through_the_pinterest_client(built_server, mint("*"), 2)
    assert listed == named and pages == 3
    three = [named[0]["id"], named[2]["id"], named[4]["id"]]
    listed, _ = every_account_through_the_pinterest_client(built_server, mint(three), 1)
    assert listed == [named[0], named[2], named[4]]


def test_pinterest_client_reads_countries_and_currencies_from_the_input(tmp_path: Path) -> None:
    """An engine-built platform whose ad_accounts CSV has the optional country and currency
    columns: list and get serve each account's (upper case) where the input gives one, and leave
    the field out where it does not; a bad value quarantined the account, so it is not listed."""
    from tests.datasets import account, accounts_platform, run_engine
    from tests.datasets import write_dataset as write_platform

    accounts = [
        account("100", "Maple", country="ca", currency="CAD"),
        account("200", "Thistle", country="GB", currency=None),
        account("300", "Fjord", country=None, currency="nok"),
        account("400", "Plain", country=None, currency=None),
        account("500", "Wrong", country="UK", currency="GBP"),
    ]
    write_platform(accounts_platform(accounts), tmp_path / "data", "csv")
    data = read_dataset(tmp_path / "data")
    expected = reference_build(data.tables, malformed=data.malformed)
    outcome = run_engine(
        tmp_path / "data",
        tmp_path / "store",
        accounts=["100"],
        categories=["1"],
        min_audience_size=1,
    )
    assert outcome.error is None
    served = [
        {"id": a}
        | {k: v for k, v in zip(("name", "country", "currency"), d, strict=True) if v is not None}
        for a, d in sorted(expected.ad_account_details.items(), key=lambda item: int(item[0]))
    ]
    assert served == [
        {"id": "100", "name": "Maple", "country": "CA", "currency": "CAD"},
        {"id": "200", "name": "Thistle", "country": "GB"},
        {"id": "300", "name": "Fjord", "currency": "NOK"},
        {"id": "400", "name": "Plain"},
    ]
    running = start_server(tmp_path / "store")
    try:
        listed, pages = every_account_through_the_pinterest_client(running, mint("*"), 3)
        assert listed == served and pages == 2
        listed, _ = every_account_through_the_pinterest_client(running, mint(["300", "500"]), 1)
        assert listed == [served[2]]
        # the wire bytes too: a field the input has no value for is absent, not null
        for account_id, document in zip(("100", "200", "300", "400"), served, strict=True):
            answer = httpx.get(
                f"{running.base_url}/v5/ad_accounts/{account_id}", headers=bearer(mint("*"))
            )
            assert answer.status_code == 200 and answer.json() == document
    finally:
        running.stop()
