"""The store is created owner-only (review finding): insights, quarantined rows, reports, client
hashes and signing keys are not for other users of the machine, whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pinsights.cli import app
from tests.conftest import BuiltPlatform


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_built_store_is_owner_only(built_platform: BuiltPlatform) -> None:
    store = built_platform.store
    directories = [store, *(path for path in store.rglob("*") if path.is_dir())]
    assert {path.name for path in directories} >= {store.name, "snapshots", "reports"}
    assert all(mode(path) == 0o700 for path in directories), {
        str(path): oct(mode(path)) for path in directories
    }


@pytest.mark.parametrize(
    "command",
    [
        ["clients", "add", "--name", "n", "--ad-accounts", "1"],
        ["token", "--ad-accounts", "1"],
        ["keys", "list"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_commands_that_create_a_store_create_it_owner_only(
    tmp_path: Path, command: list[str]
) -> None:
    store = tmp_path / "new" / "store"
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
