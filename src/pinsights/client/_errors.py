"""The exceptions a caller of the client can catch, and the one place HTTP answers become them.

Every failure the client reports is a :class:`PinsightsError`, so ``except PinsightsError`` is enough
for a caller that only wants to survive. Below it the tree says *what to do*: fix the arguments
(:class:`InvalidArgumentError`, raised before any request is sent), fix the credentials
(:class:`UnauthorizedError`, :class:`ForbiddenError`), ask for something that exists
(:class:`NotFoundError`), slow down (:class:`RateLimitedError`), or try later
(:class:`ServerError`, :class:`PinsightsConnectionError`).

Messages carry the server's ``{"code", "message"}`` and the request path, never a token or secret.
"""

from __future__ import annotations

import email.utils
import json
import time

import httpx


class PinsightsError(Exception):
    """Base of every exception the client raises on purpose."""


class InvalidArgumentError(PinsightsError, ValueError):
    """An argument can never be valid under the wire contract; raised before any request is sent.

    It is also a :class:`ValueError`, so code that validates inputs generically still catches it.
    """


class PinsightsConnectionError(PinsightsError):
    """The server could not be reached (or stopped answering) even after the configured retries."""


class PinsightsTimeoutError(PinsightsConnectionError):
    """A connect, read, write or pool timeout, after the configured retries."""


class PinsightsDecodeError(PinsightsError):
    """A 2xx answer that is not the document the contract promises (a wrong ``base_url``, a proxy)."""


class PinsightsAPIError(PinsightsError):
    """The server answered with an error status.

    ``status`` is the HTTP status, ``code`` and ``message`` are the body's ``{"code", "message"}``
    (SPEC §1; for a body that is not such a document, ``code`` is the status and ``message`` the
    start of the body). ``method`` and ``path`` name the request that failed.
    """

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}HTTP {status} (code {code}): {message}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments would otherwise be lost when an error crosses a process boundary.
        return (
            _rebuild_api_error,
            (type(self), self.status, self.code, self.message, self.method, self.path),
        )


def _rebuild_api_error(
    cls: type[PinsightsAPIError],
    status: int,
    code: int,
    message: str,
    method: str | None,
    path: str | None,
) -> PinsightsAPIError:
    return cls(status, code, message, method=method, path=path)


class BadRequestError(PinsightsAPIError):
    """HTTP 400: a parameter is missing or invalid (the message names it)."""


class UnauthorizedError(PinsightsAPIError):
    """HTTP 401: no token, or it is malformed, badly signed or expired."""


class ForbiddenError(PinsightsAPIError):
    """HTTP 403: the token lacks ``ads:read`` (code 3) or may not read this ad account (code 29)."""


class NotFoundError(PinsightsAPIError):
    """HTTP 404: the account is readable but has no snapshot for this date, type or category."""


class RateLimitedError(PinsightsAPIError):
    """HTTP 429 after the configured retries; ``retry_after`` is the server's last hint in seconds."""

    retry_after: float | None = None


class ServerError(PinsightsAPIError):
    """HTTP 5xx after the configured retries."""


_ERROR_CLASS_OF_STATUS: dict[int, type[PinsightsAPIError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    429: RateLimitedError,
}

#: How much of a non-JSON error body (an HTML page from a proxy, say) ends up in the message.
_BODY_EXCERPT_CHARS = 200


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110).

    Returns ``None`` when the header is absent or unreadable, so the caller falls back to backoff.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def error_from_response(
    response: httpx.Response, *, redact: str | None = None
) -> PinsightsAPIError:
    """Map an error answer to the :class:`PinsightsAPIError` subclass for its status.

    ``redact`` is a credential the caller sent; should a server ever echo it, it is cut out of the
    message so it cannot reach a log through ``str(error)``.
    """
    status = response.status_code
    code, message = status, response.reason_phrase or "error"
    try:
        body = json.loads(response.content)
    except ValueError:
        text = response.text.strip()
        if text:
            message = text[:_BODY_EXCERPT_CHARS]
    else:
        if isinstance(body, dict):
            if isinstance(body.get("code"), int):
                code = body["code"]
            if isinstance(body.get("message"), str):
                message = body["message"]
    if redact:
        message = message.replace(redact, "[redacted]")
    cls = _ERROR_CLASS_OF_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else PinsightsAPIError
    error = cls(
        status, code, message, method=response.request.method, path=response.request.url.path
    )
    if isinstance(error, RateLimitedError):
        error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error
