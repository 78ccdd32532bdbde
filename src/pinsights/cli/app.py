"""The `pinsights` command line: the table of its commands, each a few lines that call the modules
that do the work.

The commands live by what they serve: ``data_commands.py`` (generate, build, quarantine, store),
``server_commands.py`` (serve, demo, clients, token, keys), ``query_commands.py`` (accounts,
insights, definitions). They are registered here, in the order ``--help`` lists them.

Progress and logs go to stderr; machine-readable output (``--json``) and anything meant to be piped
(tokens) go to stdout. Errors reach the user as one line and an exit status, never a traceback:
every command runs inside ``cli.errors.ErrorReportingGroup`` (statuses in docs/cli.md).
"""

from __future__ import annotations

import typer

from pinsights.cli import data_commands, privacy_commands, query_commands, server_commands
from pinsights.cli.errors import ErrorReportingGroup

app = typer.Typer(
    cls=ErrorReportingGroup,
    name="pinsights",
    help="Open audience insights: generate data, build snapshots, serve the v5 API, query it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: option names never cut at 80 columns, [brackets] kept
)

# data: generate, build, quarantine
app.command("generate")(data_commands.generate_command)
app.command("build")(data_commands.build)
app.command("quarantine")(data_commands.quarantine)

store_app = typer.Typer(
    help="Look after a store: check it and repair what is safe.", rich_markup_mode=None
)
app.add_typer(store_app, name="store")
store_app.command("check")(data_commands.store_check)
store_app.command("drop")(data_commands.store_drop)

privacy_app = typer.Typer(
    help="The differentially private mode's accounting (build --privacy dp).",
    rich_markup_mode=None,
)
app.add_typer(privacy_app, name="privacy")
privacy_app.command("report")(privacy_commands.privacy_report)

# server: serve, demo, clients, token, keys
app.command("serve")(server_commands.serve)
app.command("demo")(server_commands.demo)

clients_app = typer.Typer(
    help="Register, list and revoke API clients.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(clients_app, name="clients")
clients_app.command("add")(server_commands.clients_add)
clients_app.command("list")(server_commands.clients_list)
clients_app.command("revoke")(server_commands.clients_revoke)

app.command("token")(server_commands.token)

keys_app = typer.Typer(
    help="List, rotate and retire token signing keys.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(keys_app, name="keys")
keys_app.command("list")(server_commands.keys_list)
keys_app.command("rotate")(server_commands.keys_rotate)
keys_app.command("retire")(server_commands.keys_retire)

# client: accounts, insights, definitions
app.command("accounts")(query_commands.accounts)
app.command("insights")(query_commands.insights)
app.command("definitions")(query_commands.definitions)


def main() -> None:  # pragma: no cover - console entry point
    app()
