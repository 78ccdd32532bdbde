"""The application factory: wires the store, auth, rate limits and both halves of the API together.

``create_app()`` takes a :class:`ServerSettings` (or reads one from ``PINSIGHTS_*``, which is how each
uvicorn worker process gets its own) and returns one ASGI app:

    Router ─┬─ /v5/ad_accounts[/…] → DataApi (the hot path, pinsights.server.api)
            ├─ /metrics          → Metrics (pinsights.server.metrics)
            └─ everything else   → FastAPI (tokens, health, docs; pinsights.server.web)

with every HTTP request noted in the journal (pinsights.server.journal), which writes the access
log (pinsights.server.accesslog) and counts the metrics in batches.
"""

from __future__ import annotations

import gc
import sys
import time
from typing import TYPE_CHECKING, Any

from pinsights.server.accesslog import AccessLog
from pinsights.server.api import LIST_PATH, PREFIX, DataApi, Receive, Scope, Send
from pinsights.server.clients import ClientRegistry, dummy_hash
from pinsights.server.documents import Documents
from pinsights.server.journal import Journal, Sink
from pinsights.server.keys import keyring_source
from pinsights.server.logins import LoginGuard
from pinsights.server.ratelimit import RateLimit, open_limiter
from pinsights.server.settings import ServerSettings
from pinsights.server.tokens import TokenService
from pinsights.server.web import WebServices, create_web_app
from pinsights.store import Store

if TYPE_CHECKING:
    from pinsights.server.metrics import Metrics


class Router:
    """Sends the data operations to the lean ASGI app, ``/metrics`` to the metrics, everything
    else to FastAPI; every answered request goes to the journal (access log and metrics)."""

    def __init__(
        self, data_api: DataApi, web: Any, journal: Journal | None, metrics: Metrics | None
    ) -> None:
        self.data_api = data_api
        self.web = web
        self.journal = journal
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.web(scope, receive, send)
            return
        path = scope["path"]
        data = path.startswith(PREFIX) or path == LIST_PATH
        if self.journal is None:
            await (self.data_api.respond(scope, send) if data else self.web(scope, receive, send))
            return
        started = time.perf_counter()
        status, size = 500, 0
        try:
            if data:
                status, size = await self.data_api.respond(scope, send)
            else:
                app = self.metrics if self.metrics and path == self.metrics.path else self.web
                status, size = await _observed(app, scope, receive, send)
        finally:
            self.journal.add(scope, status, size, started)


async def _observed(app: Any, scope: Scope, receive: Receive, send: Send) -> tuple[int, int]:
    """Run an ASGI app with a ``send`` that notes the status and body size it answers."""
    status, size = 500, 0

    async def observing_send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))
        await send(message)

    await app(scope, receive, observing_send)
    return status, size


def create_app(settings: ServerSettings | None = None) -> Router:
    """Build the ASGI application for one worker process."""
    settings = settings or ServerSettings()
    secret = settings.secret.get_secret_value() if settings.secret else None
    registry = ClientRegistry(settings.store)
    dummy_hash()  # made now, so that the first unknown client's login costs what a known one's does
    tokens = TokenService(
        keyring_source(settings.store, secret),
        client_allowed=registry.is_active,
        cache_size=settings.token_cache_size,
    )
    limiter = open_limiter(
        settings.rate_limit_storage, settings.limit, shared_table=settings.rate_limit_table
    )
    documents = Documents(Store(settings.store), settings.document_cache_size)
    metrics = None
    if settings.metrics:
        # imported here, not above: prometheus-client must not be imported before `pinsights
        # serve` has prepared the environment (runner.worker_files)
        from pinsights.server.metrics import Metrics

        metrics = Metrics(documents)
    web = create_web_app(
        WebServices(
            documents=documents,
            registry=registry,
            tokens=tokens,
            limiter=limiter,
            token_ttl=settings.token_ttl,
            public_url=settings.public_url,
            logins=LoginGuard(
                max_checks=settings.max_credential_checks,
                failed_logins=RateLimit.parse(settings.failed_login_limit),
            ),
        )
    )
    sinks: list[Sink] = []
    if settings.access_log:
        sinks.append(AccessLog(sys.stderr).write)
    if metrics is not None:
        sinks.append(metrics.count)
    journal = Journal(sinks) if sinks else None
    if metrics is not None and journal is not None:
        metrics.before_scrape = journal.flush
    app = Router(DataApi(documents, tokens, limiter), web, journal, metrics)
    # Everything built so far lives as long as the process: keep it out of the cyclic collector's
    # full passes, which otherwise scan every imported module's objects and show up as p99 spikes.
    gc.collect()
    gc.freeze()
    return app
