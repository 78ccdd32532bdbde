"""Compatibility: Pinterest's own generated Python client (PyPI Pinterest-Generated-Client 0.1.10,
module ``openapi_generated.pinterest_client``) reads every document of an engine-built store from a
pinsights server, only its base URL changed, and gets exactly what the store holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_generated.pinterest_client import ApiClient, Configuration
from openapi_generated.pinterest_client.api.audience_insights_api import AudienceInsightsApi
from openapi_generated.pinterest_client.exceptions import ApiException
from openapi_generated.pinterest_client.model.audience_insight_category_array_response import (
    AudienceInsightCategoryArrayResponse,
)
from openapi_generated.pinterest_client.model.audience_insight_type import AudienceInsightType

from pinsights.contract import DEFINITION_OF_INSIGHT_TYPE
from pinsights.store import Snapshot, Store
from tests.conftest import INSIGHT_TYPES, BuiltPlatform, RunningServer, mint

# the generated client calls urllib3 APIs that urllib3 2 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:HTTPResponse.getheader:DeprecationWarning")
CATEGORY_PATH = "/ad_accounts/{ad_account_id}/insights/audiences/{scope}/{type}/{category_id}"


@pytest.fixture(scope="module")
def pinterest(built_server: RunningServer) -> Iterator[AudienceInsightsApi]:
    configuration = Configuration(host=built_server.base_url + "/v5", access_token=mint("*"))
    with ApiClient(configuration) as api_client:
        yield AudienceInsightsApi(api_client)


@pytest.fixture(scope="module")
def snapshot(built_platform: BuiltPlatform) -> Snapshot:
    newest = Store(built_platform.store).latest()
    assert newest is not None
    return newest


def plain(model: Any) -> Any:
    """A generated model as plain JSON data (enums as their values)."""
    return json.loads(json.dumps(model.to_dict(), default=lambda value: value.value))


def test_every_insights_document_reads_the_same_through_the_pinterest_client(
    pinterest: AudienceInsightsApi, snapshot: Snapshot, built_platform: BuiltPlatform
) -> None:
    read = 0
    for account in built_platform.ad_account_ids:
        for insight_type in INSIGHT_TYPES:
            response = pinterest.audience_insights_get(account, AudienceInsightType(insight_type))
            stored = snapshot.document(account, insight_type)
            assert stored is not None
            assert plain(response) == json.loads(stored)
            read += 1
    assert read == 3 * len(built_platform.ad_account_ids)


def test_every_definition_list_reads_the_same_through_the_pinterest_client(
    pinterest: AudienceInsightsApi, snapshot: Snapshot, built_platform: BuiltPlatform
) -> None:
    for account in built_platform.ad_account_ids:
        response = plain(pinterest.audience_insights_scope_and_type_get(account))
        qualifying = set(snapshot.qualifying_audiences(account))
        expected = [
            {"date": snapshot.date.isoformat(), "scope": scope.value, "type": kind.value}
            for insight_type, (scope, kind) in DEFINITION_OF_INSIGHT_TYPE.items()
            if insight_type.value in qualifying
        ]
        assert response == {"items": expected}


def test_deprecated_category_operation_reads_the_same_through_the_pinterest_client(
    pinterest: AudienceInsightsApi, snapshot: Snapshot, built_platform: BuiltPlatform
) -> None:
    """0.1.10 no longer wraps the deprecated operation, but ships its model: call it generically."""
    account = built_platform.ad_account_ids[0]
    compared = 0
    for insight_type, (scope, kind) in DEFINITION_OF_INSIGHT_TYPE.items():
        document = json.loads(snapshot.document(account, insight_type.value) or b"{}")
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
            stored = snapshot.category_items(account, insight_type.value, category["id"])
            assert plain(response) == json.loads(stored or b"null")
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
