"""Retries: 429, 5xx and connection failures are retried, bounded, and ``Retry-After`` is honoured.

Runs against a real HTTP server on loopback, with the sync and the async client alike, and measures
the time the server saw between attempts rather than trusting the client's own bookkeeping.
"""

from __future__ import annotations

import logging
import random

import httpx
import pytest
from test_client_fakes import (
    ACCOUNT,
    FLAVOURS,
    Reply,
    ScriptedServer,
    call,
    closed_port_url,
    error,
    insights_document,
    record_sleeps,
    scripted,
)

from pinsights.client import (
    PinsightsAPIError,
    PinsightsConnectionError,
    PinsightsTimeoutError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
)
from pinsights.client._errors import parse_retry_after
from pinsights.contract import AudienceInsightsResponse

__all__ = ["scripted"]

PATH = f"/ad_accounts/{ACCOUNT}/audience_insights"
FAST = {"retry_backoff": 0.01, "retry_max_backoff": 0.02}


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def get(flavour: str, server: ScriptedServer, **options: object) -> AudienceInsightsResponse:
    result = call(
        flavour,
        "audience_insights_get",
        ACCOUNT,
        client_options={"base_url": server.base_url, **options},
    )
    assert isinstance(result, AudienceInsightsResponse)
    return result


def test_a_429_is_retried_after_exactly_the_retry_after_the_server_asked_for(
    flavour: str, scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.script(
        PATH,
        error(429, 8, "rate limit exceeded", **{"Retry-After": "1"}),
        Reply(200, insights_document()),
    )
    waits = record_sleeps(monkeypatch)

    insights = get(flavour, scripted, **FAST)

    assert waits == [1.0], "exactly the Retry-After, not the (much shorter) backoff"
    first, second = scripted.seen(PATH)
    assert second.at - first.at >= 1.0, "the server saw the retry only after the wait"
    assert insights.size == 1234


def test_503_answers_are_retried_until_the_server_recovers(
    flavour: str, scripted: ScriptedServer
) -> None:
    scripted.script(
        PATH,
        error(503, 503, "warming up"),
        error(503, 503, "warming up"),
        Reply(200, insights_document()),
    )

    insights = get(flavour, scripted, **FAST)

    assert len(scripted.seen(PATH)) == 3
    assert insights.type == "YOUR_TOTAL_AUDIENCE"


def test_after_the_retry_limit_the_last_error_is_raised(
    flavour: str, scripted: ScriptedServer
) -> None:
    scripted.script(
        PATH,
        error(429, 8, "slow down", **{"Retry-After": "0"}),
        error(503, 503, "unavailable"),
        error(502, 502, "bad gateway"),
        error(504, 504, "gateway timeout"),
        Reply(200, insights_document()),
    )

    with pytest.raises(ServerError) as raised:
        get(flavour, scripted, max_retries=3, **FAST)

    assert len(scripted.seen(PATH)) == 4  # the first attempt and three retries
    assert (raised.value.status, raised.value.code) == (504, 504)
    assert raised.value.message == "gateway timeout"


def test_the_retry_limit_is_configurable(flavour: str, scripted: ScriptedServer) -> None:
    scripted.script(PATH, error(429, 8, "slow down", **{"Retry-After": "0"}))

    with pytest.raises(RateLimitedError):
        get(flavour, scripted, max_retries=1, **FAST)

    assert len(scripted.seen(PATH)) == 2


def test_max_retries_zero_sends_exactly_one_request(flavour: str, scripted: ScriptedServer) -> None:
    scripted.script(PATH, error(500, 500, "boom"), Reply(200, insights_document()))

    with pytest.raises(ServerError):
        get(flavour, scripted, max_retries=0)

    assert len(scripted.seen(PATH)) == 1


def test_a_retry_after_beyond_max_retry_after_is_raised_at_once_not_slept(
    flavour: str, scripted: ScriptedServer
) -> None:
    scripted.script(PATH, error(429, 8, "come back later", **{"Retry-After": "120"}))

    with pytest.raises(RateLimitedError) as raised:
        get(flavour, scripted, max_retry_after=30)

    assert len(scripted.seen(PATH)) == 1
    assert raised.value.retry_after == 120


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_never_retried(
    flavour: str, scripted: ScriptedServer, status: int
) -> None:
    scripted.script(PATH, error(status, 1, "no"), Reply(200, insights_document()))

    with pytest.raises(PinsightsAPIError):
        get(flavour, scripted, **FAST)

    assert len(scripted.seen(PATH)) == 1


def test_a_refused_connection_is_retried_then_reported_as_a_connection_error(
    flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pinsights.client")
    base_url = closed_port_url()

    with pytest.raises(PinsightsConnectionError) as raised:
        call(
            flavour,
            "audience_insights_get",
            ACCOUNT,
            client_options={"base_url": base_url, "max_retries": 2, **FAST},
        )

    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert "3 attempt(s)" in str(raised.value)
    retries = [r for r in caplog.records if r.name == "pinsights.client" and "retry" in r.message]
    assert len(retries) == 2


def test_a_read_timeout_is_retried_then_reported_as_a_timeout(
    flavour: str, scripted: ScriptedServer
) -> None:
    scripted.script(PATH, Reply(200, insights_document(), delay=1.0))

    with pytest.raises(PinsightsTimeoutError):
        get(flavour, scripted, timeout=0.2, max_retries=1, **FAST)

    assert len(scripted.seen(PATH)) == 2


def test_backoff_without_retry_after_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(max_retries=5, backoff=0.5, max_backoff=3.0)
    rng = random.Random(7)

    for attempt, cap in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(d is not None and 0.0 <= d <= cap for d in delays)
        assert max(d for d in delays if d is not None) > cap * 0.9  # spread over the whole range
    assert policy.delay(5, None, rng) is None


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 + 99) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
