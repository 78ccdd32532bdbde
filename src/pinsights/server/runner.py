"""Running the server: uvicorn with the settings passed to every worker through the environment."""

from __future__ import annotations

import os

import uvicorn

from pinsights.server.settings import ServerSettings
from pinsights.server.tokens import load_signing_key

APP_FACTORY = "pinsights.server.app:create_app"


def run(settings: ServerSettings) -> None:
    """Serve until interrupted.

    The signing key file (when no ``PINSIGHTS_SECRET`` is set) is created here, before any worker
    starts, so that every worker signs and verifies with the same key. uvicorn's own access log is
    off: :class:`~pinsights.server.accesslog.AccessLog` writes JSON lines instead.
    """
    settings.store.mkdir(parents=True, exist_ok=True)
    secret = settings.secret.get_secret_value() if settings.secret else None
    load_signing_key(settings.store, secret)
    os.environ.update(settings.to_env())
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        server_header=False,
        log_level="info",
    )
