"""The dashboard at ``/`` and the interactive API docs at ``/v5/docs``: pages served by pinsights alone.

Both are static files: the dashboard's HTML, CSS and JavaScript ship in this package
(``static/dashboard/``), Swagger UI's come from the installed ``swagger-ui-bundle`` package. Nothing
is loaded from another host, so the pages work on a machine without internet, and the
Content-Security-Policy can allow the server's own origin and nothing else: no inline script or
style, no framing, no plugin. The dashboard itself is a client of the public API (it signs in through
``/v5/oauth/token`` and reads the same documents as any other client), so this module has no access
to data and no state beyond the files it serves.

Assets are read once per worker and kept in memory with their gzip form and a content hash: the
hash names them in the pages (``/static/dashboard/app.js?v=…``), so they can be cached for a year
while a new release is still picked up at once; the pages themselves are revalidated every time.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Callable
from functools import cache, cached_property
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from pinsights.server.errors import NotFound

DASHBOARD_ASSETS = "/static/dashboard/"
SWAGGER_ASSETS = "/static/swagger-ui/"
#: Swagger UI files the docs page loads; everything else in the package is left unserved.
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
#: Only the server's own origin, for everything; no inline code, no framing, no plugins.
DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def content_security_policy(**overrides: str) -> str:
    return "; ".join(f"{name} {value}" for name, value in {**DIRECTIVES, **overrides}.items())


DASHBOARD_POLICY = content_security_policy()
#: Swagger UI's stylesheet draws its icons as inline SVG (data: URLs): images only, still no host.
DOCS_POLICY = content_security_policy(**{"img-src": "'self' data:"})
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The dashboard's URL names the ad account being viewed: it stays on this server.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
READ_METHODS = ["GET", "HEAD"]
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"
#: Compressing smaller bodies saves less than the header costs.
GZIP_MIN_SIZE = 1024


class Asset:
    """One file as served: its bytes, type and content hash (and its gzip form, made when asked)."""

    def __init__(self, body: bytes, name: str) -> None:
        self.body = body
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type.endswith(("javascript", "+xml")):
            media_type += "; charset=utf-8"
        self.media_type = media_type
        self.digest = hashlib.sha256(body).hexdigest()[:16]
        self.compressible = len(body) >= GZIP_MIN_SIZE and not media_type.startswith("image/png")

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, 6, mtime=0)

    def response(self, request: Request, cache_control: str, policy: str) -> Response:
        etag = f'"{self.digest}"'
        headers = {
            **SECURITY_HEADERS,
            "Content-Security-Policy": policy,
            "Cache-Control": cache_control,
            "ETag": etag,
        }
        if self.compressible:
            headers["Vary"] = "Accept-Encoding"
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.body
        if self.compressible and "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["Content-Encoding"] = self.gzipped, "gzip"
        return Response(body, media_type=self.media_type, headers=headers)


class Assets:
    """Files of one directory, loaded on first use and kept; unknown names are 404."""

    def __init__(self, read: Callable[[str], bytes], names: tuple[str, ...]) -> None:
        self._read = read
        self._names = frozenset(names)
        self._loaded: dict[str, Asset] = {}

    def get(self, name: str) -> Asset:
        asset = self._loaded.get(name)
        if asset is None:
            if name not in self._names:
                raise NotFound()
            asset = self._loaded[name] = Asset(self._read(name), name)
        return asset

    def url(self, prefix: str, name: str) -> str:
        """The asset's URL, versioned by its content so that it can be cached for good."""
        return f"{prefix}{name}?v={self.get(name).digest}"


def _package_file(name: str) -> bytes:
    return resources.files("pinsights.server").joinpath("static", "dashboard", name).read_bytes()


@cache
def _swagger_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path)


def _swagger_file(name: str) -> bytes:
    return (_swagger_dir() / name).read_bytes()


DASHBOARD_FILES = ("index.html", "docs.html", "app.css", "app.js", "docs.js", "icon.svg")


def install_dashboard(app: FastAPI) -> None:
    """Add ``/``, ``/v5/docs`` and the assets both pages load to the web app."""
    own = Assets(_package_file, DASHBOARD_FILES)
    swagger = Assets(_swagger_file, SWAGGER_FILES)

    pages: dict[str, Asset] = {}

    def page(template: str) -> Asset:
        """A page with its asset URLs filled in (``{{name}}`` → versioned URL), made once."""
        made = pages.get(template)
        if made is None:
            text = own.get(template).body.decode()
            for name in DASHBOARD_FILES:
                text = text.replace("{{" + name + "}}", own.url(DASHBOARD_ASSETS, name))
            for name in SWAGGER_FILES:
                text = text.replace("{{swagger/" + name + "}}", swagger.url(SWAGGER_ASSETS, name))
            made = pages[template] = Asset(text.encode(), template)
        return made

    @app.api_route("/", methods=READ_METHODS, include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        return page("index.html").response(request, PAGE_CACHE, DASHBOARD_POLICY)

    @app.api_route("/v5/docs", methods=READ_METHODS, include_in_schema=False)
    async def docs(request: Request) -> Response:
        return page("docs.html").response(request, PAGE_CACHE, DOCS_POLICY)

    @app.api_route(DASHBOARD_ASSETS + "{name}", methods=READ_METHODS, include_in_schema=False)
    async def dashboard_asset(name: str, request: Request) -> Response:
        if name.endswith(".html"):  # pages are served at their own URLs only
            raise NotFound()
        return own.get(name).response(request, ASSET_CACHE, DASHBOARD_POLICY)

    @app.api_route(SWAGGER_ASSETS + "{name}", methods=READ_METHODS, include_in_schema=False)
    async def swagger_asset(name: str, request: Request) -> Response:
        return swagger.get(name).response(request, ASSET_CACHE, DOCS_POLICY)
