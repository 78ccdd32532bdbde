"""The `pinsights` command line: each command is a few lines that call the modules that do the work.

Progress and logs go to stderr; machine-readable output (``--json``) and anything meant to be piped
(tokens) go to stdout. Errors reach the user as one line and an exit status, never a traceback:
every command runs inside ``cli.errors.ErrorReportingGroup`` (statuses in docs/cli.md).
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pinsights.cli.errors import ErrorReportingGroup

if TYPE_CHECKING:
    from pinsights.engine.spark import SparkSettings
    from pinsights.server.keys import KeyFile
    from pinsights.server.settings import ServerSettings

app = typer.Typer(
    cls=ErrorReportingGroup,
    name="pinsights",
    help="Open audience insights: generate data, build snapshots, serve the v5 API, query it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: option names never cut at 80 columns, [brackets] kept
)

# --- data: generate -------------------------------------------------------------------------


@app.command("generate")
def generate_command(
    out_dir: Path = typer.Argument(..., help="Directory to write the dataset into."),
    users: int = typer.Option(20_000, "--users", min=1, help="Number of users."),
    accounts: int = typer.Option(50, "--accounts", min=1, help="Number of ad accounts."),
    days: int = typer.Option(30, "--days", min=1, help="UTC days of events."),
    end_date: datetime.datetime | None = typer.Option(
        None, "--end-date", formats=["%Y-%m-%d"], help="Last day of events (default: yesterday)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same bytes."),
    events: int | None = typer.Option(
        None, "--events", min=1, help="Number of events (default: 50 per user)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Write into a non-empty OUT_DIR, replacing generated tables."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a realistic synthetic platform (users, advertisers, pins, events) in the input
    contract, ready for `pinsights build --data OUT_DIR`."""
    from rich.console import Console

    from pinsights.cli.errors import CommandError, ExitStatus
    from pinsights.synthetic.generate import generate

    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"{out_dir} is a file, not a directory", ExitStatus.UNUSABLE_PATH)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise CommandError(
            f"{out_dir} is not empty; choose another directory, or pass --force to "
            "replace the generated tables in it (nothing else is deleted)",
            ExitStatus.USAGE,
        )
    summary = generate(
        out_dir,
        users=users,
        accounts=accounts,
        days=days,
        end_date=end_date.date() if end_date else None,
        seed=seed,
        events=events,
        progress=Console(stderr=True).is_terminal,
    )
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    typer.echo(
        f"Wrote {summary.events:,} events from {summary.start_date} to {summary.end_date} "
        f"for {summary.users:,} users, {summary.pins:,} pins and {summary.accounts:,} ad accounts "
        f"to {summary.out_dir}"
    )
    typer.echo(f"Largest ad accounts: {', '.join(summary.ad_account_ids[:5])}")
    typer.echo(f"Next: pinsights build --data {summary.out_dir}")


# --- engine: build, quarantine ---------------------------------------------------------------


def _store_directory(path: Path) -> Path:
    """A store path that exists must be a directory (a file is refused before any work)."""
    from pinsights.store import StoreError

    if path.exists() and not path.is_dir():
        raise StoreError(f"the store {path} is a file, not a store directory")
    return path


def _existing_store(store: Path) -> Path:
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
    callback=_store_directory,
)


def _calendar_date(text: str | datetime.date) -> datetime.date:
    """A real calendar date written YYYY-MM-DD (2026-02-30 matches the form but is no date)."""
    if isinstance(text, datetime.date):
        return text
    from pinsights.client import InvalidArgumentError
    from pinsights.client._base import validate_date

    try:
        return datetime.date.fromisoformat(str(validate_date(text)))
    except InvalidArgumentError as error:
        raise typer.BadParameter(str(error)) from None


def _data_path(text: str | Path) -> Path:
    """``--data`` as written: a URL stays a URL (a ``Path`` would fold its ``//``); typed as a
    path, which is what it is for every engine but Spark's."""
    from pinsights.data.load import data_path

    return text if isinstance(text, Path) else data_path(text)  # type: ignore[return-value]


def _engine(name: str) -> str:
    from pinsights.engine.build import ENGINES

    if name not in ENGINES:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(ENGINES)}")
    return name


def _memory_limit(text: str | None) -> str | None:
    from pinsights.engine.backends import MIN_MEMORY_LIMIT, memory_bytes

    size = None if text is None else memory_bytes(text)
    if text is not None and size is None:
        raise typer.BadParameter(
            f"{text!r} is not a size: write e.g. 8GB, 7.5GiB, 512MB, 50% or a number of bytes"
        )
    if size is not None and size < MIN_MEMORY_LIMIT:
        raise typer.BadParameter(
            f"{text!r} is too small: a build needs at least {MIN_MEMORY_LIMIT // 10**6}MB"
            " (DuckDB's buffers get half of it)"
        )
    return text


def _spark_memory_limit(spark: SparkSettings, memory_limit: str | None) -> None:
    """--memory-limit with --engine spark: too small for Spark's driver is a bad command line
    (exit 2; in PINSIGHTS_MEMORY_LIMIT the build fails, exit 1); on a cluster it bounds only
    this machine's process, the driver, which is said (docs/spark.md)."""
    import os

    from pinsights.engine.spark import check_memory_limit

    conf = dict(spark.conf)
    if memory_limit is not None and "spark.driver.memory" not in conf:
        try:
            check_memory_limit(memory_limit)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--memory-limit") from None
    given = memory_limit or os.environ.get("PINSIGHTS_MEMORY_LIMIT")
    if given and not spark.resolved_master().startswith("local"):
        typer.echo(
            f"pinsights: warning: the memory limit {given} bounds this machine's build process"
            " (the driver) only, not the executors: size them with --spark-conf"
            " spark.executor.memory=…",
            err=True,
        )


def _date_range(text: str | None) -> list[datetime.date]:
    """``D1..D2`` (both included) as a list of dates."""
    if text is None:
        return []
    first, separator, last = text.partition("..")
    try:
        start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
        if not separator:
            raise ValueError(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a range YYYY-MM-DD..YYYY-MM-DD") from None
    if start > end:
        raise typer.BadParameter(f"{text!r} ends before it starts")
    return [start + datetime.timedelta(days=n) for n in range((end - start).days + 1)]


@app.command()
def build(
    data: Path = typer.Option(
        ...,
        "--data",
        parser=_data_path,
        help="Dataset directory (SPEC §2); with --engine spark also a URL of any file system"
        " Spark reads (hdfs://…, s3a://…, file:///…).",
        metavar="DIR|URL",
    ),
    store: Path = STORE_OPTION,
    date: list[datetime.date] | None = typer.Option(
        None,
        "--date",
        parser=_calendar_date,
        metavar="YYYY-MM-DD",
        help="Generation date D (default: last event day); repeat it to build several.",
    ),
    dates: str | None = typer.Option(
        None,
        "--dates",
        metavar="D1..D2",
        help="Build every date of D1..D2 (both included), reading the data once.",
    ),
    window_days: int = typer.Option(30, "--window-days", min=1, help="Days in the window."),
    engine: str = typer.Option(
        "duckdb", "--engine", metavar="[duckdb|spark]", callback=_engine, help="Engine to run on."
    ),
    spark_master: str | None = typer.Option(
        None,
        "--spark-master",
        envvar="PINSIGHTS_SPARK_MASTER",
        help="Spark master URL: local[*] (default) or spark://HOST:7077 (standalone cluster).",
    ),
    spark_conf: list[str] = typer.Option(
        [], "--spark-conf", help="Spark setting KEY=VALUE (repeatable).", metavar="KEY=VALUE"
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Show Spark's own logs on stderr."),
    retain: int = typer.Option(30, "--retain", min=1, help="Snapshot dates kept."),
    max_bad_fraction: float = typer.Option(
        0.01, "--max-bad-fraction", min=0.0, max=1.0, help="Fail above this share of bad rows."
    ),
    min_audience_size: int = typer.Option(100, "--min-audience-size", min=1),
    min_cell_size: int = typer.Option(10, "--min-cell-size", min=1),
    max_subcategories: int = typer.Option(10, "--max-subcategories", min=0),
    memory_limit: str | None = typer.Option(
        None,
        "--memory-limit",
        metavar="SIZE",
        callback=_memory_limit,
        help="Memory limit of the whole build process, e.g. 8GB (DuckDB's buffers get it less a"
        " tenth, 256 MiB-1 GiB, for the rest; Spark's driver heap about four fifths of it);"
        " beyond it the build spills to the store's disk"
        " [default: half the machine's memory, or PINSIGHTS_MEMORY_LIMIT].",
    ),
    allow_empty: bool = typer.Option(
        False,
        "--allow-empty",
        help="Publish a requested date even if its window holds no valid event (an empty"
        " snapshot); without it such a date is refused.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Compute every insight document for a date (or several) and publish each atomically."""
    from pinsights.cli.build_screens import build_progress, print_build_summary, stderr
    from pinsights.engine.build import BuildOptions
    from pinsights.engine.build import build as run_build
    from pinsights.engine.spark import SparkSettings, parse_conf

    try:
        spark = SparkSettings(spark_master, parse_conf(spark_conf), verbose)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--spark-conf") from None
    if engine == "spark":
        _spark_memory_limit(spark, memory_limit)
    options = BuildOptions(
        data_dir=data,
        store_dir=store,
        dates=tuple(date or []) + tuple(_date_range(dates)),
        window_days=window_days,
        engine=engine,
        spark=spark,
        retain=retain,
        max_bad_fraction=max_bad_fraction,
        min_audience_size=min_audience_size,
        min_cell_size=min_cell_size,
        max_subcategories=max_subcategories,
        memory_limit=memory_limit,
        allow_empty=allow_empty,
    )
    with build_progress(stderr.is_terminal) as on_step:
        report = run_build(options, on_step=on_step)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for one in report.get("reports", [report]):
            print_build_summary(one)


@app.command()
def quarantine(
    store: Path = STORE_OPTION,
    sample: int = typer.Option(5, "--sample", min=0, help="Example rows per table and rule."),
    as_json: bool = typer.Option(False, "--json", help="Print summary and rows as JSON."),
) -> None:
    """Show the rows the last build quarantined: a summary per table and rule, and examples."""
    from pinsights.cli.build_screens import print_quarantine, quarantine_summary
    from pinsights.store import QUARANTINE, Store, StoreError

    if not store.is_dir():
        raise StoreError(f"no store at {store}: build one with `pinsights build --store {store}`")
    if not (store / QUARANTINE).exists():  # not "empty": no build has read any data into it yet
        raise StoreError(
            f"no build yet in {store}, so no quarantine to show: "
            f"build one with `pinsights build --data DIR --store {store}`"
        )
    rows = Store(store).quarantine_rows()
    if as_json:
        payload = {
            "summary": quarantine_summary(rows),
            "rows": [
                {
                    "table": r.table,
                    "source_file": r.source_file,
                    "line": r.line,
                    "rule": r.rule,
                    "row": r.row,
                    "text": r.text,
                }
                for r in rows
            ],
        }
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        print_quarantine(rows, sample)


store_app = typer.Typer(
    help="Look after a store: check it and repair what is safe.", rich_markup_mode=None
)
app.add_typer(store_app, name="store")


@store_app.command("check")
def store_check(
    store: Path = STORE_OPTION,
    repair: bool = typer.Option(
        True, "--repair/--no-repair", help="Repair what is safe to repair [default: repair]."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Verify the manifest, every snapshot file and the quarantine; say what was repaired.

    Exit status 0 when the store is sound (after repairs), 6 when damage remains.
    """
    from pinsights.cli.errors import ExitStatus
    from pinsights.store_check import check_store

    result = check_store(store, repair=repair)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in result.lines():
            typer.echo(line)
    if result.problems:
        raise typer.Exit(int(ExitStatus.STORE_DAMAGED))


@store_app.command("drop")
def store_drop(
    date: datetime.date = typer.Argument(
        ..., parser=_calendar_date, metavar="YYYY-MM-DD", help="The snapshot date to remove."
    ),
    store: Path = STORE_OPTION,
) -> None:
    """Remove a published snapshot date: servers stop serving it at once (atomic, under the
    store's build lock, so not while a build runs: exit status 4)."""
    from pinsights.store import MANIFEST, Store, StoreError

    target = Store(store)
    if not (target.root / MANIFEST).is_file():
        raise StoreError(f"{store} holds no published snapshot: nothing to drop")
    info = target.drop(date)
    if info is None:
        held = ", ".join(i.date.isoformat() for i in target.snapshots()) or "none"
        raise typer.BadParameter(
            f"the store {store} has no snapshot for {date} (its dates: {held})",
            param_hint="DATE",
        )
    newest = target.snapshots()
    now = f"now serving {newest[0].date}" if newest else "no snapshot is left to serve"
    typer.echo(f"dropped the snapshot of {info.date} (build {info.build_id}); {now}", err=True)


# --- server: serve, demo, clients, token -----------------------------------------------------

ACCOUNTS_HELP = "Ad account ids, comma-separated, or '*' for every account."


def _env(text: str, name: str, default: str | None = None) -> str:
    """Help for a `serve` option that the server also reads from ``PINSIGHTS_<NAME>``: the option
    defaults to None (not given: the environment, then the server's default, decides), so the
    default and the variable are written here; tests/test_server_cli.py checks them against
    the server's settings."""
    shown = f"default: {default}; " if default is not None else ""
    return f"{text}  [{shown}env var: PINSIGHTS_{name}]"


@app.command()
def serve(
    store: Path = STORE_OPTION,
    host: str | None = typer.Option(
        None, "--host", metavar="HOST", help=_env("Interface to bind.", "HOST", "127.0.0.1")
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        min=0,
        max=65535,
        metavar="PORT",
        help=_env("Port to listen on (0: any free one).", "PORT", "8000"),
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, metavar="N", help=_env("Worker processes.", "WORKERS", "1")
    ),
    rate_limit: str | None = typer.Option(
        None,
        "--rate-limit",
        metavar="RATE",
        help=_env("Requests per client id, e.g. 100/s or 6000/min.", "RATE_LIMIT", "100/s"),
    ),
    rate_limit_storage: str | None = typer.Option(
        None,
        "--rate-limit-storage",
        metavar="URL",
        help=_env(
            "memory:// (one limit for this server's workers) or redis://HOST:PORT/DB "
            "(one limit for every server sharing it).",
            "RATE_LIMIT_STORAGE",
            "memory://",
        ),
    ),
    access_log: bool | None = typer.Option(
        None,
        "--access-log/--no-access-log",
        help=_env("JSON lines on stderr.", "ACCESS_LOG", "on"),
    ),
    metrics: bool | None = typer.Option(
        None,
        "--metrics/--no-metrics",
        help=_env("Prometheus metrics at /metrics.", "METRICS", "on"),
    ),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        metavar="URL",
        help=_env("URL clients reach the server at, for /v5/openapi.json.", "PUBLIC_URL"),
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        "--forwarded-allow-ips",
        metavar="IPS",
        help=_env(
            "Proxies (IPs, networks, comma-separated) whose X-Forwarded-* headers are believed.",
            "FORWARDED_ALLOW_IPS",
        ),
    ),
) -> None:
    """Serve the v5 Audience Insights API (and its docs at /v5/docs) from a store."""
    from pinsights.server.settings import settings_with

    options = {"host": host, "port": port, "workers": workers, "rate_limit": rate_limit}
    options |= {"rate_limit_storage": rate_limit_storage, "metrics": metrics}
    options |= {"public_url": public_url, "forwarded_allow_ips": forwarded_allow_ips}
    try:
        settings = settings_with(store, {**options, "access_log": access_log})
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    with _keyring_errors():
        _serve(settings, warn_if_empty=True)


@app.command()
def demo(
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to serve on."),
    directory: Path = typer.Option(
        Path("demo-data"), "--dir", help="Where the demo's dataset and store go."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Regenerate and rebuild even if built."),
) -> None:
    """Generate a synthetic platform, build it and serve it, with a token ready to use."""
    from rich.console import Console

    from pinsights.cli import demo as demo_platform
    from pinsights.server.keys import keyring_source
    from pinsights.server.settings import settings_with
    from pinsights.server.tokens import READ_SCOPE, TokenService

    stderr = Console(stderr=True)
    stderr.print(f"Preparing the demo platform in {directory} (about a minute the first time)…")
    platform = demo_platform.prepare(directory, fresh=fresh, progress=stderr.is_terminal)
    try:
        settings = settings_with(platform.store_dir, {"port": port})
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    secret = settings.secret.get_secret_value() if settings.secret else None
    accounts = platform.ad_account_ids[:3]
    with _keyring_errors():
        tokens = TokenService(keyring_source(platform.store_dir, secret))
    token = tokens.issue(demo_platform.DEMO_CLIENT, [READ_SCOPE], accounts, 24 * 3600)
    base = f"http://{settings.host}:{port}"
    client_id, client_secret = demo_platform.dashboard_client(platform.store_dir, accounts)
    typer.echo(f"\nDashboard:  {base}/\nAPI docs:   {base}/v5/docs")
    typer.echo(f"Sign in to the dashboard with\n  Client ID:     {client_id}")
    typer.echo(f"  Client secret: {client_secret}")
    typer.echo(f"Ad accounts (largest first): {', '.join(accounts)}")
    typer.echo(f"Token (24 h, those accounts):\n{token}\n")
    typer.echo(
        f'curl -H "Authorization: Bearer {token}" \\\n'
        f'  "{base}/v5/ad_accounts/{accounts[0]}/audience_insights'
        '?audience_insight_type=YOUR_ENGAGED_AUDIENCE"\n'
    )
    typer.echo(
        "Or, from another terminal in this directory:\n"
        f"  export PINSIGHTS_BASE_URL={base}/v5 PINTEREST_ACCESS_TOKEN={token}\n"
        f"  .venv/bin/pinsights insights {accounts[0]} --type YOUR_ENGAGED_AUDIENCE\n"
        f"  .venv/bin/pinsights definitions {accounts[0]}\n"
    )
    _serve(settings)


def _serve(settings: ServerSettings, *, warn_if_empty: bool = False) -> None:
    """Run the server; an address it cannot listen on is one line and exit status 3.

    Once the store and the address are known to be usable, a store without any snapshot gets a
    warning: a mistyped --store is a new, empty store, and the server would refuse every request.
    """
    from pinsights.cli.errors import CommandError, ExitStatus
    from pinsights.server.runner import ListenError, check_listen, run
    from pinsights.store import MANIFEST

    try:
        settings.store.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_listen(settings.host, settings.port)
        if warn_if_empty and not (settings.store / MANIFEST).exists():
            typer.echo(
                f"pinsights: warning: {settings.store} holds no snapshot: every insights request "
                f"is refused until a build publishes one (`pinsights build --data DIR --store "
                f"{settings.store}`); is --store right?",
                err=True,
            )
        run(settings)
    except ListenError as error:
        raise CommandError(str(error), ExitStatus.UNUSABLE_PATH) from None


clients_app = typer.Typer(
    help="Register, list and revoke API clients.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(clients_app, name="clients")


@clients_app.command("add")
def clients_add(
    name: str = typer.Option(..., "--name", help="Who the client is, for humans."),
    ad_accounts: str = typer.Option(..., "--ad-accounts", help=ACCOUNTS_HELP),
    store: Path = STORE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the credentials as JSON."),
) -> None:
    """Register a client; prints its client_id and client_secret (the secret only this once)."""
    from pinsights.server.clients import ClientRegistry
    from pinsights.server.tokens import parse_ad_accounts

    try:
        accounts = parse_ad_accounts(ad_accounts)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--ad-accounts") from None
    client, secret = ClientRegistry(_existing_store(store)).add(name, accounts)
    if as_json:
        payload = {"client_id": client.client_id, "client_secret": secret, "name": client.name}
        typer.echo(json.dumps({**payload, "ad_accounts": client.ad_accounts}, indent=2))
    else:
        typer.echo(f"client_id:     {client.client_id}\nclient_secret: {secret}")
    typer.echo("Keep the secret now: only its hash is stored.", err=True)


@clients_app.command("list")
def clients_list(
    store: Path = STORE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the clients as JSON."),
) -> None:
    """List registered clients (never their secrets)."""
    from pinsights.server.clients import ClientRegistry

    clients = ClientRegistry(_existing_store(store)).clients()
    if as_json:
        rows = [
            {
                "client_id": c.client_id,
                "name": c.name,
                "ad_accounts": c.ad_accounts,
                "created_at": c.created_at,
                "revoked_at": c.revoked_at,
            }
            for c in clients
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for c in clients:
        status = f"revoked {c.revoked_at}" if c.revoked_at else "active"
        typer.echo(f"{c.client_id}  {c.name}  {','.join(c.ad_accounts)}  {status}")


@clients_app.command("revoke")
def clients_revoke(
    client_id: str = typer.Argument(..., help="The client to revoke."),
    store: Path = STORE_OPTION,
) -> None:
    """Revoke a client: no new tokens, and its tokens stop working on running servers."""
    from pinsights.server.clients import ClientRegistry

    try:
        client = ClientRegistry(_existing_store(store)).revoke(client_id)
    except KeyError:
        raise typer.BadParameter(
            f"no client {client_id} in {store} (`pinsights clients list` lists them)",
            param_hint="CLIENT_ID",
        ) from None
    typer.echo(f"revoked {client_id} ({client.revoked_at})", err=True)


@app.command()
def token(
    ad_accounts: str = typer.Option(..., "--ad-accounts", help=ACCOUNTS_HELP),
    scope: str = typer.Option("ads:read", "--scope", help="Space- or comma-separated scopes."),
    ttl: int = typer.Option(3600, "--ttl", min=1, help="Lifetime in seconds."),
    store: Path = STORE_OPTION,
) -> None:
    """Mint a token directly, for development; prints only the token."""
    from pinsights.server.keys import keyring_source
    from pinsights.server.settings import settings_with
    from pinsights.server.tokens import (
        CLI_CLIENT_ID,
        TokenService,
        parse_ad_accounts,
        parse_scopes,
    )

    try:
        accounts = parse_ad_accounts(ad_accounts)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--ad-accounts") from None
    try:
        scopes = parse_scopes(scope)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--scope") from None
    try:
        settings = settings_with(store, {})
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    secret = settings.secret.get_secret_value() if settings.secret else None
    if secret is None:  # the store's keys sign it: a new store's would be known to no server
        _existing_store(store)
    with _keyring_errors():
        service = TokenService(keyring_source(store, secret))
    typer.echo(service.issue(CLI_CLIENT_ID, scopes, accounts, ttl))


keys_app = typer.Typer(
    help="List, rotate and retire token signing keys.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(keys_app, name="keys")


@contextlib.contextmanager
def _keyring_errors() -> Iterator[None]:
    """A key that may not be used (unsafe file, short key, unknown kid): its message, exit 1."""
    from pinsights.cli.errors import CommandError
    from pinsights.server.keys import KeyringError

    try:
        yield
    except KeyringError as error:
        raise CommandError(str(error)) from None


def _key_file(store: Path) -> KeyFile:
    """The store's key file; refused while PINSIGHTS_SECRET is set (then that is the only key)."""
    import os

    from pinsights.cli.errors import CommandError
    from pinsights.server.keys import KeyFile

    if os.environ.get("PINSIGHTS_SECRET"):
        raise CommandError(
            "PINSIGHTS_SECRET is set, so it is the only signing key and the store's keys "
            "are not used; unset it to manage the store's keys (docs/server.md, Key rotation)"
        )
    return KeyFile(_existing_store(store))


@keys_app.command("list")
def keys_list(
    store: Path = STORE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON."),
) -> None:
    """List the signing keys (never the keys themselves): kid, created, retired, which one signs."""
    keys = _key_file(store)
    with _keyring_errors():
        signing_kid = keys.ensure().signing_kid
        entries = keys.read()
    rows = [
        {
            "kid": key.kid,
            "created_at": key.created_at,
            "retired_at": key.retired_at,
            "signing": key.kid == signing_kid,
            "staged": key.staged and not key.retired,
        }
        for key in entries
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        status = (
            "staged (verifies only)"
            if row["staged"]
            else "signing"
            if row["signing"]
            else f"retired {row['retired_at']}"
            if row["retired_at"]
            else "verifying"
        )
        typer.echo(f"{row['kid']}  created {row['created_at']}  {status}")


@keys_app.command("rotate")
def keys_rotate(
    store: Path = STORE_OPTION,
    stage: bool = typer.Option(
        False, "--stage", help="Add the key for verifying only; the next rotate makes it sign."
    ),
) -> None:
    """Sign new tokens with a new key (or the staged one); tokens of the others stay valid."""
    keys = _key_file(store)
    with _keyring_errors():
        key = keys.rotate(stage=stage)
    typer.echo(key.kid)
    if stage:
        message = f"{key.kid} verifies but signs nothing yet: copy keys.json, then rotate again"
    else:
        message = f"new tokens are signed with {key.kid}; running servers use it from now on"
    typer.echo(message, err=True)


@keys_app.command("retire")
def keys_retire(
    kid: str = typer.Argument(..., help="The key to retire (see `pinsights keys list`)."),
    store: Path = STORE_OPTION,
) -> None:
    """Erase a key: every token it signed is refused from now on, on running servers too."""
    keys = _key_file(store)
    with _keyring_errors():
        entry = next((k for k in keys.read() if k.kid == kid), None)  # no keys.json: exit 3
        if entry is None:
            raise typer.BadParameter(
                f"no key {kid!r} in {keys.path} (`pinsights keys list` lists them)",
                param_hint="KID",
            )
        keys.retire(kid)
    if entry.retired_at:
        typer.echo(f"{kid} was already retired on {entry.retired_at}; nothing changed", err=True)
    else:
        typer.echo(f"retired {kid}: its tokens are refused from now on", err=True)


# --- client: insights, definitions -----------------------------------------------------------

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


@app.command()
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
    from pinsights.cli.query_screens import echo_json, print_insights, run_query

    response = run_query(
        base_url,
        token,
        lambda client: client.audience_insights_get(ad_account_id, insight_type.upper(), date=date),
    )
    if as_json:
        echo_json(response)
    else:
        print_insights(ad_account_id, response, limit=limit or None)


@app.command()
def definitions(
    ad_account_id: str = typer.Argument(..., help="Ad account id (digits)."),
    as_json: bool = typer.Option(False, "--json", help="Print the wire JSON document."),
    base_url: str | None = BASE_URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """List the audiences of an ad account that have insights, per snapshot date."""
    from pinsights.cli.query_screens import echo_json, print_definitions, run_query

    response = run_query(
        base_url, token, lambda client: client.audience_insights_scope_and_type_get(ad_account_id)
    )
    if as_json:
        echo_json(response)
    else:
        print_definitions(ad_account_id, response)


def main() -> None:  # pragma: no cover - console entry point
    app()
