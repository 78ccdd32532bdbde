"""The `pinsights` command line: each command is a few lines that call the modules that do the work.

Progress and logs go to stderr; machine-readable output (``--json``) and anything meant to be piped
(tokens) go to stdout.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import typer

app = typer.Typer(
    name="pinsights",
    help="Open audience insights: generate data, build snapshots, serve the v5 API, query it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- data: generate -------------------------------------------------------------------------

# --- engine: build, quarantine ---------------------------------------------------------------

STORE_OPTION = typer.Option(
    Path("pinsights-store"), "--store", envvar="PINSIGHTS_STORE", help="Store directory."
)


@app.command()
def build(
    data: Path = typer.Option(..., "--data", help="Dataset directory (SPEC §2)."),
    store: Path = STORE_OPTION,
    date: datetime.datetime | None = typer.Option(
        None, "--date", formats=["%Y-%m-%d"], help="Generation date D (default: last event day)."
    ),
    window_days: int = typer.Option(30, "--window-days", min=1, help="Days in the window."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (default) or spark."),
    retain: int = typer.Option(30, "--retain", min=1, help="Snapshot dates kept."),
    max_bad_fraction: float = typer.Option(
        0.01, "--max-bad-fraction", min=0.0, max=1.0, help="Fail above this share of bad rows."
    ),
    min_audience_size: int = typer.Option(100, "--min-audience-size", min=1),
    min_cell_size: int = typer.Option(10, "--min-cell-size", min=1),
    max_subcategories: int = typer.Option(10, "--max-subcategories", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Compute every insight document for one date and publish it atomically."""
    from pinsights.engine.build import BuildError, BuildOptions
    from pinsights.engine.build import build as run_build
    from pinsights.engine.console import build_progress, print_build_summary, stderr

    options = BuildOptions(
        data_dir=data,
        store_dir=store,
        date=date.date() if date else None,
        window_days=window_days,
        engine=engine,
        retain=retain,
        max_bad_fraction=max_bad_fraction,
        min_audience_size=min_audience_size,
        min_cell_size=min_cell_size,
        max_subcategories=max_subcategories,
    )
    try:
        with build_progress(stderr.is_terminal) as on_step:
            report = run_build(options, on_step=on_step)
    except BuildError as error:
        stderr.print(f"[bold red]build failed:[/] {error}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        print_build_summary(report)


@app.command()
def quarantine(
    store: Path = STORE_OPTION,
    sample: int = typer.Option(5, "--sample", min=0, help="Example rows per table and rule."),
    as_json: bool = typer.Option(False, "--json", help="Print summary and rows as JSON."),
) -> None:
    """Show the rows the last build quarantined: a summary per table and rule, and examples."""
    from pinsights.engine.console import print_quarantine, quarantine_summary
    from pinsights.store import Store

    rows = Store(store).quarantine_rows()
    if as_json:
        payload = {
            "summary": quarantine_summary(rows),
            "rows": [
                {"table": r.table, "source_file": r.source_file, "rule": r.rule, "row": r.row}
                for r in rows
            ],
        }
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        print_quarantine(rows, sample)


# --- server: serve, demo, clients, token -----------------------------------------------------

# --- client: insights, definitions -----------------------------------------------------------

BASE_URL_OPTION = typer.Option(
    None,
    "--base-url",
    envvar="PINSIGHTS_BASE_URL",
    help="API base URL, e.g. http://127.0.0.1:8000/v5 (default: https://api.pinterest.com/v5).",
)
TOKEN_OPTION = typer.Option(
    None,
    "--token",
    envvar="PINTEREST_ACCESS_TOKEN",
    help="Bearer token (prefer the environment variable: a flag is visible to other users).",
    show_default=False,
)


@app.command()
def insights(
    ad_account_id: str = typer.Argument(..., help="Ad account id (digits)."),
    insight_type: str = typer.Option(
        "YOUR_TOTAL_AUDIENCE",
        "--type",
        "-t",
        help="YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE or PINTEREST_TOTAL_AUDIENCE (any case).",
    ),
    date: str | None = typer.Option(
        None, "--date", help="YYYY-MM-DD: an older retained snapshot (default: the newest)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the wire JSON document."),
    base_url: str | None = BASE_URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Show an audience's insights: size, categories with affinity, subcategories, demographics."""
    from pinsights.client._render import echo_json, print_insights, run_query

    response = run_query(
        base_url,
        token,
        lambda client: client.audience_insights_get(ad_account_id, insight_type.upper(), date=date),
    )
    if as_json:
        echo_json(response)
    else:
        print_insights(ad_account_id, response)


@app.command()
def definitions(
    ad_account_id: str = typer.Argument(..., help="Ad account id (digits)."),
    as_json: bool = typer.Option(False, "--json", help="Print the wire JSON document."),
    base_url: str | None = BASE_URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """List the audiences of an ad account that have insights, per snapshot date."""
    from pinsights.client._render import echo_json, print_definitions, run_query

    response = run_query(
        base_url, token, lambda client: client.audience_insights_scope_and_type_get(ad_account_id)
    )
    if as_json:
        echo_json(response)
    else:
        print_definitions(ad_account_id, response)




def main() -> None:  # pragma: no cover - console entry point
    app()
