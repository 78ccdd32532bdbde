"""Every error the API answers, one exception type per row of SPEC §1's error table.

Handlers and the data operations raise these; :func:`render` turns any of them into the one wire
shape ``{"code": <int>, "message": "<text>"}``, so no other code builds an error body. Anything that
is not an :class:`ApiError` becomes :class:`InternalError` — a client never sees a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

logger = logging.getLogger("pinsights.server")


class ApiError(Exception):
    """An answer other than 200; ``status`` and ``code`` are fixed per subclass."""

    status: int = 500
    code: int = 500
    default_message: ClassVar[str] = "Internal server error."

    def __init__(self, message: str | None = None, headers: Mapping[str, str] | None = None):
        self.message = message or self.default_message
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)

    def body(self) -> bytes:
        return json.dumps(
            {"code": self.code, "message": self.message}, separators=(",", ":")
        ).encode()


class InvalidParameter(ApiError):
    """400/1: a parameter is missing or invalid; the message always names it."""

    status, code = 400, 1

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        super().__init__(f"Invalid parameter '{parameter}': {problem}")


class Unauthenticated(ApiError):
    """401/2: no bearer token, or a malformed, badly signed, expired or revoked one."""

    status, code = 401, 2
    default_message = "Authentication failed."

    def __init__(self, message: str | None = None, *, challenge: str = "Bearer") -> None:
        super().__init__(message, {"WWW-Authenticate": challenge})


class MissingScope(ApiError):
    """403/3: the token is valid but lacks the scope the operation needs."""

    status, code = 403, 3

    def __init__(self, scope: str) -> None:
        super().__init__(f"The token lacks the required scope '{scope}'.")


class AccountForbidden(ApiError):
    """403/29: the token may not read the ad account — or the account does not exist.

    One fixed message for both, so the body never tells a caller which accounts exist.
    """

    status, code = 403, 29
    default_message = "Not authorized to access this ad account."


class NotFound(ApiError):
    """404/404: a readable account without the requested snapshot or category; an unknown route."""

    status, code = 404, 404
    default_message = "Not found."


#: The message of every unknown path, whichever router found no match.
NO_SUCH_ROUTE = "No such route."


class MethodNotAllowed(ApiError):
    """405/405: the route exists but not for this HTTP method (``Allow`` lists the ones it has)."""

    status, code = 405, 405

    def __init__(self, allowed: str) -> None:
        super().__init__("Method not allowed.", {"Allow": allowed})


class RateLimited(ApiError):
    """429/8: the client's token bucket is empty; ``Retry-After`` says when to try again."""

    status, code = 429, 8

    def __init__(self, retry_after: int, what: str = "Rate limit exceeded") -> None:
        super().__init__(f"{what}; retry after {retry_after} s.", {"Retry-After": str(retry_after)})


class StorageUnavailable(ApiError):
    """503/503: the rate-limit storage cannot be reached; requests are refused, never unlimited."""

    status, code = 503, 503

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"The rate-limit storage is unreachable; retry after {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )


class PayloadTooLarge(ApiError):
    """413/413: a request body larger than the endpoint reads (the token form is a few bytes)."""

    status, code = 413, 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds {limit} bytes.")


class BodyIncomplete(ApiError):
    """408/408: the client went away, or was cut off by the protocol's timeout, mid-body.

    The connection is gone, so nobody receives this answer; raising it records the request in
    the access log and metrics as 408, what the protocol answered (when it did), instead of a
    traceback."""

    status, code = 408, 408

    def __init__(self) -> None:
        super().__init__("The request's body did not arrive whole.")


class Busy(ApiError):
    """503/503: the server is at its bound of concurrent credential checks; try again shortly."""

    status, code = 503, 503

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many credential checks in progress; retry after {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )


class NoSigningKey(ApiError):
    """503/503: the keyring has no usable signing key (missing or unsafe key file): no token."""

    status, code = 503, 503
    default_message = "The server has no usable signing key; tokens cannot be issued now."


class InternalError(ApiError):
    """500/500: anything unexpected; the details go to the server log, never to the client."""


def render(error: ApiError, extra_headers: Mapping[str, str] | None = None) -> Response:
    """The one place an error becomes an HTTP response."""
    headers = dict(extra_headers or {})
    headers.update(error.headers)
    return Response(error.body(), status_code=error.status, headers=headers, media_type=JSON)


JSON = "application/json"


def _validation_error(exc: RequestValidationError) -> InvalidParameter:
    """FastAPI's 422 becomes SPEC's 400/1, naming the first offending parameter."""
    for problem in exc.errors():
        location = [str(part) for part in problem.get("loc", ()) if part not in ("query", "path")]
        name = location[-1] if location else "request"
        return InvalidParameter(name, str(problem.get("msg", "invalid value")))
    return InvalidParameter("request", "invalid request")


def install_error_handlers(app: FastAPI) -> None:
    """Render FastAPI's and Starlette's own errors in the same JSON shape as ours."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return render(exc, getattr(request.state, "ratelimit_headers", None))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(_validation_error(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "GET")
            return render(MethodNotAllowed(allowed))
        if exc.status_code == 404:
            return render(NotFound(NO_SUCH_ROUTE))
        error = ApiError(str(exc.detail))
        error.status = error.code = exc.status_code
        return render(error, exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return render(InternalError())

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
