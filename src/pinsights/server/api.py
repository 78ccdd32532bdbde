"""The data operations of SPEC §1, as a lean ASGI application.

Every path under ``/v5/ad_accounts`` is served here: the insights operations, and the ad accounts'
own list and get (``ad_accounts/list``, ``ad_accounts/get``), which go through the same token,
scope, rate limit, access log and metrics as the rest.

``GET /v5/ad_accounts/{ad_account_id}/…`` is the hot path: auth → rate limit → parameters →
lookup → bytes. It is written directly against ASGI rather than as FastAPI routes because FastAPI's
per-request machinery (dependency solving, parameter models) costs several times what the whole
lookup does: on the project's 2-core machine it capped the server at about a quarter of a bare ASGI
app's throughput (docs/server.md has the figures). Everything else — the token endpoint, health,
OpenAPI, docs, the dashboard — is a FastAPI app (:mod:`pinsights.server.web`).

The parameters are checked exactly as the wire contract declares them (a test compares the two),
and every failure is an :class:`~pinsights.server.errors.ApiError` rendered by one function.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, unquote

from pinsights.contract import (
    AD_ACCOUNT_ID_MAX_LENGTH,
    AD_ACCOUNT_ID_PATTERN,
    DATE_PATTERN,
    INSIGHT_TYPE_OF_DEFINITION,
    AudienceCategorySort,
    AudienceDefinitionScope,
    AudienceDefinitionType,
    AudienceInsightType,
)
from pinsights.server.accounts import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, decode_bookmark
from pinsights.server.documents import Documents
from pinsights.server.errors import (
    NO_SUCH_ROUTE,
    AccountForbidden,
    ApiError,
    InternalError,
    InvalidParameter,
    MethodNotAllowed,
    MissingScope,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from pinsights.server.protocol import write_response
from pinsights.server.ratelimit import Decision, Limiter
from pinsights.server.sightings import Sightings
from pinsights.server.tokens import READ_SCOPE, Claims, TokenService

logger = logging.getLogger("pinsights.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Query = dict[str, list[str]]
E = TypeVar("E", bound=StrEnum)

PREFIX = "/v5/ad_accounts/"
#: ``ad_accounts/list``: the one data path not under PREFIX.
LIST_PATH = PREFIX.rstrip("/")
#: ASGI scope key under which the authenticated client id is left for the access log.
CLIENT_ID_KEY = "pinsights.client_id"
#: ASGI scope key under which the operation id is left for the metrics.
OPERATION_KEY = "pinsights.operation"
ALLOWED_METHODS = "GET, HEAD"
# The contract's patterns are ECMA regexes, where \d means ASCII digits only.
_ACCOUNT_ID = re.compile(AD_ACCOUNT_ID_PATTERN, re.ASCII)
_CATEGORY_ID = _ACCOUNT_ID  # the contract gives category_id the same rule
_DATE = re.compile(DATE_PATTERN, re.ASCII)
_PAGE_SIZE = re.compile(r"[0-9]{1,3}", re.ASCII)
_BOOLEANS = {"true": True, "false": False}
#: The usual request's raw path is ``…/{ad_account_id}/audience_insights``: its two ends, between
#: which an id the contract allows (ASCII digits, at most its length) is checked without splitting
#: and routing. A path with an escape in it never passes; the general way decodes each segment.
_INSIGHTS_HEAD = PREFIX.encode()
_INSIGHTS_TAIL = b"/audience_insights"
_JSON_FIELDS = b"content-type: application/json\r\ncontent-length: %d\r\n%s"


class Checked(NamedTuple):
    """A request whose route and parameters have been checked: what it reads, once its token may
    read ``ad_account_id`` (None: an operation that reads only what the token covers, given the
    token's claims). Remembered per (path, query), so a repeated request skips the checks.

    Bound methods and an argument tuple rather than closures: a request never seen before (the
    usual one when each advertiser reads its own few documents) builds one of these, and making
    two partials and a closure per request measured a fifth of the checks' cost.
    """

    operation: Operation
    ad_account_id: str | None
    #: ``read(*arguments)``, or ``read(claims, *arguments)`` when ``with_claims``.
    read: Callable[..., Awaitable[bytes]]
    #: ``at_hand(*arguments)``: the answer if it can be had without a coroutine (a cached
    #: document, or one read now from a format-2 snapshot; an error answer is raised); else None.
    at_hand: Callable[..., bytes | None]
    arguments: tuple[Any, ...]
    with_claims: bool = False


#: An operation checks a request's path segments (after /v5/ad_accounts/) and query.
Operation = Callable[["DataApi", list[str], "Query"], Checked]
#: Checked requests remembered per worker from their second sighting on (forgotten all at once
#: when full; so are the hashes of those seen once), those whose raw path
#: and query together are at most MAX_CHECKED_KEY bytes (every request the API defines is shorter):
#: a flood of long distinct queries is checked each time, never kept (10,000 of 15 KB queries
#: once held 140 MB).
CHECKED_CACHE_SIZE = 10_000
MAX_CHECKED_KEY = 256
#: Parsed query strings remembered per worker (the operations read them, never change them).
QUERY_CACHE_SIZE = 1_000


class DataApi:
    """ASGI app for every path under ``/v5/ad_accounts/``."""

    def __init__(self, documents: Documents, tokens: TokenService, limiter: Limiter) -> None:
        self.documents = documents
        self.tokens = tokens
        self.limiter = limiter
        # The in-memory storages decide at once: called directly, they spare a coroutine per request.
        self._spend: Callable[[str], Decision] | None = getattr(limiter, "spend", None)
        self._checked: dict[tuple[object, bytes], Checked] = {}
        self._sightings = Sightings(CHECKED_CACHE_SIZE)
        #: Parsed query strings: far fewer distinct than paths (an insight type, a date), so a
        #: request for a path never seen still finds its query parsed.
        self._queries: dict[bytes, Query] = {}
        #: ``audience_insights`` queries that passed the checks, and what they ask (its type and
        #: date): an account's request never seen before mostly has a query seen many times.
        self._insights_queries: dict[bytes, tuple[AudienceInsightType, dt.date | None]] = {}

    def _query(self, query_string: bytes) -> Query:
        query = self._queries.get(query_string)
        if query is None:
            query = _query(query_string)
            if len(query_string) <= MAX_CHECKED_KEY:
                if len(self._queries) >= QUERY_CACHE_SIZE:
                    self._queries.clear()
                self._queries[query_string] = query
        return query

    def _insights_at_once(self, key: tuple[bytes | str, bytes]) -> Checked | None:
        """The usual request never seen before — an ``audience_insights`` of an account not
        asked for yet, with a query checked before — checked by its raw path's two ends and id and one
        lookup of its query, not split, routed and parsed (a fifth of the instructions a cold
        request had beyond a hot one); None for any other request: it takes the general way."""
        arguments = self._insights_queries.get(key[1])
        raw = key[0]
        if (
            arguments is None
            or type(raw) is not bytes
            or not raw.startswith(_INSIGHTS_HEAD)
            or not raw.endswith(_INSIGHTS_TAIL)
        ):
            return None
        ad_account_id = raw[len(_INSIGHTS_HEAD) : -len(_INSIGHTS_TAIL)]
        if not 0 < len(ad_account_id) <= AD_ACCOUNT_ID_MAX_LENGTH or not ad_account_id.isdigit():
            return None  # bytes.isdigit: ASCII digits only
        return self._insights_checked(ad_account_id.decode("ascii"), *arguments)

    def _note_insights_query(self, query_string: bytes, checked: Checked) -> None:
        """Keep what a checked ``audience_insights`` query asks, for :meth:`_insights_at_once`
        (bounded as the parsed queries are)."""
        if len(query_string) > MAX_CHECKED_KEY:
            return
        if len(self._insights_queries) >= QUERY_CACHE_SIZE:
            self._insights_queries.clear()
        self._insights_queries[query_string] = checked.arguments[1:]

    def _remember(self, key: tuple[bytes | str, bytes], checked: Checked) -> None:
        """Keep a checked request for its next time, from its second sighting on (a request seen
        once is usually never seen again: see :mod:`~pinsights.server.sightings`)."""
        if len(key[0]) + len(key[1]) > MAX_CHECKED_KEY or not self._sightings.again(key):
            return
        if len(self._checked) >= CHECKED_CACHE_SIZE:
            self._checked.clear()
        self._checked[key] = checked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.respond(scope, send)

    async def respond(self, scope: Scope, send: Send) -> tuple[int, int]:
        """Answer one request; returns the status and the number of body bytes sent."""
        head = scope["method"] == "HEAD"
        rate_fields = b""
        try:
            # keyed by the raw path: an encoded slash must not find the plain path's entry
            key = (scope.get("raw_path") or scope["path"], scope["query_string"])
            checked = self._checked.get(key)
            segments: list[str] = []
            if checked is None:
                checked = self._insights_at_once(key)
                if checked is not None:
                    self._remember(key, checked)
            if checked is None:
                found = _segments(scope)
                operation = _route(found) if found is not None else None
                if operation is None or found is None:
                    raise NotFound(NO_SUCH_ROUTE)
                segments = found
            else:
                operation = checked.operation
            scope[OPERATION_KEY] = OPERATION_IDS[operation]
            if scope["method"] not in ("GET", "HEAD"):
                raise MethodNotAllowed(ALLOWED_METHODS)
            claims = self.tokens.verify(_bearer_token(scope))
            scope[CLIENT_ID_KEY] = claims.client_id
            spend = self._spend
            if spend is not None:
                decision = spend(claims.client_id)
            else:
                decision = await self.limiter.take(claims.client_id)
            rate_fields = decision.header_fields()
            if not decision.allowed:
                raise RateLimited(decision.retry_after)
            if READ_SCOPE not in claims.scopes:
                raise MissingScope(READ_SCOPE)
            if checked is None:
                checked = operation(self, segments, self._query(key[1]))
                self._remember(key, checked)
                if operation is DataApi.audience_insights:
                    self._note_insights_query(key[1], checked)
            if checked.ad_account_id is not None and not claims.may_read(checked.ad_account_id):
                raise AccountForbidden()
            arguments = checked.arguments
            body = checked.at_hand(*arguments)
            if body is None:
                if checked.with_claims:
                    body = await checked.read(claims, *arguments)
                else:
                    body = await checked.read(*arguments)
        except ApiError as error:
            extra = b"".join(
                b"%s: %s\r\n" % (name.lower().encode(), value.encode())
                for name, value in error.headers.items()
            )
            return await _send(send, error.status, error.body(), rate_fields + extra, head)
        except Exception:
            logger.exception("unexpected error on %s %s", scope["method"], scope["path"])
            internal = InternalError()
            return await _send(send, internal.status, internal.body(), b"", head)
        return await _send(send, 200, body, rate_fields, head)

    # --- the operations: each checks its parameters and says what to read -----------------------

    def audience_insights(self, path: list[str], query: Query) -> Checked:
        """``GET …/{ad_account_id}/audience_insights?audience_insight_type=…[&date=…]``"""
        ad_account_id = _ad_account_id(path[0])
        insight_type = _enum(query, "audience_insight_type", AudienceInsightType)
        return self._insights_checked(ad_account_id, insight_type, _date(query))

    def _insights_checked(
        self, ad_account_id: str, insight_type: AudienceInsightType, date: dt.date | None
    ) -> Checked:
        documents = self.documents
        return Checked(
            DataApi.audience_insights,
            ad_account_id,
            documents.insights,
            documents.cached_insights,
            (ad_account_id, insight_type, date),
        )

    def audience_definitions(self, path: list[str], query: Query) -> Checked:
        """``GET …/{ad_account_id}/insights/audiences``"""
        ad_account_id = _ad_account_id(path[0])
        return Checked(
            DataApi.audience_definitions,
            ad_account_id,
            self.documents.definitions,
            _nothing_at_hand,
            (ad_account_id,),
        )

    def category(self, path: list[str], query: Query) -> Checked:
        """``GET …/{ad_account_id}/insights/audiences/{scope}/{type}/{category_id}[?sort=RATIO]``"""
        ad_account_id = _ad_account_id(path[0])
        scope = _enum_value("scope", path[3], AudienceDefinitionScope)
        audience_type = _enum_value("type", path[4], AudienceDefinitionType)
        category_id = path[5]
        if len(category_id) > AD_ACCOUNT_ID_MAX_LENGTH or not _CATEGORY_ID.fullmatch(category_id):
            raise InvalidParameter("category_id", "must be digits, at most 18")
        if "sort" in query:
            _enum(query, "sort", AudienceCategorySort)
        # None for PINTEREST + ENGAGEMENT, an audience that is not offered: still 403/29 for an
        # account that does not exist, before that 404, as on every route.
        insight_type = INSIGHT_TYPE_OF_DEFINITION.get((scope, audience_type))
        return Checked(
            DataApi.category,
            ad_account_id,
            self.documents.category,
            _nothing_at_hand,
            (ad_account_id, insight_type, category_id),
        )

    def ad_accounts_list(self, path: list[str], query: Query) -> Checked:
        """``GET /v5/ad_accounts[?bookmark=…][&page_size=1..250][&include_shared_accounts=…]``

        Every account the token covers, in id order; ``include_shared_accounts`` is checked and
        has no effect (a pinsights token covers accounts, none of them shared by another user).
        """
        bookmark = _single(query, "bookmark")  # empty: none, as some clients send the first time
        after = decode_bookmark(bookmark) if bookmark else None
        page_size = _page_size(query)
        shared = _single(query, "include_shared_accounts")
        if shared is not None and shared not in _BOOLEANS:
            raise InvalidParameter("include_shared_accounts", "must be true or false")
        return Checked(
            DataApi.ad_accounts_list,
            None,
            _accounts_page,
            _nothing_at_hand,
            (self.documents, after, page_size),
            with_claims=True,
        )

    def ad_account(self, path: list[str], query: Query) -> Checked:
        """``GET /v5/ad_accounts/{ad_account_id}``"""
        ad_account_id = _ad_account_id(path[0])
        return Checked(
            DataApi.ad_account,
            ad_account_id,
            self.documents.account,
            _nothing_at_hand,
            (ad_account_id,),
        )


def _nothing_at_hand(*arguments: Any) -> None:
    return None


def _accounts_page(
    claims: Claims, documents: Documents, after: str | None, page_size: int
) -> Awaitable[bytes]:
    """A page of the accounts ``claims`` cover (the one read whose answer depends on the token)."""
    return documents.accounts_page(claims.ad_accounts, after, page_size)


#: The contract's operationId of each operation (the metrics' label).
OPERATION_IDS: dict[Operation, str] = {
    DataApi.audience_insights: "audience_insights_get",
    DataApi.audience_definitions: "audience_insights_scope_and_type_get",
    DataApi.category: "audiences_insights_category_list",
    DataApi.ad_accounts_list: "ad_accounts_list",
    DataApi.ad_account: "ad_accounts_get",
}


def _segments(scope: Scope) -> list[str] | None:
    """The path segments after ``/v5/ad_accounts/``, each percent-decoded on its own.

    uvicorn decodes the whole path before splitting it, which would make ``1001%2Finsights`` two
    segments: an encoded slash is part of a value (and so no route), never a separator. None when
    the raw path is not under the prefix at all (``/v5/ad_accounts%2F1001/…``).
    """
    raw: bytes | None = scope.get("raw_path")
    if raw is None or b"%" not in raw:  # nearly always: nothing to decode
        if scope["path"] == LIST_PATH:
            return []
        return scope["path"][len(PREFIX) :].split("/")
    text = raw.decode("latin-1")
    if not text.startswith(PREFIX):
        return None
    return [unquote(segment) for segment in text[len(PREFIX) :].split("/")]


def _route(segments: list[str]) -> Operation | None:
    """Which operation a path names (by shape only: parameter values are checked later)."""
    match segments:
        case []:
            return DataApi.ad_accounts_list
        case [_]:
            return DataApi.ad_account
        case [_, "audience_insights"]:
            return DataApi.audience_insights
        case [_, "insights", "audiences"]:
            return DataApi.audience_definitions
        case [_, "insights", "audiences", _, _, _]:
            return DataApi.category
    return None


def _bearer_token(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise Unauthenticated("The Authorization header is not 'Bearer <token>'.")
            return token
    raise Unauthenticated("No bearer token.")


def _query(query_string: bytes) -> Query:
    text = query_string.decode("latin-1")
    query: Query = {}
    if "%" in text or "+" in text:  # escapes to decode: the standard parser
        pairs = parse_qsl(text, keep_blank_values=True)
    else:  # the common case, a few times cheaper
        pairs = []
        for part in text.split("&"):
            if part:
                name, _, value = part.partition("=")
                pairs.append((name, value))
    for name, value in pairs:
        query.setdefault(name, []).append(value)
    return query


def _single(query: Query, name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise InvalidParameter(name, "must be given once")
    return values[0]


def _ad_account_id(value: str) -> str:
    if len(value) > AD_ACCOUNT_ID_MAX_LENGTH or not _ACCOUNT_ID.fullmatch(value):
        raise InvalidParameter("ad_account_id", "must be digits, at most 18")
    return value


def _enum(query: Query, name: str, kind: type[E]) -> E:
    value = _single(query, name)
    if value is None:
        raise InvalidParameter(name, "is required")
    return _enum_value(name, value, kind)


def _enum_value(name: str, value: str, kind: type[E]) -> E:
    member = kind._value2member_map_.get(value)  # what kind(value) does, minus its overhead
    if member is None:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidParameter(name, f"must be one of {allowed}")
    return member  # type: ignore[return-value]


def _page_size(query: Query) -> int:
    value = _single(query, "page_size")
    if value is None:
        return PAGE_SIZE_DEFAULT
    if not _PAGE_SIZE.fullmatch(value) or not 1 <= int(value) <= PAGE_SIZE_MAX:
        raise InvalidParameter("page_size", f"must be an integer from 1 to {PAGE_SIZE_MAX}")
    return int(value)


def _date(query: Query) -> dt.date | None:
    value = _single(query, "date")
    if value is None:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter("date", "must be a date YYYY-MM-DD") from None


async def _send(send: Send, status: int, body: bytes, fields: bytes, head: bool) -> tuple[int, int]:
    """Send a JSON answer with ``fields`` (header lines, ``name: value\\r\\n``) besides its type
    and length: in one write where the server allows it (:func:`~.protocol.write_response`),
    else as the two ASGI messages."""
    sent = b"" if head else body
    fields = _JSON_FIELDS % (len(body), fields)
    if not write_response(send, status, fields, sent):
        headers = [tuple(line.split(b": ", 1)) for line in fields.split(b"\r\n") if line]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": sent})
    return status, len(sent)
