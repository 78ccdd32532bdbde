"""`pinsights build` and `pinsights quarantine` as a user runs them: real processes, real files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinsights.engine.duckdb.backend import DuckDBBackend
from pinsights.engine.memory import memory_bytes
from pinsights.store import Store
from pinsights.synthetic.generate import generate
from tests.processes import pinsights

END = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small platform with a few bad users and events appended in a second file."""
    out = tmp_path_factory.mktemp("cli") / "data"
    generate(out, users=2_000, accounts=4, days=5, end_date=END, seed=5, events=40_000)
    users = pq.read_table(out / "users.parquet")
    (out / "users.parquet").rename(out / "users-main.parquet")
    (out / "users").mkdir()
    (out / "users-main.parquet").rename(out / "users" / "part-0.parquet")
    bad_users = pa.table(
        {
            "user_id": pa.array([users["user_id"][0].as_py(), 99_999_999], pa.int64()),
            "age_bucket": ["18-24", "17-"],
            "gender": ["female", "female"],
            "country": ["US", "US"],
            "metro": ["501", "501"],
            "device": ["web", "web"],
        }
    )
    pq.write_table(bad_users, out / "users" / "part-1.parquet")
    return out


def digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_build_json_prints_the_report_on_stdout_and_quarantine_lists_bad_rows(
    dataset: Path, tmp_path: Path
) -> None:
    before = digest(dataset)
    store = tmp_path / "store"
    built = pinsights("build", "--data", str(dataset), "--store", str(store), "--json")
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["date"] == END.isoformat()
    assert report["window"] == {"start": "2026-10-22", "end": "2026-11-20", "days": 30}
    assert report["engine"] == "duckdb"
    users = report["tables"]["users"]
    # The duplicated id quarantines both of its rows; the bad age bucket is a bad value.
    assert users["quarantined"] == {"bad_value": 1, "duplicate_key": 2}
    assert users["read"] == users["used"] + 3
    assert set(report["tables"]) == {
        "interests",
        "ad_accounts",
        "users",
        "metros",
        "pins",
        "events",
    }
    assert all(seconds >= 0 for seconds in report["timings"].values())
    assert digest(dataset) == before, "input files must never be modified"

    shown = pinsights("quarantine", "--store", str(store), "--json")
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert payload["summary"]["users"] == {"bad_value": 1, "duplicate_key": 2}
    bad_age = [row for row in payload["rows"] if row["rule"] == "bad_value"]
    assert bad_age[0]["row"]["age_bucket"] == "17-"
    assert bad_age[0]["source_file"].endswith("users/part-1.parquet")

    human = pinsights("quarantine", "--store", str(store))
    assert human.returncode == 0
    assert "duplicate_key" in human.stderr and "17-" in human.stderr


def test_build_fails_with_a_summary_when_a_table_has_too_many_bad_rows(
    dataset: Path, tmp_path: Path
) -> None:
    failed = pinsights(
        "build", "--data", str(dataset), "--store", str(tmp_path / "s"), "--max-bad-fraction", "0"
    )
    assert failed.returncode == 1
    assert "too many bad rows" in failed.stderr
    assert "users: 3 of" in failed.stderr and "duplicate_key: 2" in failed.stderr
    assert failed.stdout == ""
    assert not (tmp_path / "s" / "manifest.json").exists(), "nothing may be published"


def test_build_names_a_missing_column(dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for entry in dataset.iterdir():
        if entry.name != "ad_accounts.parquet":
            (data / entry.name).symlink_to(entry)
    pq.write_table(pa.table({"ad_account_id": ["1"]}), data / "ad_accounts.parquet")
    failed = pinsights("build", "--data", str(data), "--store", str(tmp_path / "s"))
    assert failed.returncode == 1
    assert "table 'ad_accounts' is missing column(s) name" in failed.stderr


def test_build_refuses_an_unknown_engine_without_a_traceback(tmp_path: Path) -> None:
    failed = pinsights("build", "--data", str(tmp_path), "--engine", "presto")
    assert failed.returncode == 2, "a value outside its set is a bad command line (docs/cli.md)"
    assert "'presto' is not one of duckdb, spark" in failed.stderr
    assert "Traceback" not in failed.stderr


def snapshot_documents(store: Path) -> list[tuple[str, str, bytes]]:
    (entry,) = json.loads((store / "manifest.json").read_text())["snapshots"]
    snapshot = Store(store).snapshot(dt.date.fromisoformat(entry["date"]))
    assert snapshot is not None
    rows = snapshot._cursor().execute(
        "SELECT ad_account_id, insight_type, body FROM documents ORDER BY 1, 2"
    )
    return [(a, t, bytes(b)) for a, t, b in rows.fetchall()]


def test_report_shows_rows_per_step_peak_memory_and_the_summary_events_per_second(
    dataset: Path, tmp_path: Path
) -> None:
    built = pinsights("build", "--data", str(dataset), "--store", str(tmp_path / "s"), "--json")
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    tables, steps = report["tables"], report["steps"]
    assert 50 * 2**20 < report["peak_rss_bytes"] < 4 * 2**30
    read = sum(t["read"] for t in tables.values())
    used = sum(t["used"] for t in tables.values())
    assert steps["validate"] | {"seconds": 0} == {"seconds": 0, "rows_in": read, "rows_out": used}
    assert steps["quarantine"] | {"seconds": 0} == {
        "seconds": 0,
        "rows_in": read,
        "rows_out": read - used,
    }
    assert steps["facts"]["rows_in"] == tables["events"]["used"]
    assert 0 < steps["facts"]["rows_out"] < steps["facts"]["rows_in"]
    assert steps["documents"]["rows_out"] == report["audiences"]["documents"]
    assert {name: step["seconds"] for name, step in steps.items()} == report["timings"]
    assert report["seconds"] >= sum(report["timings"].values()) - 0.01
    assert report["events_per_second"] == round(tables["events"]["read"] / report["seconds"])

    human = pinsights("build", "--data", str(dataset), "--store", str(tmp_path / "h"))
    assert human.returncode == 0, human.stderr
    assert f"{tables['events']['read']:,} events" in human.stderr
    assert "events/s" in human.stderr and "peak memory" in human.stderr


def test_a_memory_limit_gives_the_same_documents_and_leaves_no_spill_files(
    dataset: Path, tmp_path: Path
) -> None:
    free = pinsights("build", "--data", str(dataset), "--store", str(tmp_path / "free"))
    assert free.returncode == 0, free.stderr
    store = tmp_path / "tight"
    leftover = store / ".tmp-build-otherhost-1-spill-20261120T000000Z-killed"
    leftover.mkdir(parents=True)
    (leftover / "duckdb_temp_block-1.block").write_bytes(b"x" * 1024)
    tight = pinsights(
        "build", "--data", str(dataset), "--store", str(store), "--memory-limit", "64MB"
    )
    assert tight.returncode == 0, tight.stderr
    assert snapshot_documents(store) == snapshot_documents(tmp_path / "free")
    assert not list(store.glob(".tmp-*")), "spill files of this and earlier builds are removed"


def test_a_memory_limit_duckdb_cannot_read_is_a_clear_error(dataset: Path, tmp_path: Path) -> None:
    failed = pinsights(
        "build", "--data", str(dataset), "--store", str(tmp_path / "s"), "--memory-limit", "lots"
    )
    assert failed.returncode == 2, "a value that is not a size is a bad command line"
    assert "'--memory-limit': 'lots' is not a size" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "s" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("limit", "duckdb_share"),
    [
        ("8GB", 7_200_000_000),  # a tenth of the limit for the rest of the process
        ("8 GiB", 8 * 2**30 - int(8 * 2**30 * 0.1)),
        ("40GB", 40_000_000_000 - 2**30),  # the rest never needs more than 1 GiB
        ("1GB", 1_000_000_000 - 256 * 2**20),  # nor less than 256 MiB
        ("64MB", 32_000_000),  # but at most half of the limit
    ],
)
def test_the_memory_limit_bounds_the_whole_process_not_only_duckdb(
    limit: str, duckdb_share: int
) -> None:
    backend = DuckDBBackend(memory_limit=limit)
    try:
        shown = backend.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        backend.close()
    # DuckDB shows its limit cut to a tenth of its unit (7.2 GiB may show as 7.1 GiB).
    assert memory_bytes(str(shown).replace(" ", "")) == pytest.approx(duckdb_share, rel=0.02)


def test_a_date_whose_window_holds_no_event_is_refused_and_the_served_snapshot_stays(
    dataset: Path, tmp_path: Path
) -> None:
    store = tmp_path / "s"
    assert pinsights("build", "--data", str(dataset), "--store", str(store)).returncode == 0
    manifest = (store / "manifest.json").read_bytes()
    first_day = (END - dt.timedelta(days=4)).isoformat()
    typo = pinsights("build", "--data", str(dataset), "--store", str(store), "--date", "2030-01-01")
    assert typo.returncode == 1, typo.stderr
    (line,) = typo.stderr.strip().splitlines()
    assert "no valid event in the window of 2030-01-01 (2029-12-03..2030-01-01)" in line
    assert f"events run from {first_day} to {END}" in line and "--allow-empty" in line
    assert (store / "manifest.json").read_bytes() == manifest, "the served snapshot is the same"

    # Several dates: one empty window refuses them all before any is published.
    several = pinsights(
        "build", "--data", str(dataset), "--store", str(store), "--window-days", "1",
        "--dates", f"{END - dt.timedelta(days=1)}..{END + dt.timedelta(days=1)}",
    )  # fmt: skip
    assert several.returncode == 1
    assert f"window of {END + dt.timedelta(days=1)} " in several.stderr
    assert f"window of {END} " not in several.stderr
    assert "published before" not in several.stderr
    assert (store / "manifest.json").read_bytes() == manifest

    # A window that reaches back into the data is built; --allow-empty publishes an empty one.
    reaching = pinsights(
        "build", "--data", str(dataset), "--store", str(store), "--window-days", "2", "--json",
        "--date", (END + dt.timedelta(days=1)).isoformat(),
    )  # fmt: skip
    assert reaching.returncode == 0, reaching.stderr
    allowed = pinsights(
        "build", "--data", str(dataset), "--store", str(store), "--json", "--allow-empty",
        "--date", "2030-01-01",
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["audiences"]["pinterest_total_audience"] == 0


@pytest.mark.parametrize("limit", ["30MB", "1KB"])
def test_a_memory_limit_below_the_minimum_is_refused_before_any_work(
    dataset: Path, tmp_path: Path, limit: str
) -> None:
    store = tmp_path / "s"
    failed = pinsights(
        "build", "--data", str(dataset), "--store", str(store), "--memory-limit", limit
    )
    assert failed.returncode == 2, failed.stderr  # a value out of range
    (line,) = failed.stderr.strip().splitlines()
    assert f"'{limit}' is too small: a build needs at least 64MB" in line
    assert "--memory-limit" in line
    assert not (store / "manifest.json").exists()
    # The same limit from the environment is refused by the build, before any work.
    from_env = pinsights(
        "build", "--data", str(dataset), "--store", str(store), PINSIGHTS_MEMORY_LIMIT=limit
    )
    assert from_env.returncode == 1
    (line,) = from_env.stderr.strip().splitlines()
    assert f"memory limit '{limit}' is too small" in line and "raise --memory-limit" in line
    assert not (store / "manifest.json").exists()


def test_duckdb_out_of_memory_says_to_raise_the_limit_and_never_blames_a_file(
    tmp_path: Path,
) -> None:
    # 64MB is accepted, but 64 threads over a million events need more buffers than the 32 MB
    # DuckDB gets of it (what a many-core machine does by default).
    data = tmp_path / "data"
    generate(data, users=20_000, accounts=10, days=10, end_date=END, seed=3, events=1_000_000)
    failed = pinsights(
        "build", "--data", str(data), "--store", str(tmp_path / "s"), "--memory-limit", "64MB",
        PINSIGHTS_THREADS="64",
    )  # fmt: skip
    assert failed.returncode == 1, failed.stderr
    (line,) = failed.stderr.strip().splitlines()
    assert "DuckDB ran out of memory under the memory limit 64MB: raise --memory-limit" in line
    assert "damaged" not in line and "internal error" not in line
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_store_drop_removes_a_date_atomically_and_waits_for_no_build(
    dataset: Path, tmp_path: Path
) -> None:
    from pinsights.store import Store

    store_dir = tmp_path / "s"
    built = pinsights(
        "build", "--data", str(dataset), "--store", str(store_dir),
        "--dates", f"{END - dt.timedelta(days=1)}..{END}",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    store = Store(store_dir)
    newest = store.latest()
    assert newest is not None and newest.info.date == END
    dropped_file = store_dir / newest.info.file

    with store.build_lock(clean=False):  # a build is running: the drop waits for nothing
        locked = pinsights("store", "drop", END.isoformat(), "--store", str(store_dir))
    assert locked.returncode == 4, locked.stderr
    assert store.latest() is not None and store.latest().info.date == END  # type: ignore[union-attr]

    dropped = pinsights("store", "drop", END.isoformat(), "--store", str(store_dir))
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropped the snapshot of {END}" in dropped.stderr
    assert f"now serving {END - dt.timedelta(days=1)}" in dropped.stderr
    assert [info.date for info in store.snapshots()] == [END - dt.timedelta(days=1)]
    assert not dropped_file.exists()

    again = pinsights("store", "drop", END.isoformat(), "--store", str(store_dir))
    said = " ".join(again.stderr.replace("│", " ").split())  # however the error is framed
    assert again.returncode == 2 and f"no snapshot for {END}" in said
    assert "Traceback" not in again.stderr
    nowhere = pinsights("store", "drop", END.isoformat(), "--store", str(tmp_path / "none"))
    assert nowhere.returncode == 3 and not (tmp_path / "none").exists()
    check = pinsights("store", "check", "--store", str(store_dir), "--no-repair")
    assert check.returncode == 0, check.stdout + check.stderr
