"""The commands that run and administer a server: ``serve``, ``demo``, ``clients``, ``token``, ``keys``.

Each parses its options and calls the server's modules (settings, runner, client registry, keys,
tokens); a key that may not be used is one line and exit status 1 (:func:`keyring_errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pinsights.cli.literal import cell, json_text, literal
from pinsights.cli.options import ACCOUNTS_HELP, STORE_OPTION, existing_store

if TYPE_CHECKING:
    from pinsights.server.keys import KeyFile
    from pinsights.server.settings import ServerSettings


def _env(text: str, name: str, default: str | None = None) -> str:
    """Help for a `serve` option that the server also reads from ``PINSIGHTS_<NAME>``: the option
    defaults to None (not given: the environment, then the server's default, decides), so the
    default and the variable are written here; tests/test_server_cli.py checks them against
    the server's settings."""
    shown = f"default: {default}; " if default is not None else ""
    return f"{text}  [{shown}env var: PINSIGHTS_{name}]"


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


def account_names(store_dir: Path) -> dict[str, str]:
    """The names the newest snapshot of a store gives its accounts (none for an older snapshot)."""
    from pinsights.store import Store

    newest = Store(store_dir).latest()
    records = newest.accounts() if newest is not None else []
    return {record.ad_account_id: record.name for record in records if record.name}


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
    stderr.print(
        cell(f"Preparing the demo platform in {directory} (about a minute the first time)…")
    )
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
    names = account_names(platform.store_dir)
    typer.echo("Ad accounts (largest first):")
    for account in accounts:
        typer.echo(f"  {account}  {literal(names.get(account, ''))}".rstrip())
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
    client, secret = ClientRegistry(existing_store(store)).add(name, accounts)
    if as_json:
        payload = {"client_id": client.client_id, "client_secret": secret, "name": client.name}
        typer.echo(json_text({**payload, "ad_accounts": client.ad_accounts}, indent=2))
    else:
        typer.echo(f"client_id:     {client.client_id}\nclient_secret: {secret}")
    typer.echo("Keep the secret now: only its hash is stored.", err=True)


def clients_list(
    store: Path = STORE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the clients as JSON."),
) -> None:
    """List registered clients (never their secrets)."""
    from pinsights.server.clients import ClientRegistry

    clients = ClientRegistry(existing_store(store)).clients()
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
        typer.echo(json_text(rows, indent=2))
        return
    for c in clients:
        status = f"revoked {c.revoked_at}" if c.revoked_at else "active"
        typer.echo(f"{c.client_id}  {literal(c.name)}  {','.join(c.ad_accounts)}  {status}")


def clients_revoke(
    client_id: str = typer.Argument(..., help="The client to revoke."),
    store: Path = STORE_OPTION,
) -> None:
    """Revoke a client: no new tokens, and its tokens stop working on running servers."""
    from pinsights.server.clients import ClientRegistry

    try:
        client = ClientRegistry(existing_store(store)).revoke(client_id)
    except KeyError:
        raise typer.BadParameter(
            f"no client {client_id} in {store} (`pinsights clients list` lists them)",
            param_hint="CLIENT_ID",
        ) from None
    typer.echo(f"revoked {client_id} ({client.revoked_at})", err=True)


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
        existing_store(store)
    with _keyring_errors():
        service = TokenService(keyring_source(store, secret))
    typer.echo(service.issue(CLI_CLIENT_ID, scopes, accounts, ttl))


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
    return KeyFile(existing_store(store))


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
        typer.echo(json_text(rows, indent=2))
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
