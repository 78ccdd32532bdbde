"""The server's OpenAPI document (``/v5/openapi.json``): the wire contract itself, plus our extensions.

The document is the contract verbatim (copies of its two files ship in this package: the Audience
Insights operations and the ad accounts' list and get, merged into one document by :func:`contract`),
so the server describes its operations exactly as the contract does, with three additions: the ``date`` query parameter of
``audience_insights/get`` (SPEC §1's extension), ``/healthz``, and server / token URLs that point at
this server: under the configured public URL (``--public-url``), else relative (``/v5``). Never
built from the request's ``Host`` header, which any caller chooses: reflecting it would let a
crafted request make the document (or a cache in front of it) send clients' credentials elsewhere.
The document never changes while a server runs: it is rendered once per process (and public URL),
not deep-copied and serialised per request (which cost ~4x a ``/healthz``, with no credentials).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from pinsights.contract import DATE_PATTERN

CONTRACT_FILE = "contract.openapi.json"
#: The ad accounts' operations (``ad_accounts/list``, ``ad_accounts/get``), a separate extract.
AD_ACCOUNTS_FILE = "ad-accounts.openapi.json"
INSIGHTS_PATH = "/ad_accounts/{ad_account_id}/audience_insights"

DATE_PARAMETER: dict[str, Any] = {
    "name": "date",
    "in": "query",
    "required": False,
    "description": "pinsights extension: serve the retained snapshot of this date instead of the newest.",
    "schema": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
}

HEALTH_PATH: dict[str, Any] = {
    "get": {
        "operationId": "health",
        "tags": ["pinsights"],
        "description": "pinsights extension: liveness and the newest snapshot's date. No auth.",
        "responses": {
            "200": {
                "description": "ok",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "snapshot_date"],
                            "properties": {
                                "status": {"type": "string", "enum": ["ok"]},
                                "snapshot_date": {
                                    "type": "string",
                                    "format": "date",
                                    "nullable": True,
                                },
                            },
                        }
                    }
                },
            }
        },
    }
}


def _packaged(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        resources.files("pinsights.server").joinpath(name).read_text()
    )
    return document


def merge_contracts(first: dict[str, Any], *others: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI document of several extracts of the same API: ``first``'s info and servers,
    every path of each (a path in two extracts is an error), and every component of each.

    A component both define is ``first``'s: the extracts share only the OAuth2 security scheme,
    whose token URL alone differs (and the served document replaces it anyway).
    """
    merged = copy.deepcopy(first)
    for other in others:
        clash = set(merged["paths"]) & set(other["paths"])
        if clash:
            raise ValueError(f"paths defined twice in the contract: {sorted(clash)}")
        merged["paths"].update(copy.deepcopy(other["paths"]))
        for section, components in other.get("components", {}).items():
            mine = merged.setdefault("components", {}).setdefault(section, {})
            for name, component in components.items():
                mine.setdefault(name, copy.deepcopy(component))
    return merged


@cache
def contract() -> dict[str, Any]:
    """The wire contract as shipped in the package: both extracts as one document."""
    return merge_contracts(_packaged(CONTRACT_FILE), _packaged(AD_ACCOUNTS_FILE))


@cache
def served_json(public_url: str | None) -> bytes:
    """:func:`served_document` as the bytes served, rendered as Starlette's JSONResponse does."""
    document = served_document(public_url)
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def served_document(public_url: str | None) -> dict[str, Any]:
    """The OpenAPI document for a server reached at ``public_url`` (``scheme://host[:port][/path]``),
    or with URLs relative to wherever the document was fetched from when it is None."""
    origin = public_url or ""
    document = copy.deepcopy(contract())
    document["info"]["description"] = (
        "pinsights: the Audience Insights operations of the Pinterest REST API v5. "
        "Get a token with POST /v5/oauth/token (client credentials, HTTP Basic)."
    )
    document["servers"] = [{"url": f"{origin}/v5"}]
    for scheme in document["components"]["securitySchemes"].values():
        for flow in scheme.get("flows", {}).values():
            if "tokenUrl" in flow:
                flow["tokenUrl"] = f"{origin}/v5/oauth/token"
    document["paths"][INSIGHTS_PATH]["get"]["parameters"].append(DATE_PARAMETER)
    # /healthz lives outside /v5: a path-level server puts it at the origin.
    document["paths"]["/healthz"] = {
        "servers": [{"url": origin or "/"}],
        **copy.deepcopy(HEALTH_PATH),
    }
    return document
