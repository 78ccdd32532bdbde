"""The application factory: wires the store, auth, rate limits and both halves of the API together.

``create_app()`` takes a :class:`ServerSettings` (or reads one from ``PINSIGHTS_*``, which is how each
uvicorn worker process gets its own) and returns one ASGI app:

    Router ─┬─ /v5/ad_accounts/… → DataApi (the hot path, pinsights.server.api)
            └─ everything else   → FastAPI (tokens, health, docs; pinsights.server.web)

with every HTTP request written to the access log (pinsights.server.accesslog).
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

from pinsights.server.accesslog import AccessLog
from pinsights.server.api import PREFIX, DataApi, Receive, Scope, Send
from pinsights.server.clients import ClientRegistry
from pinsights.server.documents import Documents
from pinsights.server.ratelimit import RateLimiter
from pinsights.server.settings import ServerSettings
from pinsights.server.tokens import TokenService, load_signing_key
from pinsights.server.web import WebServices, create_web_app
from pinsights.store import Store


class Router:
    """Sends the data operations to the lean ASGI app, everything else to FastAPI; logs both."""

    def __init__(self, data_api: DataApi, web: Any, access_log: AccessLog | None) -> None:
        self.data_api = data_api
        self.web = web
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.web(scope, receive, send)
        elif not scope["path"].startswith(PREFIX):
            if self.access_log is None:
                await self.web(scope, receive, send)
            else:
                await self.access_log.observe(self.web, scope, receive, send)
        elif self.access_log is None:
            await self.data_api.respond(scope, send)
        else:
            started = time.perf_counter()
            status, size = 500, 0
            try:
                status, size = await self.data_api.respond(scope, send)
            finally:
                self.access_log.record(scope, status, size, started)


def create_app(settings: ServerSettings | None = None) -> Router:
    """Build the ASGI application for one worker process."""
    settings = settings or ServerSettings()
    secret = settings.secret.get_secret_value() if settings.secret else None
    registry = ClientRegistry(settings.store)
    tokens = TokenService(load_signing_key(settings.store, secret), is_revoked=registry.is_revoked)
    limiter = RateLimiter(settings.limit)
    documents = Documents(Store(settings.store), settings.document_cache_size)
    web = create_web_app(
        WebServices(
            documents=documents,
            registry=registry,
            tokens=tokens,
            limiter=limiter,
            token_ttl=settings.token_ttl,
        )
    )
    access_log = AccessLog(sys.stderr) if settings.access_log else None
    app = Router(DataApi(documents, tokens, limiter), web, access_log)
    # Everything built so far lives as long as the process: keep it out of the cyclic collector's
    # full passes, which otherwise scan every imported module's objects and show up as p99 spikes.
    gc.collect()
    gc.freeze()
    return app
