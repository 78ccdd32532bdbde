"""Everything but the data operations, as a FastAPI app: tokens, health, OpenAPI, docs, dashboard.

These endpoints are few and cold, so they get FastAPI's conveniences; the data operations, which are
hot, are :mod:`pinsights.server.api`. Both render errors through :mod:`pinsights.server.errors`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from pinsights import __version__
from pinsights.server.api import CLIENT_ID_KEY
from pinsights.server.clients import Client, ClientRegistry
from pinsights.server.dashboard import install_dashboard
from pinsights.server.documents import Documents
from pinsights.server.errors import (
    BodyIncomplete,
    InvalidParameter,
    NoSigningKey,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    install_error_handlers,
)
from pinsights.server.keys import KeyringError
from pinsights.server.logins import LoginGuard
from pinsights.server.openapi import served_json
from pinsights.server.ratelimit import Limiter
from pinsights.server.tokens import TokenService, parse_scopes
from pinsights.store import pause_point

FORM = "application/x-www-form-urlencoded"
#: The token request's form is a few dozen bytes; a larger body is refused unread (413).
MAX_FORM_BYTES = 16 * 1024
BASIC_CHALLENGE = 'Basic realm="pinsights"'


@dataclass(frozen=True)
class WebServices:
    """What the web endpoints need, built once per worker by the app factory."""

    documents: Documents
    registry: ClientRegistry
    tokens: TokenService
    limiter: Limiter
    token_ttl: int
    #: The server's URL as clients see it (``--public-url``); None: the OpenAPI URLs are relative.
    public_url: str | None = None
    logins: LoginGuard = field(default_factory=LoginGuard)


def create_web_app(services: WebServices) -> FastAPI:
    app = FastAPI(
        title="pinsights",
        version=__version__,
        openapi_url=None,  # the contract-based document below replaces FastAPI's own
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)

    @app.post("/v5/oauth/token")
    async def oauth_token(request: Request) -> JSONResponse:
        """OAuth2 client credentials: HTTP Basic client authentication, form-encoded body."""
        client_id, secret = _basic_credentials(request)
        client = await _authenticate(services, client_id, secret, request)
        request.scope[CLIENT_ID_KEY] = client.client_id
        decision = await services.limiter.take(client.client_id)
        request.state.ratelimit_headers = decision.headers()
        if not decision.allowed:
            raise RateLimited(decision.retry_after)
        form = await _form(request)
        grant_type = _single(form, "grant_type")
        if grant_type is None:
            raise InvalidParameter("grant_type", "is required")
        if grant_type != "client_credentials":
            raise InvalidParameter("grant_type", "must be client_credentials")
        scopes = _scopes(_single(form, "scope"))
        try:
            token = services.tokens.issue(
                client.client_id, scopes, client.ad_accounts, services.token_ttl, registered=True
            )
        except KeyringError:  # the reason is logged where the key file was refused
            raise NoSigningKey() from None
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": services.token_ttl,
            "scope": ",".join(scopes),
            "response_type": "client_credentials",
        }
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **decision.headers()}
        return JSONResponse(body, headers=headers)

    @app.api_route("/healthz", methods=["GET", "HEAD"])  # load balancers check with HEAD
    async def health() -> JSONResponse:
        newest = services.documents.newest_date()
        return JSONResponse(
            {"status": "ok", "snapshot_date": newest.isoformat() if newest else None}
        )

    @app.get("/v5/openapi.json")
    async def openapi() -> Response:
        return Response(served_json(services.public_url), media_type="application/json")

    install_dashboard(app)
    return app


async def _authenticate(
    services: WebServices, client_id: str, secret: str, request: Request
) -> Client:
    """The client these credentials belong to, or 401; bounded by the login guard (429, 503).

    A secret this worker verified before is recognised at once; anything else needs argon2,
    which runs off the event loop, only while the address and the client id have failures to
    spare, and only in one of the guard's few slots.
    """
    client = services.registry.recognise(client_id, secret)
    if client is not None:
        return client
    address = request.client.host if request.client else "unknown"
    services.logins.admit(address, client_id)
    with services.logins.checking():
        client = await run_in_threadpool(_check_secret, services.registry, client_id, secret)
    if client is None:
        services.logins.failed(address, client_id)
        raise Unauthenticated("Invalid client credentials.", challenge=BASIC_CHALLENGE)
    return client


#: The test hook's step (``store.PAUSE_ENV``) holding a secret check in flight.
CHECK_STEP = "credential-check"


def _check_secret(registry: ClientRegistry, client_id: str, secret: str) -> Client | None:
    """The argon2 check, run in a worker thread. A test may hold it there (``PINSIGHTS_TEST_PAUSE=
    credential-check:<fd>``) to know a check is in flight without timing one."""
    pause_point(CHECK_STEP)
    return registry.authenticate(client_id, secret)


def _basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated(
            "Client authentication (HTTP Basic) is required.", challenge=BASIC_CHALLENGE
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(
            "Malformed HTTP Basic credentials.", challenge=BASIC_CHALLENGE
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise Unauthenticated("Malformed HTTP Basic credentials.", challenge=BASIC_CHALLENGE)
    return client_id, secret


async def _form(request: Request) -> dict[str, list[str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise InvalidParameter("Content-Type", f"must be {FORM}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise PayloadTooLarge(MAX_FORM_BYTES)
    body = b""
    try:
        async for chunk in request.stream():  # read no further than the limit, whatever declared
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise PayloadTooLarge(MAX_FORM_BYTES)
    except ClientDisconnect:  # the protocol's body timeout (408), or the client left
        raise BodyIncomplete() from None
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise InvalidParameter("body", "is not form-encoded") from None
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


def _single(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise InvalidParameter(name, "must be given once")
    return values[0]


def _scopes(requested: str | None) -> list[str]:
    """Requested scopes (space- or comma-separated, default ads:read), all known to the v5 API."""
    try:
        return parse_scopes(requested)
    except ValueError as error:
        raise InvalidParameter("scope", str(error)) from None
