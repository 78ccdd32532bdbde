"""Signing keys (SPEC §6): tokens carry a kid, keys rotate without cutting anyone off, a retired key
withdraws its tokens on running servers, and unsafe keys are refused. Plus the verified-token
cache, driven by an explicit clock: it never lets a token outlive its expiry, key or client."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from pinsights.cli import app as cli
from pinsights.server.errors import Unauthenticated
from pinsights.server.keys import (
    KEYS_FILE,
    LEGACY_KEY_FILE,
    KeyFile,
    Keyring,
    KeyringError,
    keyring_source,
    kid_of,
)
from pinsights.server.tokens import NOT_BEFORE_LEEWAY, TokenService
from tests.conftest import TEST_SECRET, RunningServer, let_servers_notice, write_snapshot

INSIGHTS = "/v5/ad_accounts/1001/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"
NOW = 1_800_000_000.0


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cli_run(store: Path, *args: str, expect: int = 0, secret: str | None = None) -> str:
    """Run the CLI on ``store`` without PINSIGHTS_SECRET (unless given): the store's keys are used."""
    result = CliRunner().invoke(
        cli, [*args, "--store", str(store)], env={"PINSIGHTS_SECRET": secret}
    )
    assert result.exit_code == expect, result.output
    return result.stdout if expect == 0 else result.output


def kid_of_token(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


# --- the verified-token cache ------------------------------------------------------------------


def test_cached_token_is_refused_the_moment_it_expires() -> None:
    clock = Clock()
    service = TokenService(TEST_SECRET.encode(), clock=clock)
    token = service.issue("c", ["ads:read"], ["*"], ttl=60)
    assert service.verify(token).client_id == "c"
    assert token in service.cache
    clock.now = NOW + 59.999
    service.verify(token)
    clock.now = NOW + 60
    with pytest.raises(Unauthenticated, match="expired"):
        service.verify(token)
    assert token not in service.cache


def test_cache_is_bounded_and_keeps_the_recently_used() -> None:
    service = TokenService(TEST_SECRET.encode(), clock=Clock(), cache_size=2)
    first, second, third = (service.issue(f"c{i}", ["ads:read"], ["*"], ttl=60) for i in range(3))
    service.verify(first)
    service.verify(second)
    service.verify(first)  # now the most recently used
    service.verify(third)
    assert len(service.cache) == 2
    assert first in service.cache and third in service.cache and second not in service.cache
    assert service.verify(second).client_id == "c1"  # evicted, not forgotten: verified again


def test_forged_tokens_never_enter_the_cache() -> None:
    service = TokenService(TEST_SECRET.encode(), clock=Clock())
    forged = TokenService(b"x" * 40, clock=Clock()).issue("c", ["ads:read"], ["*"], ttl=60)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            service.verify(forged)
    assert len(service.cache) == 0


def test_cached_token_is_refused_once_its_key_is_retired() -> None:
    old, new = Keyring.from_secret(b"o" * 40), Keyring.from_secret(b"n" * 40)
    current = [Keyring({**old.keys, **new.keys}, new.signing_kid)]
    service = TokenService(lambda: current[0], clock=Clock())
    signed_by_old = TokenService(old, clock=Clock()).issue("c", ["ads:read"], ["*"], ttl=60)
    signed_by_new = service.issue("c", ["ads:read"], ["*"], ttl=60)
    assert service.verify(signed_by_old).kid == old.signing_kid
    assert service.verify(signed_by_new).kid == new.signing_kid
    current[0] = new  # the old key retired
    with pytest.raises(Unauthenticated, match="retired"):
        service.verify(signed_by_old)
    assert service.verify(signed_by_new).client_id == "c"


def test_cached_token_of_a_revoked_client_is_refused() -> None:
    active = {"acme"}
    service = TokenService(TEST_SECRET.encode(), client_allowed=active.__contains__, clock=Clock())
    registered = service.issue("acme", ["ads:read"], ["1"], ttl=60, registered=True)
    minted = service.issue("acme", ["ads:read"], ["1"], ttl=60)
    service.verify(registered)
    active.clear()
    with pytest.raises(Unauthenticated, match="revoked"):
        service.verify(registered)
    # a token minted with the key names no registered client: only its key withdraws it
    assert service.verify(minted).client_id == "acme"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_token_not_valid_yet_is_refused(claim: str) -> None:
    clock = Clock()
    keyring = Keyring.from_secret(TEST_SECRET.encode())
    kid, key = keyring.signing_key
    payload = {"iss": "pinsights", "sub": "c", "scope": "ads:read", "ad_accounts": "*"}
    payload |= {"iat": int(NOW), "exp": int(NOW) + 7200}
    payload[claim] = int(NOW) + NOT_BEFORE_LEEWAY + 60
    token = jwt.encode(payload, key, algorithm="HS256", headers={"kid": kid})
    service = TokenService(keyring, clock=clock)
    with pytest.raises(Unauthenticated, match="not valid yet"):
        service.verify(token)
    clock.now = NOW + 60  # within the tolerated skew from then on
    assert service.verify(token).client_id == "c"


# --- the key file ------------------------------------------------------------------------------


def test_key_file_is_created_owner_only_with_one_signing_key(tmp_path: Path) -> None:
    store = tmp_path / "store"
    keys = KeyFile(store)
    keyring = keys.ensure()
    assert stat.S_IMODE((store / KEYS_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert list(keyring.keys) == [keyring.signing_kid]
    assert KeyFile(store).ensure() == keyring  # created once


def test_rotate_adds_a_signing_key_and_retire_erases_one(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "store")
    first = keys.ensure().signing_kid
    assert first is not None
    second = keys.rotate().kid
    keyring = keys.ensure()
    assert keyring.signing_kid == second and set(keyring.keys) == {first, second}
    with pytest.raises(KeyringError, match="keys rotate` first"):
        keys.retire(second)
    with pytest.raises(KeyringError, match="no key"):
        keys.retire("nope")
    retired = keys.retire(first)
    assert retired.retired and retired.secret == ""
    assert set(keys.ensure().keys) == {second}
    text = keys.path.read_text()
    assert [k["kid"] for k in json.loads(text)["keys"]] == [first, second]


def test_legacy_signing_key_is_imported_then_removed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    legacy = store / LEGACY_KEY_FILE
    fd = os.open(legacy, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"a" * 64 + b"\n")
    os.close(fd)
    keyring = KeyFile(store).ensure()
    assert list(keyring.keys.values()) == [b"a" * 64]
    assert not legacy.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    keys = KeyFile(tmp_path / "store")
    keys.ensure()
    keys.path.chmod(mode)
    with pytest.raises(KeyringError, match="chmod 600"):
        keys.ensure()
    assert keys.keyring().signing_kid is None  # a running server refuses every token


def test_legacy_key_readable_by_others_or_short_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    legacy = store / LEGACY_KEY_FILE
    legacy.write_text("k" * 64)
    legacy.chmod(0o644)
    with pytest.raises(KeyringError, match="other users"):
        KeyFile(store).ensure()
    legacy.write_text("short")
    legacy.chmod(0o600)
    with pytest.raises(KeyringError, match="at least 32"):
        KeyFile(store).ensure()
    assert legacy.exists() and not (store / KEYS_FILE).exists()  # nothing lost


def test_configured_secret_is_one_key_named_by_its_hash(tmp_path: Path) -> None:
    keyring = keyring_source(tmp_path / "store", TEST_SECRET)()
    assert keyring.signing_kid == kid_of(TEST_SECRET.encode())
    assert TEST_SECRET not in str(keyring.signing_kid)
    assert not (tmp_path / "store" / KEYS_FILE).exists()


def test_keys_commands_refuse_to_run_when_the_secret_is_configured(tmp_path: Path) -> None:
    output = cli_run(tmp_path / "store", "keys", "rotate", expect=1, secret=TEST_SECRET)
    assert "PINSIGHTS_SECRET is set" in output


def test_keys_list_names_the_keys_but_never_shows_them(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    new_kid = cli_run(store, "keys", "rotate").strip()
    listing = json.loads(cli_run(store, "keys", "list", "--json"))
    assert [row["signing"] for row in listing] == [False, True]
    assert listing[1]["kid"] == new_kid
    text = cli_run(store, "keys", "list")
    for secret in KeyFile(store).ensure().keys.values():
        assert secret.decode() not in text


# --- live servers ------------------------------------------------------------------------------


@pytest.fixture
def keyed_store(tmp_path: Path) -> Path:
    """A store served with its own keyring (no PINSIGHTS_SECRET)."""
    store = tmp_path / "store"
    write_snapshot(store, dt.date(2026, 10, 31), {"1001": {"YOUR_TOTAL_AUDIENCE": 500}})
    return store


def test_rotation_and_retirement_reach_running_servers(keyed_store: Path, server_factory) -> None:
    servers: list[RunningServer] = [server_factory(keyed_store, secret=None) for _ in range(2)]
    old_kid = json.loads(cli_run(keyed_store, "keys", "list", "--json"))[0]["kid"]
    old_token = cli_run(keyed_store, "token", "--ad-accounts", "*").strip()
    assert kid_of_token(old_token) == old_kid

    new_kid = cli_run(keyed_store, "keys", "rotate").strip()
    new_token = cli_run(keyed_store, "token", "--ad-accounts", "*").strip()
    assert kid_of_token(new_token) == new_kid != old_kid
    for server in servers:  # old tokens stay valid until they expire; new ones work at once
        assert server.get(INSIGHTS, old_token).status_code == 200
        assert server.get(INSIGHTS, new_token).status_code == 200

    cli_run(keyed_store, "keys", "retire", old_kid)
    for server in servers:  # no restart
        response = server.get(INSIGHTS, old_token)
        assert response.status_code == 401 and response.json()["code"] == 2
        assert server.get(INSIGHTS, new_token).status_code == 200


def test_token_endpoint_signs_with_the_newest_key(keyed_store: Path, server_factory) -> None:
    server = server_factory(keyed_store, secret=None)
    credentials = json.loads(
        cli_run(keyed_store, "clients", "add", "--name", "acme", "--ad-accounts", "1001", "--json")
    )
    auth = (credentials["client_id"], credentials["client_secret"])
    form = {"grant_type": "client_credentials"}
    before = server.client.post("/v5/oauth/token", data=form, auth=auth).json()["access_token"]
    new_kid = cli_run(keyed_store, "keys", "rotate").strip()
    after = server.client.post("/v5/oauth/token", data=form, auth=auth).json()["access_token"]
    assert kid_of_token(before) != new_kid == kid_of_token(after)
    assert server.get(INSIGHTS, before).status_code == 200
    assert server.get(INSIGHTS, after).status_code == 200


def test_server_refuses_to_start_with_an_unsafe_key_file(keyed_store: Path, server_factory) -> None:
    keys = KeyFile(keyed_store)
    keys.ensure()
    keys.path.chmod(0o644)
    with pytest.raises(RuntimeError, match="chmod 600") as failure:
        server_factory(keyed_store, secret=None)
    assert "Traceback" not in str(failure.value)


def test_key_file_made_unsafe_while_serving_refuses_every_token(
    keyed_store: Path, server_factory
) -> None:
    server = server_factory(keyed_store, secret=None)
    token = cli_run(keyed_store, "token", "--ad-accounts", "*").strip()
    assert server.get(INSIGHTS, token).status_code == 200
    credentials = json.loads(
        cli_run(keyed_store, "clients", "add", "--name", "acme", "--ad-accounts", "1001", "--json")
    )
    KeyFile(keyed_store).path.chmod(0o644)
    let_servers_notice()
    response = server.get(INSIGHTS, token)
    assert response.status_code == 401 and response.json()["code"] == 2
    issued = server.client.post(
        "/v5/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
    )
    assert issued.status_code == 503 and issued.json()["code"] == 503  # no token, no traceback
    assert "Traceback" not in server.log_path.read_text()
    assert "chmod 600" in server.log_path.read_text()  # the reason, for the operator


def test_a_staged_key_verifies_but_signs_only_once_promoted(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "store")
    first = keys.ensure().signing_kid
    staged = keys.rotate(stage=True).kid
    keyring = keys.ensure()
    assert keyring.signing_kid == first and set(keyring.keys) == {first, staged}
    with pytest.raises(KeyringError, match="already staged"):
        keys.rotate(stage=True)
    assert keys.rotate().kid == staged  # promoted, not a third key
    assert keys.ensure().signing_kid == staged and len(keys.read()) == 2
    listing = json.loads(cli_run(tmp_path / "store", "keys", "list", "--json"))
    assert [(row["kid"], row["signing"], row["staged"]) for row in listing] == [
        (first, False, False),
        (staged, True, False),
    ]


def copy_keys(source: Path, target: Path) -> None:
    """Distribute keys.json the way the docs say: a temporary name, then a rename (mode kept)."""
    temporary = target / ".keys.json.incoming"
    shutil.copy2(source / KEYS_FILE, temporary)
    os.replace(temporary, target / KEYS_FILE)


def test_staged_rotation_across_hosts_refuses_no_token(tmp_path: Path, server_factory) -> None:
    """Two hosts with their own stores: a key staged and copied everywhere before it signs."""
    stores = [tmp_path / name / "store" for name in ("host-a", "host-b")]
    for store in stores:
        write_snapshot(store, dt.date(2026, 10, 31), {"1001": {"YOUR_TOTAL_AUDIENCE": 500}})
    KeyFile(stores[0]).ensure()
    copy_keys(stores[0], stores[1])
    hosts = [server_factory(store, secret=None) for store in stores]
    old_token = cli_run(stores[0], "token", "--ad-accounts", "*").strip()

    cli_run(stores[0], "keys", "rotate", "--stage")
    assert (
        kid_of_token(cli_run(stores[0], "token", "--ad-accounts", "*").strip())
        != (json.loads(cli_run(stores[0], "keys", "list", "--json"))[-1]["kid"])
    )  # staged: not signing yet
    copy_keys(stores[0], stores[1])
    new_kid = cli_run(stores[0], "keys", "rotate").strip()
    new_token = cli_run(stores[0], "token", "--ad-accounts", "*").strip()
    assert kid_of_token(new_token) == new_kid
    for host in hosts:  # host B has not received the promotion, and still accepts both
        assert host.get(INSIGHTS, new_token).status_code == 200
        assert host.get(INSIGHTS, old_token).status_code == 200
