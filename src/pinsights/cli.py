"""The `pinsights` command line: each command is a few lines that call the modules that do the work.

Progress and logs go to stderr; machine-readable output (``--json``) and anything meant to be piped
(tokens) go to stdout.
"""

from __future__ import annotations

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

# --- server: serve, demo, clients, token -----------------------------------------------------

# --- client: insights, definitions -----------------------------------------------------------


def main() -> None:  # pragma: no cover - console entry point
    app()
