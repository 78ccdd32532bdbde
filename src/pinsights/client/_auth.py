"""Bearer-token auth for the client: a fixed token, or one fetched from ``/oauth/token`` and renewed.

These are :class:`httpx.Auth` flows, so one implementation serves :class:`~pinsights.client.Client`
and :class:`~pinsights.client.AsyncClient` alike: httpx sends the token request the flow yields on
whichever transport the client uses. A token is renewed *before* it expires (so a long job never sees
a 401 for a stale token), and only one renewal runs at a time: a threading lock guards the sync path
and an anyio lock the async one, so a hundred concurrent requests cause one token request, not a
hundred.

Neither the token nor the client secret appears in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator

import anyio
import httpx
from pydantic import ValidationError

from pinsights.contract import OauthAccessTokenResponse

from ._errors import InvalidArgumentError, PinsightsDecodeError, error_from_response

#: Renew when less than this share of a token's lifetime is left (capped by ``_MAX_MARGIN``).
_MARGIN_SHARE = 0.1
_MAX_MARGIN = 60.0


class BearerToken(httpx.Auth):
    """A fixed access token sent as ``Authorization: Bearer …`` (what ``access_token=`` builds)."""

    def __init__(self, access_token: str) -> None:
        if not access_token:
            raise InvalidArgumentError("access_token is empty")
        self._access_token = access_token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._access_token}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(access_token='***')"


class _OAuthTokenFlow(httpx.Auth):
    """Shared machinery of the token-endpoint flows: cache, renew early, one renewal at a time."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None,
        scope: str | None,
        clock: Callable[[], float],
    ) -> None:
        if not client_id or not client_secret:
            raise InvalidArgumentError("client_id and client_secret are both required")
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self.scope = scope
        self._clock = clock
        self._access_token: str | None = None
        self._renew_at = 0.0
        self._sync_lock = threading.Lock()
        self._async_lock = anyio.Lock()

    def bind_base_url(self, base_url: str) -> None:
        """Use ``{base_url}/oauth/token`` unless a ``token_url`` was given (the client calls this)."""
        if self.token_url is None:
            self.token_url = f"{base_url.rstrip('/')}/oauth/token"

    def invalidate(self) -> None:
        """Forget the cached token, so the next request fetches a new one."""
        self._access_token = None
        self._renew_at = 0.0

    def _grant(self) -> dict[str, str]:
        raise NotImplementedError

    def _needs_token(self) -> bool:
        return self._access_token is None or self._clock() >= self._renew_at

    def _token_request(self) -> httpx.Request:
        if self.token_url is None:
            raise InvalidArgumentError(
                "token_url is not set: pass token_url= or use the auth with a Client"
            )
        credentials = f"{self.client_id}:{self._client_secret}".encode()
        form = self._grant()
        if self.scope:
            form["scope"] = self.scope
        return httpx.Request(
            "POST",
            self.token_url,
            data=form,
            headers={
                "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
                "Accept": "application/json",
            },
        )

    def _accept(self, response: httpx.Response) -> None:
        """Cache the token from a token-endpoint answer, or raise the error it carries."""
        if not response.is_success:
            raise error_from_response(response, redact=self._client_secret)
        try:
            token = OauthAccessTokenResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise PinsightsDecodeError(
                f"POST {response.request.url.path}: the answer is not an OAuth token response"
            ) from exc
        self._remember_extra(token)
        lifetime = max(0.0, float(token.expires_in))
        self._access_token = token.access_token
        self._renew_at = self._clock() + lifetime - min(_MAX_MARGIN, lifetime * _MARGIN_SHARE)

    def _remember_extra(self, token: OauthAccessTokenResponse) -> None:
        """Hook for flows that keep more than the access token from an answer."""

    def _authorize(self, request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {self._access_token}"
        return request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        with self._sync_lock:
            if self._needs_token():
                response = yield self._token_request()
                response.read()
                self._accept(response)
            authorized = self._authorize(request)
        yield authorized

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._async_lock:
            if self._needs_token():
                response = yield self._token_request()
                await response.aread()
                self._accept(response)
            authorized = self._authorize(request)
        yield authorized

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, token_url={self.token_url!r})"


class ClientCredentialsAuth(_OAuthTokenFlow):
    """OAuth2 client-credentials flow (how a pinsights server issues tokens, SPEC §1 Auth).

    ``POST {base}/oauth/token`` with ``grant_type=client_credentials`` and the client id and secret
    as HTTP Basic; the token is reused until shortly before ``expires_in`` runs out, then renewed.

    >>> auth = ClientCredentialsAuth("my-client-id", "my-client-secret")
    >>> client = Client(auth=auth, base_url="http://127.0.0.1:8000/v5")  # doctest: +SKIP
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None = None,
        scope: str | None = "ads:read",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client_id, client_secret, token_url=token_url, scope=scope, clock=clock)

    def _grant(self) -> dict[str, str]:
        return {"grant_type": "client_credentials"}


class RefreshTokenAuth(_OAuthTokenFlow):
    """Pinterest's refresh-token flow: trade a long-lived refresh token for short-lived access tokens.

    ``POST {base}/oauth/token`` with ``grant_type=refresh_token&refresh_token=…`` and the app id and
    secret as HTTP Basic. When the answer carries a new refresh token (Pinterest's continuous
    refresh), it replaces the old one; read it back from :attr:`refresh_token` to persist it.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        token_url: str | None = None,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not refresh_token:
            raise InvalidArgumentError("refresh_token is empty")
        super().__init__(client_id, client_secret, token_url=token_url, scope=scope, clock=clock)
        self._refresh_token = refresh_token

    @property
    def refresh_token(self) -> str:
        """The refresh token to use next time (rotated when the server sends a new one)."""
        return self._refresh_token

    def _grant(self) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": self._refresh_token}

    def _remember_extra(self, token: OauthAccessTokenResponse) -> None:
        rotated = getattr(token, "refresh_token", None)
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
