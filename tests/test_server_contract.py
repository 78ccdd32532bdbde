"""Conformance to the wire contract: schemathesis over the contract against a live server, and the
server's own OpenAPI document and parameter rules compared with the contract.

``tests/fixtures/`` holds copies of the two files of ``shared/contract/`` (checked equal when shared/
is beside the repository), so the suite runs without it; the contract is both as one document.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pinsights.contract import (
    AD_ACCOUNT_ID_MAX_LENGTH,
    AD_ACCOUNT_ID_PATTERN,
    AudienceCategorySort,
    AudienceDefinitionScope,
    AudienceDefinitionType,
    AudienceInsightType,
)
from pinsights.server.accounts import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, encode_bookmark
from pinsights.server.clients import ClientRegistry
from pinsights.server.openapi import contract, merge_contracts
from tests.conftest import RunningServer, mint

CONTRACT_FILES = ("audience-insights.openapi.json", "ad-accounts.openapi.json")
FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "contract"
#: Cases per operation and phase; the whole run stays around ten seconds.
MAX_EXAMPLES = 50


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def the_contract() -> dict[str, Any]:
    """Both fixtures as one document (the insights extract's info, servers and security)."""
    return merge_contracts(*(load(FIXTURES / name) for name in CONTRACT_FILES))


def test_fixture_and_packaged_contract_are_the_shared_contract() -> None:
    assert contract() == the_contract()
    # the one component both extracts define: the same OAuth2 scheme, apart from its token URL
    schemes = [load(FIXTURES / name)["components"]["securitySchemes"] for name in CONTRACT_FILES]
    flows = [scheme["pinterest_oauth2"]["flows"]["authorizationCode"] for scheme in schemes]
    assert [{**flow, "tokenUrl": None} for flow in flows] == [{**flows[0], "tokenUrl": None}] * 2
    if not SHARED.exists():
        pytest.skip("shared/ is not beside the repository")
    for name in CONTRACT_FILES:
        assert load(SHARED / name) == load(FIXTURES / name)


def test_served_openapi_is_the_contract_plus_documented_extensions(server: RunningServer) -> None:
    served = server.get("/v5/openapi.json").json()
    expected = the_contract()
    assert served["servers"] == [{"url": "/v5"}]  # relative: no --public-url given
    assert set(served["paths"]) == set(expected["paths"]) | {"/healthz"}
    assert served["components"]["schemas"] == expected["components"]["schemas"]
    for path, item in expected["paths"].items():
        for method, operation in item.items():
            mine = served["paths"][path][method]
            assert mine["operationId"] == operation["operationId"]
            assert mine["responses"] == operation["responses"]
            extra = [
                p for p in mine.get("parameters", []) if p not in operation.get("parameters", [])
            ]
            assert [p["name"] for p in extra] == (["date"] if "audience_insights" in path else [])
    token_url = served["components"]["securitySchemes"]["client_credentials"]["flows"][
        "clientCredentials"
    ]
    assert token_url["tokenUrl"] == "/v5/oauth/token"


def test_docs_page_points_at_the_served_openapi(server: RunningServer) -> None:
    page = server.get("/v5/docs")
    assert page.status_code == 200 and "/v5/openapi.json" in page.text


def test_parameter_rules_are_the_contracts() -> None:
    parameters = the_contract()["components"]["parameters"]
    schemas = the_contract()["components"]["schemas"]
    for name in ("path_ad_account_id", "path_category_id", "AdAccountKey"):
        rule = parameters[name]["schema"]
        assert (rule["pattern"], rule["maxLength"]) == (
            AD_ACCOUNT_ID_PATTERN,
            AD_ACCOUNT_ID_MAX_LENGTH,
        )
    assert schemas["AudienceInsightType"]["enum"] == [t.value for t in AudienceInsightType]
    assert parameters["path_scope"]["schema"]["enum"] == [s.value for s in AudienceDefinitionScope]
    assert parameters["path_type"]["schema"]["enum"] == [t.value for t in AudienceDefinitionType]
    assert parameters["query_sort"]["schema"]["enum"] == [s.value for s in AudienceCategorySort]
    assert parameters["query_audience_insight_type"]["required"] is True
    page_size = parameters["Pinterest.Lib.BookmarkParams.page_size"]["schema"]
    assert (page_size["minimum"], page_size["maximum"], page_size["default"]) == (
        1,
        PAGE_SIZE_MAX,
        PAGE_SIZE_DEFAULT,
    )


def test_schemathesis_finds_no_failure_with_every_check(
    server: RunningServer, tmp_path: Path
) -> None:
    """Every phase (examples, coverage, fuzzing, stateful) and every check, bounded examples.

    Known account and category ids are mixed into generated path parameters so that successful
    answers are validated too, not only errors. The contract's two files run as one document, so
    every operation the server serves is covered (a test below checks that each was called).
    """
    client, secret = ClientRegistry(server.store).add("schemathesis", "*")
    token = mint("*", client_id="schemathesis")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
[auth.openapi.pinterest_oauth2]
bearer = "{token}"
[auth.openapi.client_credentials]
bearer = "{token}"
[auth.openapi.basic]
username = "{client.client_id}"
password = "{secret}"

[dictionaries.accounts]
values = ["1001", "1002", "1003"]
[dictionaries.categories]
values = ["10", "20", "30"]
[dictionaries.bookmarks]
values = {json.dumps([encode_bookmark(account) for account in ("1001", "1002", "999")])}

[parameters]
"path.ad_account_id" = {{ dictionary = "accounts", probability = 0.6 }}
"path.category_id" = {{ dictionary = "categories", probability = 0.6 }}
"query.bookmark" = {{ dictionary = "bookmarks", probability = 0.5 }}

# A bookmark is an opaque string, so the schema calls any string valid; one this server did not
# give is still refused (400/1 naming it), and ST202 must accept that for this operation.
[[operations]]
include-operation-id = "ad_accounts/list"
checks.positive_data_acceptance.expected-statuses = ["200", "400", "401", "403", "429"]
"""
    )
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
    ]
    document = tmp_path / "contract.openapi.json"
    document.write_text(json.dumps(the_contract()))
    command += [str(document), "--url", f"{server.base_url}/v5", "--checks", "all"]
    command += ["--max-examples", str(MAX_EXAMPLES), "--seed", "20261128", "--workers", "2"]
    if not Path(command[0]).exists():
        command[0] = shutil.which("schemathesis") or "schemathesis"
    log_start = len(server.access_log())
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-8000:]
    entries = server.access_log()[log_start:]
    statuses = {entry["status"] for entry in entries}
    assert {200, 400, 401, 403, 404, 405} <= statuses, statuses
    # the ad accounts' operations too, with answers and errors
    listed = {e["status"] for e in entries if e["path"] == "/v5/ad_accounts"}
    got = {e["status"] for e in entries if re.fullmatch(r"/v5/ad_accounts/[^/]+", e["path"])}
    assert listed >= {200, 400} and got >= {200, 400, 403}, (listed, got)
