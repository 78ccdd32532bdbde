"""The server's commands: docs/server.md documents every option they have, and they refuse bad input."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pinsights.cli import app
from pinsights.cli.errors import ExitStatus
from tests.processes import pinsights

DOCS = Path(__file__).resolve().parents[1] / "docs" / "server.md"
SERVER_COMMANDS = (
    ("serve",),
    ("demo",),
    ("token",),
    ("clients", "add"),
    ("clients", "list"),
    ("clients", "revoke"),
    ("keys", "list"),
    ("keys", "rotate"),
    ("keys", "retire"),
)


def command(path: tuple[str, ...]) -> Any:
    found: Any = typer.main.get_command(app)
    for name in path:
        found = found.commands[name]
    return found


@pytest.mark.parametrize("path", SERVER_COMMANDS, ids=" ".join)
def test_docs_cover_every_option(path: tuple[str, ...]) -> None:
    docs = DOCS.read_text()
    assert f"pinsights {' '.join(path)}" in docs or f"`{' '.join(path)}`" in docs
    for parameter in command(path).params:
        for option in parameter.opts:
            if option.startswith("--"):
                assert option in docs, f"{option} of {' '.join(path)} is not in docs/server.md"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--rate-limit", "lots"], "invalid rate limit"),
        (["serve", "--rate-limit-storage", "mongodb://db"], "invalid rate-limit storage"),
        (["token", "--ad-accounts", "12,abc"], "invalid ad account id"),
        (["clients", "add", "--name", "x", "--ad-accounts", ""], "no ad account"),
    ],
)
def test_invalid_options_are_refused_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, [*args, "--store", str(tmp_path / "store")])
    assert result.exit_code == 2
    assert message in result.output


def test_revoking_an_unknown_client_fails(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["clients", "revoke", "nope", "--store", str(tmp_path)])
    assert result.exit_code == 2 and "no client nope" in result.output


def test_a_port_in_use_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """Not uvicorn's multi-line log after "Application startup complete": one line, first."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = pinsights("serve", "--store", str(tmp_path / "s"), "--port", str(port))
    assert result.returncode == ExitStatus.UNUSABLE_PATH, result.stderr
    assert result.stderr.splitlines() == [
        f"pinsights: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another server? pick another --port)"
    ], result.stderr


def test_serving_a_store_without_snapshots_warns(tmp_path: Path, server_factory: Any) -> None:
    """A mistyped --store is a new store: the server starts (a build may come), but says so."""
    server = server_factory(tmp_path / "typo")
    assert server.client.get("/healthz").json()["snapshot_date"] is None
    server.stop()
    log = server.log_path.read_text()
    assert "warning: " in log and "holds no snapshot" in log and "is --store right?" in log
