"""The store is created owner-only (review finding): insights, quarantined rows, reports, client
hashes and signing keys are not for other users of the machine, whatever the umask."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pinsights.cli import app
from pinsights.synthetic.generate import generate
from tests.conftest import BuiltPlatform
from tests.processes import pinsights


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_built_store_is_owner_only(built_platform: BuiltPlatform) -> None:
    store = built_platform.store
    directories = [store, *(path for path in store.rglob("*") if path.is_dir())]
    assert {path.name for path in directories} >= {store.name, "snapshots", "reports"}
    assert all(mode(path) == 0o700 for path in directories), {
        str(path): oct(mode(path)) for path in directories
    }


STORE_COMMANDS = [
    ["clients", "add", "--name", "n", "--ad-accounts", "1"],
    ["clients", "list"],
    ["clients", "revoke", "no-such-client"],
    ["token", "--ad-accounts", "1"],
    ["keys", "list"],
    ["keys", "rotate"],
    ["keys", "retire", "no-such-kid"],
]


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_a_mistyped_store_is_refused_and_nothing_is_created(
    tmp_path: Path, command: list[str]
) -> None:
    """Only `build` and `serve` create a store: a client, a key or a token made in a new store
    by a typo would belong to a store no server reads (docs/cli.md)."""
    store = tmp_path / "new" / "store"
    result = CliRunner().invoke(
        app, [*command, "--store", str(store)], env={"PINSIGHTS_SECRET": None}
    )
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pinsights: "), result.output
    assert f"no store at {store}" in lines[0] and f"mkdir -m 700 {store}" in lines[0]
    assert not (tmp_path / "new").exists()


def test_a_token_from_the_configured_secret_needs_no_store(tmp_path: Path) -> None:
    store = tmp_path / "nowhere"
    result = CliRunner().invoke(
        app,
        ["token", "--ad-accounts", "1", "--store", str(store)],
        env={"PINSIGHTS_SECRET": "k" * 32},
    )
    assert result.exit_code == 0 and result.stdout.count(".") == 2, result.output
    assert not store.exists()


@pytest.mark.parametrize("command", STORE_COMMANDS[:2] + STORE_COMMANDS[3:6], ids=" ".join)
def test_commands_write_a_made_store_owner_only(tmp_path: Path, command: list[str]) -> None:
    """In a store made with the documented `mkdir -m 700`, the files they write are 0600."""
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    old_umask = os.umask(0o022)  # the usual default: 0755 directories, 0644 files
    try:
        result = CliRunner().invoke(
            app, [*command, "--store", str(store)], env={"PINSIGHTS_SECRET": None}
        )
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    assert mode(store) == 0o700
    for path in store.iterdir():
        if path.is_file() and path.suffix == ".json":
            assert mode(path) == 0o600, path
            json.loads(path.read_text())


def test_a_build_into_an_open_store_writes_every_file_owner_only(tmp_path: Path) -> None:
    """A store whose directories already existed open (0755: made by hand, or copied), built with
    the usual umask: every file the build writes — snapshot, quarantine, report, manifest, lock —
    is 0600 and the store's own directories become 0700; the store directory itself, the user's,
    is left as it was (issue 18: the files were 0644 and relied on the store being 0700)."""
    data = tmp_path / "data"
    generate(data, users=300, accounts=2, days=3, end_date=dt.date(2026, 11, 20), seed=3)
    store = tmp_path / "store"
    for directory in (store, store / "snapshots", store / "reports"):
        directory.mkdir()
        directory.chmod(0o755)
    old_umask = os.umask(0o022)
    try:
        built = pinsights("build", "--data", str(data), "--store", str(store))
    finally:
        os.umask(old_umask)
    assert built.returncode == 0, built.stderr
    files = [path for path in store.rglob("*") if path.is_file()]
    names = {str(path.relative_to(store)).split("/")[0] for path in files}
    assert names >= {"manifest.json", "quarantine.duckdb", "reports", "snapshots", ".build.lock"}
    assert {str(path.relative_to(store)): oct(mode(path)) for path in files} == {
        str(path.relative_to(store)): oct(0o600) for path in files
    }
    below = [path for path in store.rglob("*") if path.is_dir()]
    assert below and all(mode(path) == 0o700 for path in below), [oct(mode(p)) for p in below]
    assert mode(store) == 0o755
