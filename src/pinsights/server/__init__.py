"""The pinsights HTTP server: the v5 Audience Insights API with OAuth2 client credentials.

``create_app`` builds the ASGI application; ``pinsights serve`` runs it under uvicorn. The modules,
in the order a request meets them: :mod:`.accesslog`, :mod:`.app` (routing), :mod:`.api` (data
operations) or :mod:`.web` (tokens, health, docs), :mod:`.tokens` and :mod:`.clients` (auth),
:mod:`.ratelimit`, :mod:`.documents` (the store and its LRU), :mod:`.errors`.
"""

from pinsights.server.app import create_app
from pinsights.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
