"""Input errors of the dataset's layout (SPEC §2), each refused with a message that names what is
wrong and where, nothing published, and the previous snapshot kept: a table given twice, a table
folder without a data file, a CSV header that is not UTF-8."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pinsights.engine.build import BuildError
from pinsights.engine.settings import BuildSettings
from pinsights.store import Store
from pinsights.store.publish import build
from tests.datasets import account, event, interest, pin, platform, user, write_dataset
from tests.processes import pinsights

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
