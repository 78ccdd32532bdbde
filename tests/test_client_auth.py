"""Auth helpers: tokens fetched from ``/oauth/token`` with HTTP Basic, reused, renewed before expiry.

Against a real loopback server, so the Basic header, the form body and the concurrency are real.
"""

from __future__ import annotations

import base64
import logging
import threading
from urllib.parse import parse_qs

import anyio
import pytest
from test_client_fakes import (
    ACCOUNT,
    Reply,
    ScriptedServer,
    error,
    insights_document,
    scripted,
)

from pinsights.client import (
    AsyncClient,
    Client,
    ClientCredentialsAuth,
    RefreshTokenAuth,
    UnauthorizedError,
)

__all__ = ["scripted"]

PATH = f"/ad_accounts/{ACCOUNT}/audience_insights"
CLIENT_ID = "client-1234"
CLIENT_SECRET = "secret-DO-NOT-LEAK-5678"


def token_reply(token: str, expires_in: int = 3600, **extra: str) -> Reply:
    return Reply(
        200,
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": expires_in,
            "scope": "ads:read",
            **extra,
        },
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer_tokens_seen(server: ScriptedServer) -> list[str]:
    return [r.headers["authorization"] for r in server.seen(PATH)]


def test_client_credentials_are_sent_as_http_basic_with_the_grant_in_the_form(
    scripted: ScriptedServer,
) -> None:
    scripted.script("/oauth/token", token_reply("tok-1"))
    scripted.script(PATH, Reply(200, insights_document()))

    with Client(
        auth=ClientCredentialsAuth(CLIENT_ID, CLIENT_SECRET), base_url=scripted.base_url
    ) as client:
        client.audience_insights_get(ACCOUNT)

    (token_request,) = scripted.seen("/oauth/token")
    assert token_request.method == "POST"
    assert (
        token_request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    )
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["ads:read"],
    }
    assert bearer_tokens_seen(scripted) == ["Bearer tok-1"]


def test_a_token_is_reused_until_shortly_before_it_expires_then_renewed(
    scripted: ScriptedServer,
) -> None:
    clock = FakeClock()
    scripted.script("/oauth/token", token_reply("tok-1", expires_in=100), token_reply("tok-2"))
    scripted.script(PATH, Reply(200, insights_document()))
    auth = ClientCredentialsAuth(CLIENT_ID, CLIENT_SECRET, clock=clock)

    with Client(auth=auth, base_url=scripted.base_url) as client:
        client.audience_insights_get(ACCOUNT)
        clock.now += 89  # 11 s of the 100 s lifetime left: still good
        client.audience_insights_get(ACCOUNT)
        clock.now += 2  # 9 s left: inside the 10 % renewal margin
        client.audience_insights_get(ACCOUNT)

    assert len(scripted.seen("/oauth/token")) == 2
    assert bearer_tokens_seen(scripted) == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_concurrent_threads_share_one_token_request(scripted: ScriptedServer) -> None:
    scripted.script("/oauth/token", Reply(**{**token_reply("tok-1").__dict__, "delay": 0.3}))
    scripted.script(PATH, Reply(200, insights_document()))
    failures: list[BaseException] = []

    with Client(
        auth=ClientCredentialsAuth(CLIENT_ID, CLIENT_SECRET), base_url=scripted.base_url
    ) as client:

        def work() -> None:
            try:
                client.audience_insights_get(ACCOUNT)
            except BaseException as exc:  # reported below, a thread cannot raise into the test
                failures.append(exc)

        threads = [threading.Thread(target=work) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert failures == []
    assert len(scripted.seen("/oauth/token")) == 1
    assert bearer_tokens_seen(scripted) == ["Bearer tok-1"] * 12


def test_concurrent_async_tasks_share_one_token_request(scripted: ScriptedServer) -> None:
    scripted.script("/oauth/token", Reply(**{**token_reply("tok-1").__dict__, "delay": 0.3}))
    scripted.script(PATH, Reply(200, insights_document()))

    async def main() -> None:
        auth = ClientCredentialsAuth(CLIENT_ID, CLIENT_SECRET)
        async with (
            AsyncClient(auth=auth, base_url=scripted.base_url) as client,
            anyio.create_task_group() as tg,
        ):
            for _ in range(12):
                tg.start_soon(client.audience_insights_get, ACCOUNT)

    anyio.run(main)

    assert len(scripted.seen("/oauth/token")) == 1
    assert bearer_tokens_seen(scripted) == ["Bearer tok-1"] * 12


def test_a_token_endpoint_that_is_briefly_unavailable_is_retried(scripted: ScriptedServer) -> None:
    scripted.script("/oauth/token", error(503, 503, "starting"), token_reply("tok-1"))
    scripted.script(PATH, Reply(200, insights_document()))

    auth = ClientCredentialsAuth(CLIENT_ID, CLIENT_SECRET)
    with Client(auth=auth, base_url=scripted.base_url, retry_backoff=0.01) as client:
        client.audience_insights_get(ACCOUNT)

    assert len(scripted.seen("/oauth/token")) == 2
    assert bearer_tokens_seen(scripted) == ["Bearer tok-1"]


def test_rejected_client_credentials_raise_unauthorized_without_leaking_the_secret(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scripted.script("/oauth/token", error(401, 2, f"bad client secret {CLIENT_SECRET}"))

    auth = ClientCredentialsAuth(CLIENT_ID, CLIENT_SECRET)
    with (
        Client(auth=auth, base_url=scripted.base_url) as client,
        pytest.raises(UnauthorizedError) as raised,
    ):
        client.audience_insights_get(ACCOUNT)

    assert raised.value.path == "/v5/oauth/token"
    assert CLIENT_SECRET not in str(raised.value)
    assert CLIENT_SECRET not in caplog.text
    assert CLIENT_SECRET not in repr(auth)
    assert scripted.seen(PATH) == []


def test_no_secret_or_token_reaches_the_logs_even_at_debug_level(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scripted.script("/oauth/token", token_reply("tok-VISIBLE-ONLY-ON-THE-WIRE"))
    scripted.script(PATH, error(503, 503, "later"), Reply(200, insights_document()))

    auth = ClientCredentialsAuth(CLIENT_ID, CLIENT_SECRET)
    with Client(auth=auth, base_url=scripted.base_url, retry_backoff=0.01) as client:
        client.audience_insights_get(ACCOUNT)

    assert "retry 1 of 3" in caplog.text  # the retry was logged…
    assert "tok-VISIBLE-ONLY-ON-THE-WIRE" not in caplog.text  # …without the credentials
    assert CLIENT_SECRET not in caplog.text
    assert base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode() not in caplog.text


def test_an_explicit_token_url_overrides_the_base_url(scripted: ScriptedServer) -> None:
    scripted.script("/custom/token", token_reply("tok-1"))
    scripted.script(PATH, Reply(200, insights_document()))

    auth = ClientCredentialsAuth(
        CLIENT_ID, CLIENT_SECRET, token_url=f"{scripted.base_url}/custom/token"
    )
    with Client(auth=auth, base_url=scripted.base_url) as client:
        client.audience_insights_get(ACCOUNT)

    assert len(scripted.seen("/custom/token")) == 1
    assert scripted.seen("/oauth/token") == []


def test_the_refresh_token_flow_sends_the_refresh_token_and_keeps_a_rotated_one(
    scripted: ScriptedServer,
) -> None:
    clock = FakeClock()
    scripted.script(
        "/oauth/token",
        token_reply(
            "tok-1", expires_in=100, refresh_token="refresh-2", response_type="refresh_token"
        ),
        token_reply("tok-2", expires_in=100),
    )
    scripted.script(PATH, Reply(200, insights_document()))
    auth = RefreshTokenAuth(CLIENT_ID, CLIENT_SECRET, "refresh-1", clock=clock)

    with Client(auth=auth, base_url=scripted.base_url) as client:
        client.audience_insights_get(ACCOUNT)
        assert auth.refresh_token == "refresh-2"
        clock.now += 95
        client.audience_insights_get(ACCOUNT)

    first, second = scripted.seen("/oauth/token")
    assert first.headers["authorization"].startswith("Basic ")
    assert parse_qs(first.body.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["refresh-1"],
    }
    assert parse_qs(second.body.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["refresh-2"],
    }
    assert bearer_tokens_seen(scripted) == ["Bearer tok-1", "Bearer tok-2"]
    assert "refresh-2" not in repr(auth)
