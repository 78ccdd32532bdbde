"""SPEC §1 Auth: client registration, OAuth2 client credentials, signed tokens, revocation, secrets."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from pinsights.cli import app as cli
from pinsights.contract import OauthAccessTokenResponse
from pinsights.server.clients import CLIENTS_FILE
from tests.conftest import (
    NEW_DATE,
    TEST_SECRET,
    RunningServer,
    let_servers_notice,
    mint,
    write_snapshot,
)

INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"
FORM = {"grant_type": "client_credentials"}


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={"PINSIGHTS_SECRET": TEST_SECRET})
    assert result.exit_code == 0, result.output
    return result.stdout


def add_client(store: Path, accounts: str = "1001") -> tuple[str, str]:
    output = run_cli(
        "clients",
        "add",
        "--name",
        "acme",
        "--ad-accounts",
        accounts,
        "--store",
        str(store),
        "--json",
    )
    credentials = json.loads(output)
    return credentials["client_id"], credentials["client_secret"]


def request_token(
    server: RunningServer, client_id: str, secret: str, **form: str
) -> httpx.Response:
    return server.client.post("/v5/oauth/token", data={**FORM, **form}, auth=(client_id, secret))


def test_client_credentials_flow_issues_a_working_token(server: RunningServer) -> None:
    client_id, secret = add_client(server.store)
    response = request_token(server, client_id, secret)
    assert response.status_code == 200, response.text
    token = OauthAccessTokenResponse.model_validate(response.json())
    assert token.token_type == "bearer" and token.expires_in == 3600 and token.scope == "ads:read"
    assert response.headers["cache-control"] == "no-store"
    assert "x-ratelimit-remaining" in response.headers
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    assert claims["sub"] == client_id and claims["ad_accounts"] == ["1001"]
    assert server.get(INSIGHTS.format(account="1001"), token.access_token).status_code == 200
    assert server.get(INSIGHTS.format(account="1002"), token.access_token).json()["code"] == 29


def test_scope_can_be_requested_and_only_ads_read_reads_insights(server: RunningServer) -> None:
    client_id, secret = add_client(server.store)
    response = request_token(server, client_id, secret, scope="boards:read,pins:read")
    assert response.json()["scope"] == "boards:read,pins:read"
    assert (
        server.get(INSIGHTS.format(account="1001"), response.json()["access_token"]).json()["code"]
        == 3
    )
    both = request_token(server, client_id, secret, scope="ads:read boards:read")
    assert (
        server.get(INSIGHTS.format(account="1001"), both.json()["access_token"]).status_code == 200
    )


@pytest.mark.parametrize(
    ("form", "parameter"),
    [({"grant_type": "password"}, "grant_type"), ({"scope": "ads:everything"}, "scope")],
)
def test_bad_token_request_is_400_1(
    server: RunningServer, form: dict[str, str], parameter: str
) -> None:
    client_id, secret = add_client(server.store)
    response = request_token(server, client_id, secret, **form)
    assert response.status_code == 400
    assert response.json()["code"] == 1 and parameter in response.json()["message"]


def test_missing_grant_type_is_400_1(server: RunningServer) -> None:
    client_id, secret = add_client(server.store)
    response = server.client.post(
        "/v5/oauth/token", data={"scope": "ads:read"}, auth=(client_id, secret)
    )
    assert response.status_code == 400 and "grant_type" in response.json()["message"]


@pytest.mark.parametrize("credentials", ["wrong-secret", None, "garbage"])
def test_bad_client_credentials_are_401_2(server: RunningServer, credentials: str | None) -> None:
    client_id, _ = add_client(server.store)
    if credentials == "garbage":
        headers = {"Authorization": "Basic !!!"}
    elif credentials is None:
        headers = {}
    else:
        basic = base64.b64encode(f"{client_id}:{credentials}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
    response = server.client.post("/v5/oauth/token", data=FORM, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == 2
    assert response.headers["www-authenticate"].startswith("Basic")


def test_unknown_client_is_401_2(server: RunningServer) -> None:
    assert request_token(server, "0000000000000000", "whatever").json()["code"] == 2


def test_revoking_a_client_stops_its_tokens_on_the_running_server(server: RunningServer) -> None:
    client_id, secret = add_client(server.store)
    token = request_token(server, client_id, secret).json()["access_token"]
    assert server.get(INSIGHTS.format(account="1001"), token).status_code == 200
    run_cli("clients", "revoke", client_id, "--store", str(server.store))
    response = server.get(INSIGHTS.format(account="1001"), token)
    assert response.status_code == 401 and response.json()["code"] == 2
    assert request_token(server, client_id, secret).status_code == 401


def test_revocation_fails_closed_when_the_registry_is_missing(
    tmp_path: Path, server_factory
) -> None:
    store = tmp_path / "store"
    write_snapshot(store, NEW_DATE, {"1001": {"YOUR_TOTAL_AUDIENCE": 500}})
    own = server_factory(store)
    client_id, secret = add_client(store)
    revoked_id, revoked_secret = add_client(store)
    token = request_token(own, client_id, secret).json()["access_token"]
    revoked_token = request_token(own, revoked_id, revoked_secret).json()["access_token"]
    run_cli("clients", "revoke", revoked_id, "--store", str(store))
    minted = mint()  # signed with the key, not issued to a registered client
    registry = store / CLIENTS_FILE
    registry.rename(store / "clients.json.moved")
    let_servers_notice()
    for refused in (token, revoked_token):
        response = own.get(INSIGHTS.format(account="1001"), refused)
        assert response.status_code == 401 and response.json()["code"] == 2
    assert own.get(INSIGHTS.format(account="1001"), minted).status_code == 200
    registry.write_text("{ damaged")
    let_servers_notice()
    assert own.get(INSIGHTS.format(account="1001"), revoked_token).status_code == 401
    (store / "clients.json.moved").rename(registry)
    let_servers_notice()
    assert own.get(INSIGHTS.format(account="1001"), token).status_code == 200
    assert own.get(INSIGHTS.format(account="1001"), revoked_token).status_code == 401


def test_clients_list_shows_clients_but_no_secret(server: RunningServer) -> None:
    client_id, secret = add_client(server.store, "1001,1002")
    listing = run_cli("clients", "list", "--store", str(server.store), "--json")
    entry = next(c for c in json.loads(listing) if c["client_id"] == client_id)
    assert entry["ad_accounts"] == ["1001", "1002"] and entry["revoked_at"] is None
    assert secret not in listing and "hash" not in listing


def test_client_registry_holds_only_salted_hashes_owner_only(server: RunningServer) -> None:
    _, secret = add_client(server.store)
    path = server.store / CLIENTS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert secret not in text
    assert all(
        c["secret_hash"].startswith("$argon2id$") or c["revoked_at"]
        for c in json.loads(text)["clients"]
    )


def test_token_command_prints_only_a_token_that_the_server_accepts(server: RunningServer) -> None:
    output = run_cli("token", "--ad-accounts", "1001", "--ttl", "60", "--store", str(server.store))
    assert output.count("\n") == 1
    token = output.strip()
    assert server.get(INSIGHTS.format(account="1001"), token).status_code == 200
    assert server.get(INSIGHTS.format(account="1003"), token).json()["code"] == 29


def test_wildcard_token_reads_every_account(server: RunningServer) -> None:
    token = run_cli("token", "--ad-accounts", "*", "--store", str(server.store)).strip()
    assert server.get(INSIGHTS.format(account="1002"), token).status_code == 200


def test_short_secret_is_refused() -> None:
    result = CliRunner().invoke(
        cli, ["token", "--ad-accounts", "1"], env={"PINSIGHTS_SECRET": "short"}
    )
    assert result.exit_code != 0
    assert "at least 32" in result.output


def test_access_log_is_json_lines_without_credentials(server: RunningServer) -> None:
    client_id, secret = add_client(server.store)
    token = request_token(server, client_id, secret).json()["access_token"]
    server.get(INSIGHTS.format(account="1001") + "&access_token=" + token, token)
    server.get(INSIGHTS.format(account="1001"), token)
    entries = server.access_log()
    log = server.log_path.read_text()
    assert token not in log and secret not in log
    mine = [e for e in entries if e["client_id"] == client_id]
    reads = [e for e in mine if e["path"] != "/v5/oauth/token"]
    assert len(reads) == 2 and all(e["status"] == 200 for e in reads)
    assert {"time", "remote", "method", "path", "query", "status", "bytes", "ms"} <= set(reads[0])
    assert reads[0]["query"] == "audience_insight_type=YOUR_TOTAL_AUDIENCE&[other]"
    token_requests = [e for e in entries if e["path"] == "/v5/oauth/token"]
    assert [e["client_id"] for e in token_requests].count(client_id) == 1


@pytest.mark.parametrize(
    "query",
    [
        "%74oken={secret}",  # an encoded name
        "%74%6F%6B%65%6E={secret}",
        "bearer={secret}",
        "auth={secret}",
        "Authorization=Bearer%20{secret}",
        "{secret}",  # a bare name
        "x={secret}&y=1",
        "date={secret}",  # a defined name with a value far too long to be one
        "audience_insight_type={secret}%00",
    ],
)
def test_access_log_writes_only_defined_parameters(server: RunningServer, query: str) -> None:
    secret = "S3cr3t" + "x" * 40
    path = "/v5/ad_accounts/1001/audience_insights"
    response = server.get(f"{path}?{query.format(secret=secret)}", mint())
    assert response.status_code == 400
    server.get(f"/v5/nothing?{query.format(secret=secret)}")  # an unknown route, no token
    server.access_log()  # written
    log = server.log_path.read_text()
    assert secret not in log
    assert "S3cr3t" not in log or "date=S3cr3t" in log or "audience_insight_type=S3cr3t" in log


def test_access_log_decodes_the_defined_parameters(server: RunningServer) -> None:
    path = "/v5/ad_accounts/1001/audience_insights"
    marker = "%61udience_insight_type=YOUR_TOTAL_AUDIENCE&dat%65=2026-10-31&z=1"
    assert server.get(f"{path}?{marker}", mint()).status_code == 200
    entry = next(e for e in reversed(server.access_log()) if e["path"] == path)
    assert entry["query"] == "audience_insight_type=YOUR_TOTAL_AUDIENCE&date=2026-10-31&[other]"
