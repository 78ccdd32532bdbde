"""What :class:`Client` and :class:`AsyncClient` share: configuration, validation, retries, parsing.

Everything here is free of I/O, so the two clients differ only in how they send a request and how
they sleep (the httpx pattern: one base, two thin transports). A behaviour written here — which
arguments are refused before a request is sent, which answers are retried and for how long, how an
answer becomes a contract model or an exception — is therefore the same for both by construction.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from pinsights import __version__
from pinsights.contract import (
    AD_ACCOUNT_ID_MAX_LENGTH,
    AdAccount,
    AdAccountsPage,
    AudienceCategorySort,
    AudienceDefinitionScope,
    AudienceDefinitionType,
    AudienceInsightType,
)

from ._auth import BearerToken, _OAuthTokenFlow
from ._errors import (
    InvalidArgumentError,
    PinsightsAPIError,
    PinsightsConnectionError,
    PinsightsDecodeError,
    PinsightsTimeoutError,
    error_from_response,
    parse_retry_after,
)
from ._frames import (
    AudienceDefinitionResponse,
    AudienceInsightCategoryArrayResponse,
    AudienceInsightsResponse,
)

logger = logging.getLogger("pinsights.client")

DEFAULT_BASE_URL = "https://api.pinterest.com/v5"
BASE_URL_ENV = "PINSIGHTS_BASE_URL"
ACCESS_TOKEN_ENV = "PINTEREST_ACCESS_TOKEN"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
#: ``page_size`` of ``ad_accounts/list``: the contract's bounds and default; iterating every
#: account asks for the largest pages (fewest requests against the rate limit).
PAGE_SIZE_MAX = 250
PAGE_SIZE_DEFAULT = 25

CATEGORY_LIST_DEPRECATION = (
    "audiences_insights_category_list is deprecated upstream (Pinterest API v5.10); "
    "read the subcategories from audience_insights_get(...).categories instead"
)

ModelT = TypeVar("ModelT", bound=BaseModel)

#: ASCII only: the contract's ``^\d+$`` is an ECMA-262 pattern, where ``\d`` is ``[0-9]``.
_DIGITS = re.compile(r"[0-9]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

#: Transport failures worth another attempt. Every operation is a GET (and the token request is
#: repeatable), so a request that may have reached the server is still safe to send again.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries before it reports a 429, a 5xx or a connection failure.

    ``max_retries`` extra attempts follow the first. Without a ``Retry-After`` the wait before retry
    *n* (0-based) is drawn uniformly from ``[0, min(max_backoff, backoff * 2**n)]`` ("full jitter":
    many clients hitting the same limit spread out instead of retrying in lockstep). With a
    ``Retry-After`` the client waits exactly that long, unless it exceeds ``max_retry_after``: then
    waiting is not what the caller asked for, and the error is raised at once.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InvalidArgumentError("max_retries must be >= 0")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise InvalidArgumentError("backoff, max_backoff and max_retry_after must be >= 0")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up now."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return rng.uniform(0.0, min(self.max_backoff, self.backoff * 2**attempt))


@dataclass(frozen=True)
class _Call(Generic[ModelT]):
    """One operation to perform: a GET of ``path`` (relative to the base URL) answering ``model``."""

    path: str
    params: dict[str, str]
    model: type[ModelT]


def _resolve_base_url(base_url: str | None) -> str:
    url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidArgumentError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}")
    if parsed.path in ("", "/"):
        # A server root (``http://127.0.0.1:8000``) is a common slip; the API lives under /v5.
        url += "/v5"
    return url


def _resolve_auth(access_token: str | None, auth: httpx.Auth | None, base_url: str) -> httpx.Auth:
    if auth is not None and access_token is not None:
        raise InvalidArgumentError("pass either access_token= or auth=, not both")
    if auth is None:
        token = access_token if access_token is not None else os.environ.get(ACCESS_TOKEN_ENV)
        if not token:
            raise InvalidArgumentError(
                f"no credentials: pass access_token= or auth=, or set {ACCESS_TOKEN_ENV}"
            )
        auth = BearerToken(token)
    if isinstance(auth, _OAuthTokenFlow):
        auth.bind_base_url(base_url)
    return auth


def _secret_of(auth: httpx.Auth) -> str | None:
    """The credential to keep out of error messages, whatever auth carries it."""
    if isinstance(auth, BearerToken):
        return auth._access_token
    if isinstance(auth, _OAuthTokenFlow):
        return auth._access_token
    return None


def validate_id(value: object, name: str) -> str:
    """An id as the contract allows ``ad_account_id`` and ``category_id``: 1 to 18 ASCII digits.

    A non-negative ``int`` is accepted too, as its decimal spelling.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if (
        not isinstance(value, str)
        or not _DIGITS.fullmatch(value)
        or len(value) > AD_ACCOUNT_ID_MAX_LENGTH
    ):
        raise InvalidArgumentError(
            f"{name} must be a string of 1 to {AD_ACCOUNT_ID_MAX_LENGTH} digits, got {value!r}"
        )
    return value


def validate_insight_type(value: object) -> AudienceInsightType:
    """One of the three insight types (as the enum or its exact wire spelling)."""
    allowed = [kind.value for kind in AudienceInsightType]
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgumentError(
            f"audience_insight_type must be one of {', '.join(allowed)}; got {value!r}"
        )
    return AudienceInsightType(value)


def validate_date(value: object) -> str | None:
    """``None``, a :class:`datetime.date` or a real calendar date written ``YYYY-MM-DD``."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        raise InvalidArgumentError(
            "date must be a date, not a datetime (snapshots are per UTC day)"
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise InvalidArgumentError(f"date must be a calendar date written YYYY-MM-DD, got {value!r}")


def validate_page_size(value: object) -> int:
    """``page_size`` of ``ad_accounts/list``: an int from 1 to 250."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= PAGE_SIZE_MAX:
        raise InvalidArgumentError(
            f"page_size must be an int from 1 to {PAGE_SIZE_MAX}, got {value!r}"
        )
    return value


def _validate_member(
    value: object, enum: type[AudienceDefinitionScope | AudienceDefinitionType], name: str
) -> str:
    allowed = [member.value for member in enum]
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


class BaseClient:
    """Configuration and request logic shared by :class:`Client` and :class:`AsyncClient`."""

    def __init__(
        self,
        access_token: str | None = None,
        *,
        base_url: str | None = None,
        auth: httpx.Auth | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = 0.5,
        retry_max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
    ) -> None:
        self.base_url = _resolve_base_url(base_url)
        self._auth = _resolve_auth(access_token, auth, self.base_url)
        self.retry_policy = RetryPolicy(
            max_retries=max_retries,
            backoff=retry_backoff,
            max_backoff=retry_max_backoff,
            max_retry_after=max_retry_after,
        )
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._rng = random.Random()
        self._headers = {
            "Accept": "application/json",
            "User-Agent": f"pinsights-python/{__version__} httpx/{httpx.__version__}",
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # --- the operations, as calls ------------------------------------------------------------

    def _insights_call(
        self, ad_account_id: str | int, audience_insight_type: object, date: object
    ) -> _Call[AudienceInsightsResponse]:
        account = validate_id(ad_account_id, "ad_account_id")
        params = {"audience_insight_type": validate_insight_type(audience_insight_type).value}
        day = validate_date(date)
        if day is not None:
            params["date"] = day
        return _Call(f"/ad_accounts/{account}/audience_insights", params, AudienceInsightsResponse)

    def _definitions_call(self, ad_account_id: str | int) -> _Call[AudienceDefinitionResponse]:
        account = validate_id(ad_account_id, "ad_account_id")
        return _Call(f"/ad_accounts/{account}/insights/audiences", {}, AudienceDefinitionResponse)

    def _category_list_call(
        self, ad_account_id: str | int, scope: object, type: object, category_id: str | int
    ) -> _Call[AudienceInsightCategoryArrayResponse]:
        account = validate_id(ad_account_id, "ad_account_id")
        scope_value = _validate_member(scope, AudienceDefinitionScope, "scope")
        type_value = _validate_member(type, AudienceDefinitionType, "type")
        category = validate_id(category_id, "category_id")
        return _Call(
            f"/ad_accounts/{account}/insights/audiences/{scope_value}/{type_value}/{category}",
            {"sort": AudienceCategorySort.RATIO.value},
            AudienceInsightCategoryArrayResponse,
        )

    def _ad_accounts_page_call(
        self, bookmark: str | None, page_size: object, include_shared_accounts: bool | None
    ) -> _Call[AdAccountsPage]:
        params = {"page_size": str(validate_page_size(page_size))}
        if bookmark is not None:
            if not isinstance(bookmark, str) or not bookmark:
                raise InvalidArgumentError(f"bookmark must be a non-empty str, got {bookmark!r}")
            params["bookmark"] = bookmark
        if include_shared_accounts is not None:
            params["include_shared_accounts"] = "true" if include_shared_accounts else "false"
        return _Call("/ad_accounts", params, AdAccountsPage)

    def _ad_account_call(self, ad_account_id: str | int) -> _Call[AdAccount]:
        return _Call(f"/ad_accounts/{validate_id(ad_account_id, 'ad_account_id')}", {}, AdAccount)

    @staticmethod
    def _next_bookmark(page: AdAccountsPage, seen: set[str]) -> str | None:
        """The bookmark to follow after ``page`` (None: it was the last); a bookmark given twice
        would page forever, so it is an error rather than a loop."""
        bookmark = page.bookmark or None
        if bookmark is not None:
            if bookmark in seen:
                raise PinsightsDecodeError(
                    "GET /ad_accounts: the server gave the same bookmark twice; stopped paging"
                )
            seen.add(bookmark)
        return bookmark

    # --- answers -------------------------------------------------------------------------------

    def _parse(self, call: _Call[ModelT], response: httpx.Response) -> ModelT:
        try:
            return call.model.model_validate_json(response.content)
        except ValidationError as exc:
            raise PinsightsDecodeError(
                f"GET {response.request.url.path}: the answer is not a valid {call.model.__name__}"
                f" (is {self.base_url!r} the API's base URL?)"
            ) from exc

    def _retry_delay_or_raise(self, outcome: httpx.Response | Exception, attempt: int) -> float:
        """Seconds to wait before the next attempt; raises the error to report when there is none.

        ``outcome`` is a non-2xx answer, a transport error, or an API error raised while fetching a
        token (the token endpoint is retried like any other).
        """
        error: Exception
        retryable = False
        retry_after: float | None = None
        if isinstance(outcome, httpx.Response):
            error = error_from_response(outcome, redact=_secret_of(self._auth))
            retryable = outcome.status_code == 429 or outcome.status_code >= 500
            retry_after = parse_retry_after(outcome.headers.get("Retry-After"))
            where = f"{outcome.request.method} {outcome.request.url.path}"
        elif isinstance(outcome, PinsightsAPIError):
            error = outcome
            retryable = outcome.status == 429 or outcome.status >= 500
            retry_after = getattr(outcome, "retry_after", None)
            where = f"{outcome.method} {outcome.path}"
        elif isinstance(outcome, httpx.TransportError):
            where = f"{outcome.request.method} {outcome.request.url.path}"
            kind = (
                PinsightsTimeoutError
                if isinstance(outcome, httpx.TimeoutException)
                else PinsightsConnectionError
            )
            detail = (
                f"{type(outcome).__name__}: {outcome}" if str(outcome) else type(outcome).__name__
            )
            error = kind(
                f"{where}: no answer from {self.base_url} after {attempt + 1} attempt(s) ({detail})"
            )
            error.__cause__ = outcome
            retryable = isinstance(outcome, RETRYABLE_TRANSPORT_ERRORS)
        else:
            raise outcome
        delay = self.retry_policy.delay(attempt, retry_after, self._rng) if retryable else None
        if delay is None:
            raise error
        logger.info(
            "%s failed (%s); retry %d of %d in %.2fs",
            where,
            getattr(error, "status", type(outcome).__name__),
            attempt + 1,
            self.retry_policy.max_retries,
            delay,
        )
        return delay
