"""Parameters several commands share: the store option, calendar dates, ad-account lists.

A command reading or editing a store uses :data:`STORE_OPTION`; only ``build`` (whose output it is)
and ``serve`` create a store, every other command asks for an existing one (:func:`existing_store`).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import typer


def store_directory(path: Path) -> Path:
    """A store path that exists must be a directory (a file is refused before any work)."""
    from pinsights.store import StoreError

    if path.exists() and not path.is_dir():
        raise StoreError(f"the store {path} is a file, not a store directory")
    return path


def existing_store(store: Path) -> Path:
    """A store the command reads or edits must exist: only ``build`` (whose output it is) and
    ``serve`` (which may wait for a first build, and warns) create one. A mistyped --store given
    to ``clients``, ``keys`` or ``token`` would otherwise get a new store of its own, with
    clients and keys no server reads (docs/cli.md, "Which commands create a store")."""
    from pinsights.store import StoreError

    if not store.is_dir():  # a file was refused by the option itself
        raise StoreError(
            f"no store at {store.absolute()}: is --store right? A store is created by"
            f" `pinsights build --store {store}`; to set up clients and keys before the first"
            f" build, create it empty with `mkdir -m 700 {store}`"
        )
    return store


STORE_OPTION = typer.Option(
    Path("pinsights-store"),
    "--store",
    envvar="PINSIGHTS_STORE",
    help="Store directory.",
    callback=store_directory,
)


def calendar_date(text: str | datetime.date) -> datetime.date:
    """A real calendar date written YYYY-MM-DD (2026-02-30 matches the form but is no date)."""
    if isinstance(text, datetime.date):
        return text
    from pinsights.client import InvalidArgumentError
    from pinsights.client._base import validate_date

    try:
        return datetime.date.fromisoformat(str(validate_date(text)))
    except InvalidArgumentError as error:
        raise typer.BadParameter(str(error)) from None


ACCOUNTS_HELP = "Ad account ids, comma-separated, or '*' for every account."
