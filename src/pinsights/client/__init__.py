"""Python client for the Audience Insights and ad accounts endpoints of the Pinterest API v5 and
pinsights servers.

>>> from pinsights.client import Client
>>> with Client(base_url="http://127.0.0.1:8000/v5", access_token="…") as client:  # doctest: +SKIP
...     insights = client.audience_insights_get("123", "YOUR_ENGAGED_AUDIENCE")

The public names are re-exported here; the modules behind them are private. Responses are the wire
models of :mod:`pinsights.contract` (the three response models as subclasses that add pandas'
``to_dataframe()``), so ``response.model_dump(mode="json")`` is the wire document.
See ``docs/client.md`` for the full guide.
"""

from ._async import AsyncClient
from ._auth import BearerToken, ClientCredentialsAuth, RefreshTokenAuth
from ._base import (
    ACCESS_TOKEN_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    RetryPolicy,
)
from ._errors import (
    BadRequestError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    PinsightsAPIError,
    PinsightsConnectionError,
    PinsightsDecodeError,
    PinsightsError,
    PinsightsTimeoutError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)
from ._frames import (
    AudienceDefinitionResponse,
    AudienceInsightCategoryArrayResponse,
    AudienceInsightsResponse,
    compare,
)
from ._sync import Client

__all__ = [
    "ACCESS_TOKEN_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "AsyncClient",
    "AudienceDefinitionResponse",
    "AudienceInsightCategoryArrayResponse",
    "AudienceInsightsResponse",
    "BadRequestError",
    "BearerToken",
    "Client",
    "ClientCredentialsAuth",
    "ForbiddenError",
    "InvalidArgumentError",
    "NotFoundError",
    "PinsightsAPIError",
    "PinsightsConnectionError",
    "PinsightsDecodeError",
    "PinsightsError",
    "PinsightsTimeoutError",
    "RateLimitedError",
    "RefreshTokenAuth",
    "RetryPolicy",
    "ServerError",
    "UnauthorizedError",
    "compare",
]
