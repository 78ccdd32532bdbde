"""`pinsights build` and `pinsights quarantine` as a user runs them: real processes, real files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinsights.data.generate import generate
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
    assert failed.returncode == 1
    assert "unknown engine 'presto'" in failed.stderr
    assert "Traceback" not in failed.stderr
