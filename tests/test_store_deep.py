"""`pinsights store check --deep` (SPEC §5): the newest build recounted in full and compared.

An incremental build must publish what a full build of the same inputs publishes; `--deep` lets a
platform check that for its own store. These tests run the command as a user does (a real process)
on stores built incrementally, changed in place behind the store's back, and built from inputs that
changed afterwards — the last is not damage, and the check must say so rather than blame the store.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinsights.engine.settings import BuildSettings
from pinsights.store import Store
from pinsights.store.publish import build
from pinsights.store.snapshot import SnapshotFile
from pinsights.synthetic.generate import generate
from tests.processes import pinsights

END = dt.date(2026, 10, 31)
SMALL = {"min_audience_size": 5, "min_cell_size": 2}
STORE_DAMAGED = 6


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deep") / "data"
    generate(out, users=1_500, accounts=4, days=6, end_date=END, seed=5, events=20_000)
    return out


@pytest.fixture
def data(source: Path, tmp_path: Path) -> Path:
    """A copy of the platform the test may change."""
    copy = tmp_path / "data"
    shutil.copytree(source, copy)
    return copy


def built(data: Path, store: Path, **options: Any) -> dict[str, Any]:
    return build(BuildSettings(data_dir=data, store_dir=store, **SMALL, **options))


def deep(store: Path, data: Path) -> tuple[int, dict[str, Any]]:
    shown = pinsights(
        "store", "check", "--store", str(store), "--deep", "--data", str(data), "--json"
    )
    assert shown.returncode in (0, STORE_DAMAGED), shown.stderr
    return shown.returncode, json.loads(shown.stdout)


def test_an_incremental_store_equals_a_full_build_of_its_inputs(data: Path, tmp_path: Path) -> None:
    """Built on two days, the second incrementally with a late day and a late file of events
    (bad rows among them, so the quarantine is compared too): every digest equal."""
    events = data / "events"
    last = sorted(events.iterdir())[-1]
    held = tmp_path / last.name
    last.rename(held)
    store = tmp_path / "store"
    built(data, store, date=END - dt.timedelta(days=1))
    held.rename(last)
    part = next(last.glob("*.parquet"))
    late = pq.read_table(part).slice(0, 50).to_pylist()
    late[0]["event_type"] = "LIKE"  # bad_value
    late[1]["user_id"] = 999_999_999  # unknown_reference
    schema = pq.read_schema(part)
    pq.write_table(pa.Table.from_pylist(late, schema=schema), last / "late.parquet")
    report = built(data, store, date=END)
    assert report["refresh"]["mode"] == "incremental", report["refresh"]
    assert sum(report["tables"]["events"]["quarantined"].values()) == 2

    status, found = deep(store, data)
    assert status == 0, found["problems"]
    assert found["deep"]["inputs"] == "same"
    assert found["deep"]["differences"] == []
    assert found["deep"]["dates"] == [END.isoformat()]
    # every table of the snapshot (documents, accounts, audiences, categories, …) and the
    # quarantine: at least the seven the format holds
    assert found["deep"]["compared"] >= 7


def test_a_document_changed_behind_the_stores_back_is_found_and_named(
    data: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    built(data, store)
    snapshot = next((store / "snapshots").glob("*.sqlite"))
    with sqlite3.connect(snapshot.as_uri() + "?mode=ro", uri=True) as con:
        # formats 3 and 4: the body lies in the region after the database (format 4: after the
        # hash table there), where document_offsets says
        account, kind, at, length = con.execute(
            "SELECT ad_account_id, insight_type, body_start, body_length FROM document_offsets"
            " WHERE insight_type = 'YOUR_TOTAL_AUDIENCE' ORDER BY ad_account_id LIMIT 1"
        ).fetchone()
    start = SnapshotFile(snapshot).body_region()[0]
    with open(snapshot, "r+b") as handle:
        handle.seek(start + at)
        body = handle.read(length)
        size = json.loads(body)["size"]
        # still a sound document of its type (and as long): only a recount can tell
        changed = body.replace(b'"size":%d' % size, b'"size":%d' % (size ^ 1), 1)
        assert changed != body and len(changed) == length
        handle.seek(start + at)
        handle.write(changed)

    plain = pinsights("store", "check", "--store", str(store))
    assert plain.returncode == 0, plain.stdout  # the shallow check cannot see it

    status, found = deep(store, data)
    assert status == STORE_DAMAGED
    assert found["deep"]["inputs"] == "same"
    [problem] = found["problems"]
    assert "table documents" in problem and f"{account} {kind}" in problem


def test_event_files_changed_since_the_build_are_not_taken_for_damage(
    data: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    built(data, store)
    part = sorted((data / "events").glob("*/*.parquet"))[-1]
    pq.write_table(pq.read_table(part).slice(0, 100), part)  # a re-export with fewer rows

    status, found = deep(store, data)
    assert status == STORE_DAMAGED
    assert found["deep"]["inputs"] == "changed"
    assert found["deep"]["differences"]  # the recount saw other events…
    [problem] = found["problems"]  # …and the one problem says why, not "damage" per table
    assert "the event files changed since the snapshot was built" in problem
    assert any(
        "1 of its files' contents are no longer among them" in n for n in found["deep"]["notes"]
    )


def test_a_dp_store_is_not_recounted_and_says_why(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    built(data, store, privacy_mode="dp")
    status, found = deep(store, data)
    assert status == 0
    assert found["deep"]["compared"] == 0
    assert found["deep"]["notes"] == [
        "DP snapshots are not recounted: their noise is drawn once per release"
    ]


def test_deep_waits_for_no_build_and_needs_its_data(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    built(data, store)
    with Store(store).build_lock():  # a build holds the store
        shown = pinsights("store", "check", "--store", str(store), "--deep", "--data", str(data))
    assert shown.returncode == STORE_DAMAGED
    assert "--deep needs the store to itself and a build is running" in shown.stdout

    alone = pinsights("store", "check", "--store", str(store), "--deep")
    assert alone.returncode == 2 and "--data DIR" in alone.stderr
    stray = pinsights("store", "check", "--store", str(store), "--data", str(data))
    assert stray.returncode == 2 and "only read with --deep" in stray.stderr
    assert not list(store.glob(".tmp-*")), "the recount's temporary store is removed"
