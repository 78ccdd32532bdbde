"""Conformance to the wire contract: schemathesis over the contract against a live server, and the
server's own OpenAPI document and parameter rules compared with the contract.

``tests/fixtures/audience-insights.openapi.json`` is a copy of ``shared/contract/`` (checked equal
when shared/ is beside the repository), so the suite runs without it.
"""

from __future__ import annotations

import json
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
from pinsights.server.clients import ClientRegistry
from pinsights.server.openapi import contract
from tests.conftest import RunningServer, mint

FIXTURE = Path(__file__).parent / "fixtures" / "audience-insights.openapi.json"
SHARED = (
    Path(__file__).resolve().parents[2] / "shared" / "contract" / "audience-insights.openapi.json"
)
#: Cases per operation and phase; the whole run stays around ten seconds.
MAX_EXAMPLES = 50


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_fixture_and_packaged_contract_are_the_shared_contract() -> None:
    assert contract() == load(FIXTURE)
    if not SHARED.exists():
        pytest.skip("shared/ is not beside the repository")
    assert load(SHARED) == load(FIXTURE)


def test_served_openapi_is_the_contract_plus_documented_extensions(server: RunningServer) -> None:
    served = server.get("/v5/openapi.json").json()
    expected = load(FIXTURE)
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
    parameters = load(FIXTURE)["components"]["parameters"]
    schemas = load(FIXTURE)["components"]["schemas"]
    for name in ("path_ad_account_id", "path_category_id"):
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


def test_schemathesis_finds_no_failure_with_every_check(
    server: RunningServer, tmp_path: Path
) -> None:
    """Every phase (examples, coverage, fuzzing, stateful) and every check, bounded examples.

    Known account and category ids are mixed into generated path parameters so that successful
    answers are validated too, not only errors.
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

[parameters]
"path.ad_account_id" = {{ dictionary = "accounts", probability = 0.6 }}
"path.category_id" = {{ dictionary = "categories", probability = 0.6 }}
"""
    )
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
    ]
    command += [str(FIXTURE), "--url", f"{server.base_url}/v5", "--checks", "all"]
    command += ["--max-examples", str(MAX_EXAMPLES), "--seed", "20261128", "--workers", "2"]
    if not Path(command[0]).exists():
        command[0] = shutil.which("schemathesis") or "schemathesis"
    log_start = len(server.access_log())
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-8000:]
    statuses = {entry["status"] for entry in server.access_log()[log_start:]}
    assert {200, 400, 401, 403, 404, 405} <= statuses, statuses
