"""``pinsights privacy report``: the DP mode's accounting, read from the store's ledger."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pinsights.cli.options import STORE_OPTION


def privacy_report(
    store: Path = STORE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """ε (at the stated δ) per DP snapshot and per 30 days, per ad account and for P."""
    from pinsights.engine.dp.parameters import DEFAULT
    from pinsights.engine.dp.report import privacy_report as make_report
    from pinsights.engine.dp.report import render
    from pinsights.store import StoreError

    if not store.is_dir():
        raise StoreError(f"no store at {store}: build one with `pinsights build --store {store}`")
    report = make_report(store, DEFAULT)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render(report))
