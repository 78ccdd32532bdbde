"""The asyncio/trio client: :class:`BaseClient` plus an :class:`httpx.AsyncClient` and ``anyio.sleep``."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import anyio
import httpx

from pinsights.contract import (
    AdAccount,
    AdAccountsPage,
    AudienceDefinitionScope,
    AudienceDefinitionType,
    AudienceInsightType,
)

from ._base import (
    CATEGORY_LIST_DEPRECATION,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    BaseClient,
    ModelT,
    _Call,
)
from ._errors import PinsightsAPIError
from ._frames import (
    AudienceDefinitionResponse,
    AudienceInsightCategoryArrayResponse,
    AudienceInsightsResponse,
)


class AsyncClient(BaseClient):
    """The async twin of :class:`Client`: same arguments, same behaviour, awaitable methods.

    ``base_url`` defaults to ``$PINSIGHTS_BASE_URL``, else ``https://api.pinterest.com/v5``; the
    token to ``$PINTEREST_ACCESS_TOKEN`` unless ``access_token=`` or an ``auth=`` flow
    (:class:`ClientCredentialsAuth`, :class:`RefreshTokenAuth`) is given. 429 and 5xx answers and
    connection failures are retried ``max_retries`` times (see :class:`RetryPolicy`). Use it with
    ``async with``, or await :meth:`aclose`, to release its connections. Runs on asyncio or trio.

    ``transport`` is handed to httpx (e.g. :class:`httpx.MockTransport` in tests).
    """

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            access_token,
            base_url=base_url,
            auth=auth,
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_max_backoff=retry_max_backoff,
            max_retry_after=max_retry_after,
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=self._auth,
            headers=self._headers,
            timeout=self.timeout,
            transport=transport,
        )

    async def audience_insights_get(
        self,
        ad_account_id: str | int,
        audience_insight_type: AudienceInsightType | str = AudienceInsightType.YOUR_TOTAL_AUDIENCE,
        *,
        date: dt.date | str | None = None,
    ) -> AudienceInsightsResponse:
        """The insights document of one audience of an ad account (newest snapshot, or ``date``).

        ``date`` is a pinsights extension that selects an older retained snapshot.
        """
        return await self._request(self._insights_call(ad_account_id, audience_insight_type, date))

    async def audience_insights_scope_and_type_get(
        self, ad_account_id: str | int
    ) -> AudienceDefinitionResponse:
        """Which audiences (scope, type, date) of an ad account have insights to read."""
        return await self._request(self._definitions_call(ad_account_id))

    async def audiences_insights_category_list(
        self,
        ad_account_id: str | int,
        scope: AudienceDefinitionScope | str,
        type: AudienceDefinitionType | str,
        category_id: str | int,
    ) -> AudienceInsightCategoryArrayResponse:
        """The subcategories of one category of an audience, uncapped (deprecated upstream)."""
        warnings.warn(CATEGORY_LIST_DEPRECATION, DeprecationWarning, stacklevel=2)
        return await self._request(
            self._category_list_call(ad_account_id, scope, type, category_id)
        )

    async def ad_accounts(self, *, page_size: int = PAGE_SIZE_MAX) -> AsyncIterator[AdAccount]:
        """Every ad account the token can read, following ``ad_accounts/list``'s bookmarks
        page after page (``page_size`` accounts a request) until the last."""
        bookmark: str | None = None
        seen: set[str] = set()
        while True:
            page = await self.ad_accounts_list(bookmark=bookmark, page_size=page_size)
            for account in page.items:
                yield account
            bookmark = self._next_bookmark(page, seen)
            if bookmark is None:
                return

    async def ad_accounts_list(
        self,
        *,
        bookmark: str | None = None,
        page_size: int = PAGE_SIZE_DEFAULT,
        include_shared_accounts: bool | None = None,
    ) -> AdAccountsPage:
        """One page of the ad accounts the token can read; pass its ``bookmark`` for the next."""
        return await self._request(
            self._ad_accounts_page_call(bookmark, page_size, include_shared_accounts)
        )

    async def ad_account(self, ad_account_id: str | int) -> AdAccount:
        """One ad account (``ad_accounts/get``): its name, country and currency where known."""
        return await self._request(self._ad_account_call(ad_account_id))

    async def _request(self, call: _Call[ModelT]) -> ModelT:
        attempt = 0
        while True:
            try:
                response = await self._http.get(call.path, params=call.params)
            except (httpx.TransportError, PinsightsAPIError) as exc:
                delay = self._retry_delay_or_raise(exc, attempt)
            else:
                if response.is_success:
                    return self._parse(call, response)
                delay = self._retry_delay_or_raise(response, attempt)
            await anyio.sleep(delay)
            attempt += 1

    async def aclose(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
