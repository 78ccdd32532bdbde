"""The commands that query an API: ``accounts``, ``insights`` and ``definitions``, against
api.pinterest.com or a pinsights server, with the SDK's :class:`~pinsights.client.Client`; the tables are in
``query_screens.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from pydantic import BaseModel

from pinsights.cli.errors import CommandError, ExitStatus
from pinsights.cli.literal import json_text

if TYPE_CHECKING:
    from pinsights.client import Client, PinsightsError
    from pinsights.contract import AdAccount

T = TypeVar("T")

BASE_URL_OPTION = typer.Option(
    None,
    "--base-url",
    envvar="PINSIGHTS_BASE_URL",
    metavar="URL",
    help="API base URL, e.g. http://127.0.0.1:8000/v5 (default: https://api.pinterest.com/v5).",
)
TOKEN_OPTION = typer.Option(
    None,
    "--token",
    envvar="PINTEREST_ACCESS_TOKEN",
    metavar="TOKEN",
    help="Bearer token (prefer the environment variable: a flag is visible to other users).",
    show_default=False,
)


def accounts(
    as_json: bool = typer.Option(
        False, "--json", help="Print every account as a JSON array of the wire AdAccount objects."
    ),
    base_url: str | None = BASE_URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """List the ad accounts the token can read (every page): id, name, country, currency."""
    from pinsights.cli.query_screens import print_accounts, progress_on_stderr

    def every_account(client: Client) -> list[AdAccount]:
        found: list[AdAccount] = []
        with progress_on_stderr("Listing ad accounts") as advance:
            for account in client.ad_accounts():
                found.append(account)
                advance(len(found))
        return found

    listed = run_query(base_url, token, every_account)
    if as_json:
        documents = [a.model_dump(mode="json", exclude_unset=True) for a in listed]
        typer.echo(json_text(documents, indent=2))
    else:
        print_accounts(listed)


def insights(
    ad_account_id: str = typer.Argument(..., help="Ad account id (digits)."),
    insight_type: str = typer.Option(
        "YOUR_TOTAL_AUDIENCE",
        "--type",
        "-t",
        metavar="TYPE",
        help="YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE or PINTEREST_TOTAL_AUDIENCE (any case).",
    ),
    date: str | None = typer.Option(
        None,
        "--date",
        metavar="YYYY-MM-DD",
        help="An older retained snapshot (default: the newest).",
    ),
    limit: int = typer.Option(
        10, "--limit", min=0, help="Rows per table (3 subcategories per category); 0 shows all."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the wire JSON document."),
    base_url: str | None = BASE_URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Show an audience's insights: size, categories with affinity, subcategories, demographics."""
    from pinsights.cli.query_screens import print_insights

    response = run_query(
        base_url,
        token,
        lambda client: client.audience_insights_get(ad_account_id, insight_type.upper(), date=date),
    )
    if as_json:
        echo_json(response)
    else:
        print_insights(ad_account_id, response, limit=limit or None)


def definitions(
    ad_account_id: str = typer.Argument(..., help="Ad account id (digits)."),
    as_json: bool = typer.Option(False, "--json", help="Print the wire JSON document."),
    base_url: str | None = BASE_URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """List the audiences of an ad account that have insights, per snapshot date."""
    from pinsights.cli.query_screens import print_definitions

    response = run_query(
        base_url, token, lambda client: client.audience_insights_scope_and_type_get(ad_account_id)
    )
    if as_json:
        echo_json(response)
    else:
        print_definitions(ad_account_id, response)


def run_query(base_url: str | None, token: str | None, operation: Callable[[Client], T]) -> T:
    """Run one client operation for a command; a failure is a :class:`CommandError`.

    Exit status 2 for a usage problem (no token, an invalid argument), 1 for anything the server
    or the network said.
    """
    from pinsights.client import ACCESS_TOKEN_ENV, Client, PinsightsError

    if not token:
        raise CommandError(
            f"no access token: pass --token or set {ACCESS_TOKEN_ENV} "
            "(a pinsights server mints one with `pinsights token --ad-accounts ID`)",
            ExitStatus.USAGE,
        )
    where = base_url or ""
    try:
        with Client(token, base_url=base_url) as client:
            where = client.base_url
            return operation(client)
    except PinsightsError as error:
        raise describe(error, where) from None


def describe(error: PinsightsError, base_url: str) -> CommandError:
    """One actionable line for a terminal, from any client exception: what happened, then a hint."""
    from pinsights.client import (
        BASE_URL_ENV,
        ForbiddenError,
        InvalidArgumentError,
        NotFoundError,
        PinsightsConnectionError,
        UnauthorizedError,
    )

    if isinstance(error, InvalidArgumentError):
        return CommandError(str(error), ExitStatus.USAGE)
    if isinstance(error, UnauthorizedError):
        return CommandError(
            f"not authorized: {_sentence(error.message)} Is it a token for {base_url}?"
        )
    if isinstance(error, ForbiddenError):
        return CommandError(
            f"forbidden: {_sentence(error.message)} Does the token cover this ad account?"
        )
    if isinstance(error, NotFoundError):
        return CommandError(f"not found: {_sentence(error.message)}")
    if isinstance(error, PinsightsConnectionError):
        return CommandError(
            f"{_sentence(str(error))} Is the server running? "
            f"Point at it with --base-url or {BASE_URL_ENV}."
        )
    return CommandError(str(error))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def echo_json(response: BaseModel) -> None:
    """The wire document as received: fields the server left out stay out (``exclude_unset``)."""
    typer.echo(json_text(response.model_dump(mode="json", exclude_unset=True), indent=2))
