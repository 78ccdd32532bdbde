"""Snapshots are published atomically, deterministically, and retained as configured (SPEC §4).

Builds killed at each step of publishing, backfills and concurrent writers: tests/test_store_hygiene.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from pinsights.engine.build import BuildError
from pinsights.engine.settings import BuildSettings
from pinsights.store import Store
from pinsights.store.publish import build
from pinsights.synthetic.generate import generate
from tests.datasets import snapshot_tables

END = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("platform") / "data"
    generate(out, users=3_000, accounts=6, days=10, end_date=END, seed=11, events=120_000)
    return out


def all_tables(store: Store, date: dt.date | None = None) -> dict[str, Any]:
    """Every table of a snapshot (accounts, level-1 interests, audiences with `qualifies`,
    documents, category lists, the date), as tests.datasets.snapshot_tables reads them."""
    snapshot = store.latest() if date is None else store.snapshot(date)
    assert snapshot is not None
    tables = snapshot_tables(snapshot.path)
    assert tables["accounts"] and tables["documents"] and tables["category_items"]
    assert len(tables["documents"]) == len(tables["audiences"]) == 1 + 2 * len(tables["accounts"])
    return tables


def all_documents(store: Store, date: dt.date | None = None) -> dict[tuple[str, str], bytes]:
    return all_tables(store, date)["documents"]


def test_rebuilding_the_same_input_gives_byte_identical_documents(
    platform: Path, tmp_path: Path
) -> None:
    first, second = Store(tmp_path / "a"), Store(tmp_path / "b")
    build(BuildSettings(data_dir=platform, store_dir=first.root))
    build(BuildSettings(data_dir=platform, store_dir=second.root))
    build(BuildSettings(data_dir=platform, store_dir=second.root))  # and again, replacing itself
    assert all_tables(first) == all_tables(second)
    assert len(second.snapshots()) == 1, "a rebuild of the same date replaces, not duplicates"


def test_newest_snapshot_is_served_and_older_dates_stay_readable(
    platform: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    for day in (END - dt.timedelta(days=2), END, END - dt.timedelta(days=1)):
        build(BuildSettings(data_dir=platform, store_dir=store.root, date=day, window_days=5))
    assert [info.date for info in store.snapshots()] == [
        END,
        END - dt.timedelta(days=1),
        END - dt.timedelta(days=2),
    ]
    latest = store.latest()
    assert latest is not None and latest.date == END
    older = all_documents(store, END - dt.timedelta(days=2))
    assert all(b'"date":"2026-11-18"' in body for body in older.values())


def test_retention_keeps_only_the_newest_dates_and_deletes_the_rest(
    platform: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    for offset in range(4):
        day = END - dt.timedelta(days=3 - offset)
        build(BuildSettings(data_dir=platform, store_dir=store.root, date=day, retain=2))
    assert [info.date for info in store.snapshots()] == [END, END - dt.timedelta(days=1)]
    files = sorted(p.name for p in (store.root / "snapshots").iterdir())
    assert len(files) == 2, files


def test_a_failed_build_publishes_nothing_and_keeps_the_previous_snapshot(
    platform: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    build(BuildSettings(data_dir=platform, store_dir=store.root))
    before = all_tables(store)
    broken = tmp_path / "broken"
    broken.mkdir()
    for entry in platform.iterdir():
        if entry.name != "pins.parquet":
            (broken / entry.name).symlink_to(entry)
    with pytest.raises(BuildError, match="missing table 'pins'"):
        build(BuildSettings(data_dir=broken, store_dir=store.root))
    assert all_tables(store) == before
    failed = [r for r in store.reports() if not r["published"]]
    assert failed and "pins" in failed[-1]["error"]


def test_a_second_concurrent_build_on_one_store_is_refused(platform: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.build_lock(), pytest.raises(BuildError, match="another build is running"):
        build(BuildSettings(data_dir=platform, store_dir=store.root))


def test_documents_are_exactly_the_compact_json_of_their_content(
    platform: Path, tmp_path: Path
) -> None:
    """Documents are written as text fragments; they must equal json.dumps of what they hold."""
    import json

    store = Store(tmp_path / "store")
    build(BuildSettings(data_dir=platform, store_dir=store.root, min_cell_size=5))
    snapshot = store.latest()
    assert snapshot is not None
    bodies = [row[0] for row in snapshot._cursor().execute("SELECT body FROM documents").fetchall()]
    bodies += [
        row[0] for row in snapshot._cursor().execute("SELECT body FROM category_items").fetchall()
    ]
    assert len(bodies) > 10
    for body in bodies:
        parsed = json.loads(body)
        assert json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode() == body
