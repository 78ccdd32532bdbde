"""`pinsights build` and `pinsights quarantine` as a user runs them: real processes, real files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinsights.data.generate import generate
from pinsights.engine.backends import DuckDBBackend, memory_bytes
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
    with duckdb.connect(str(store / entry["file"]), read_only=True) as con:
        rows = con.execute("SELECT ad_account_id, insight_type, body FROM documents ORDER BY 1, 2")
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
