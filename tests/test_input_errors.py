"""Input errors of the dataset's layout (SPEC §2), each refused with a message that names what is
wrong and where, nothing published, and the previous snapshot kept: a table given twice, a table
folder without a data file, a CSV header that is not UTF-8, a file the build may not read, a
table's name on something that is not a file.

A file nobody may read: tests may run as root, which reads a file of mode 000 anyway (the
capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH). As root, the build then runs under
``setpriv`` without those two capabilities, so it meets the permission check a user meets; as
any other user, it runs as it is."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pinsights.engine.build import BuildError
from pinsights.engine.settings import BuildSettings
from pinsights.store import Store
from pinsights.store.publish import build
from tests.datasets import account, event, interest, pin, platform, user, write_dataset
from tests.processes import PROCESS_TIMEOUT, command, pinsights, scrubbed_environment

SMALL = {"min_audience_size": 1, "min_cell_size": 1}


def _tables() -> dict[str, list[dict]]:
    return platform(
        interests=[interest("10", "Food")],
        ad_accounts=[account("1")],
        users=[user(1), user(2)],
        pins=[pin(5, "1", "10")],
        events=[event(1, 5), event(2, 5)],
    )


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A dataset (CSV) and a store where it is already published once."""
    data, store = tmp_path / "data", tmp_path / "store"
    write_dataset(_tables(), data, "csv")
    build(BuildSettings(data_dir=data, store_dir=store, **SMALL))
    return data, store, _documents(store)


def _documents(store: Path) -> dict:
    snapshot = Store(store).latest()
    assert snapshot is not None
    rows = snapshot._cursor().execute("SELECT * FROM documents").fetchall()
    return {(a, t): bytes(b) for a, t, b in rows}


def _refused(data: Path, store: Path, before: dict) -> str:
    with pytest.raises(BuildError) as refused:
        build(BuildSettings(data_dir=data, store_dir=store, date=dt.date(2026, 11, 1), **SMALL))
    assert _documents(store) == before, "the previous snapshot is kept"
    assert len(Store(store).snapshots()) == 1, "nothing new published"
    return str(refused.value)


def test_a_table_given_as_two_files_is_refused_naming_both(published) -> None:
    data, store, before = published
    write_dataset({"users": _tables()["users"]}, data, "jsonl")  # users.csv and users.jsonl
    message = _refused(data, store, before)
    assert "table 'users' is given more than once" in message
    assert "users.csv" in message and "users.jsonl" in message and "keep one" in message


def test_a_table_given_as_a_file_and_a_folder_is_refused(published) -> None:
    data, store, before = published
    (data / "pins").mkdir()
    (data / "pins" / "part-0.csv").write_bytes((data / "pins.csv").read_bytes())
    message = _refused(data, store, before)
    assert "table 'pins' is given more than once" in message and "pins/" in message
    result = pinsights("build", "--data", str(data), "--store", str(store))
    assert result.returncode == 1 and "given more than once" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_table_folder_without_a_data_file_is_refused(published) -> None:
    data, store, before = published
    (data / "users.csv").unlink()
    (data / "users").mkdir()
    (data / "users" / "README.txt").write_text("exported by hand\n")
    (data / "users" / "_SUCCESS").write_text("")
    message = _refused(data, store, before)
    assert f"table 'users': directory {data / 'users'} holds no" in message
    assert ".parquet" in message and ".csv" in message


def test_a_csv_header_that_is_not_utf8_is_refused_naming_the_file(published) -> None:
    data, store, before = published
    path = data / "users.csv"
    header, rest = path.read_bytes().split(b"\n", 1)
    path.write_bytes(header.replace(b"gender", b"g\xe9nder") + b"\n" + rest)
    message = _refused(data, store, before)
    assert f"cannot read {path}: its header line is not UTF-8 text" in message


def test_a_table_that_is_a_broken_link_is_named_as_one_not_as_missing(published) -> None:
    """users.csv → a file on a mount that is not mounted: the message says so, not 'missing'."""
    data, store, before = published
    (data / "users.csv").unlink()
    (data / "users.csv").symlink_to(data.parent / "unmounted" / "users.csv")
    message = _refused(data, store, before)
    assert f"{data / 'users.csv'} is a symbolic link to {data.parent / 'unmounted'}" in message
    assert "does not exist" in message and "missing table" not in message


def test_a_broken_link_inside_a_table_folder_is_refused_not_skipped(published) -> None:
    """Skipping a dangling part file would build from part of the events without a word."""
    data, store, before = published
    (data / "events").mkdir()
    (data / "events.csv").rename(data / "events" / "part-0.csv")
    (data / "events" / "part-1.csv").symlink_to(data / "gone" / "part-1.csv")
    (data / "events" / "notes.txt").symlink_to(data / "gone" / "notes.txt")  # not data: ignored
    message = _refused(data, store, before)
    assert f"{data / 'events' / 'part-1.csv'} is a symbolic link to" in message
    assert "notes.txt" not in message
    (data / "events" / "part-1.csv").unlink()
    build(BuildSettings(data_dir=data, store_dir=store, date=dt.date(2026, 11, 1), **SMALL))


#: Run a command as root without the capabilities that let root read any file.
WITHOUT_OVERRIDE = ("setpriv", "--inh-caps=-dac_override,-dac_read_search",
                    "--bounding-set=-dac_override,-dac_read_search")  # fmt: skip


def _build_as_a_user(data: Path, store: Path) -> subprocess.CompletedProcess[str]:
    """``pinsights build`` in a process that file permissions apply to."""
    prefix = WITHOUT_OVERRIDE if os.geteuid() == 0 else ()
    if prefix:
        assert shutil.which("setpriv"), "setpriv (util-linux) drops root's override"
    return subprocess.run(
        [*prefix, *command("build", "--data", str(data), "--store", str(store), "--date",
                           "2026-11-01", "--min-audience-size", "1", "--min-cell-size", "1")],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT, env=scrubbed_environment(),
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl.gz"])
def test_a_file_the_build_may_not_read_is_refused_naming_it(published, fmt: str) -> None:
    """Exit status 3 (a path that cannot be used: no permission), the same for every format; the
    file named, permission the reason (not "damaged"); nothing published, the snapshot kept."""
    data, store, before = published
    for old in data.glob("users.*"):
        old.unlink()
    write_dataset({"users": _tables()["users"]}, data, fmt)
    path = data / f"users.{fmt}"
    path.chmod(0)
    try:
        result = _build_as_a_user(data, store)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert result.returncode == 3, result.stderr
    assert f"cannot read {path}: permission denied" in result.stderr
    assert "damaged" not in result.stderr and "Traceback" not in result.stderr
    assert _documents(store) == before and len(Store(store).snapshots()) == 1


@pytest.mark.parametrize("what", ["directory", "fifo"])
def test_a_table_name_on_something_that_is_not_a_file_is_refused_naming_it(
    published, what: str
) -> None:
    """``users.csv`` as a folder or a FIFO (reading it would wait forever): the message names it
    and says what it is, never "missing table 'users'" (a link to nothing: tests above)."""
    data, store, before = published
    path = data / "users.csv"
    path.unlink()
    if what == "directory":
        path.mkdir()
        write_dataset({"users": _tables()["users"]}, path, "csv")  # holds data: still refused
        expected = "it is a directory"
    else:
        os.mkfifo(path)
        expected = "it is not a regular file"
    message = _refused(data, store, before)
    assert f"cannot read {path} (table 'users'): {expected}" in message
    assert "missing table" not in message
