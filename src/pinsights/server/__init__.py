"""The pinsights HTTP server: the v5 Audience Insights API with OAuth2 client credentials.

``create_app`` builds the ASGI application; ``pinsights serve`` runs it under uvicorn. The modules,
in the order a request meets them: :mod:`.accesslog`, :mod:`.app` (routing), :mod:`.api` (data
operations) or :mod:`.web` (tokens, health, docs), :mod:`.tokens` and :mod:`.clients` (auth),
:mod:`.ratelimit`, :mod:`.documents` (the store and its LRU), :mod:`.errors`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinsights.server.app import create_app
    from pinsights.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]

#: Loaded when first asked for, not with the package: the CLI's ``clients`` and ``keys`` commands
#: import modules of this package (the client registry, the keyring) and must not pay for the web
#: stack (FastAPI, uvicorn: ~0.5 CPU s in a fresh process) they never use.
_LAZY = {"create_app": "pinsights.server.app", "ServerSettings": "pinsights.server.settings"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
