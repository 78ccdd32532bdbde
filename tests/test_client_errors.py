"""Errors: each HTTP status becomes its own exception, carrying the server's code and message.

And never the caller's token: an error is the thing most likely to end up in a log.
"""

from __future__ import annotations

import logging
import pickle

import pytest
from test_client_fakes import (
    ACCOUNT,
    FLAVOURS,
    TOKEN,
    Reply,
    ScriptedServer,
    call,
    error,
    scripted,
)

from pinsights.client import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    PinsightsAPIError,
    PinsightsDecodeError,
    PinsightsError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)

__all__ = ["scripted"]

PATH = f"/ad_accounts/{ACCOUNT}/audience_insights"


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def get(flavour: str, server: ScriptedServer) -> object:
    return call(
        flavour,
        "audience_insights_get",
        ACCOUNT,
        client_options={"base_url": server.base_url, "max_retries": 0},
    )


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 1, BadRequestError),
        (401, 2, UnauthorizedError),
        (403, 3, ForbiddenError),
        (403, 29, ForbiddenError),
        (404, 404, NotFoundError),
        (429, 8, RateLimitedError),
        (500, 500, ServerError),
        (503, 503, ServerError),
    ],
)
def test_each_error_status_raises_its_own_subclass_with_code_and_message(
    flavour: str,
    scripted: ScriptedServer,
    status: int,
    code: int,
    expected: type[PinsightsAPIError],
) -> None:
    scripted.script(PATH, error(status, code, f"the server says {code}"))

    with pytest.raises(expected) as raised:
        get(flavour, scripted)

    problem = raised.value
    assert type(problem) is expected
    assert (problem.status, problem.code, problem.message) == (
        status,
        code,
        f"the server says {code}",
    )
    assert (problem.method, problem.path) == ("GET", f"/v5{PATH}")
    assert f"HTTP {status} (code {code}): the server says {code}" in str(problem)


def test_an_unmapped_4xx_is_still_a_pinsights_api_error(
    flavour: str, scripted: ScriptedServer
) -> None:
    scripted.script(PATH, error(418, 418, "teapot"))

    with pytest.raises(PinsightsAPIError) as raised:
        get(flavour, scripted)

    assert type(raised.value) is PinsightsAPIError
    assert raised.value.status == 418


def test_an_error_body_that_is_not_json_is_reported_by_status_and_text(
    flavour: str, scripted: ScriptedServer
) -> None:
    scripted.script(PATH, Reply(502, b"<html>Bad Gateway from the proxy</html>"))

    with pytest.raises(ServerError) as raised:
        get(flavour, scripted)

    assert (raised.value.status, raised.value.code) == (502, 502)
    assert "Bad Gateway from the proxy" in raised.value.message


def test_a_success_that_is_not_the_contract_document_is_a_decode_error(
    flavour: str, scripted: ScriptedServer
) -> None:
    scripted.script(PATH, Reply(200, b"<html>a login page</html>"))

    with pytest.raises(PinsightsDecodeError, match="not a valid AudienceInsightsResponse"):
        get(flavour, scripted)


def test_a_token_echoed_by_a_server_is_redacted_from_the_error(
    flavour: str, scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scripted.script(PATH, error(401, 2, f"token {TOKEN} is expired"))

    with pytest.raises(UnauthorizedError) as raised:
        get(flavour, scripted)

    assert TOKEN not in str(raised.value)
    assert TOKEN not in repr(raised.value)
    assert "[redacted]" in raised.value.message
    assert TOKEN not in caplog.text


def test_every_error_is_a_pinsights_error_and_survives_pickling() -> None:
    problem = ForbiddenError(403, 29, "no access", method="GET", path="/v5/x")

    clone = pickle.loads(pickle.dumps(problem))

    assert isinstance(clone, ForbiddenError)
    assert isinstance(clone, PinsightsError)
    assert (clone.status, clone.code, clone.message, clone.path) == (403, 29, "no access", "/v5/x")
