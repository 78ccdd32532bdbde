"""Incremental refresh on a dataset of mixed formats (issue 23): the history in one format, new
days in another, as a platform's exports change over time.

A full read types every event file by the union of all of them (text when Parquet and text files
are mixed), and judges and quarantines each row with those columns. A refresh reads only the new
files: DuckDB reads them typed by every file (the others' empty shape unioned in), so a new day
in any format is read alone and the build stays incremental, counts carried by deltas — and
publishes byte for byte what a plain full build publishes. A Parquet file that changes the
Parquet files' own types (ids written as DOUBLE: every Parquet file's ids then read as
``….0``) changes how the kept files would be read: the build is full, and says why.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.datasets import TextStyle
from tests.test_refresh import START, Platform, built_both, eight_users_and_pins, saves


def mixed_history(root: Path) -> Platform:
    """Users and pins 1-8; day 0's events in Parquet, day 1's in CSV, one bad row in each."""
    platform = eight_users_and_pins(root, None)
    for day, suffix in ((0, "parquet"), (1, "csv")):
        append(platform, day, suffix)
    return platform


def append(platform: Platform, day: int, suffix: str) -> str:
    date = START + dt.timedelta(days=day)
    rows = saves(date, 9, users=9, pins=8)  # user 9 is unknown: a quarantined row, serialised
    name = f"date={date.isoformat()}/part-0.{suffix}"
    platform.files[name] = (rows, TextStyle())
    platform.write_events(name)
    return name


def built(platform: Platform, root: Path) -> dict[str, Any]:
    platform.write()
    return dict(built_both(platform.root, root)["refresh"])


@pytest.mark.parametrize("suffix", ["csv", "jsonl.gz", "parquet", "csv.zst"])
def test_a_new_day_in_any_format_is_read_alone(tmp_path: Path, suffix: str) -> None:
    platform = mixed_history(tmp_path / "data")
    assert built(platform, tmp_path)["mode"] == "full"  # the first build writes the state
    append(platform, 2, suffix)
    refresh = built(platform, tmp_path)
    assert refresh["mode"] == "incremental", refresh
    assert refresh["event_files"] == {"read": 1, "kept": 2, "gone": 0}, refresh
    assert refresh["counts"] == "delta", refresh
    append(platform, 3, "csv" if suffix == "parquet" else "parquet")  # and back again
    refresh = built(platform, tmp_path)
    assert refresh["mode"] == "incremental", refresh
    assert refresh["event_files"] == {"read": 1, "kept": 3, "gone": 0}, refresh


def test_a_parquet_file_that_changes_the_parquet_types_makes_the_build_full(
    tmp_path: Path,
) -> None:
    platform = mixed_history(tmp_path / "data")
    built(platform, tmp_path)
    # Day 2 in both formats: its CSV part makes the new files' view text, as every file's is;
    # its Parquet part has DOUBLE user ids, so every Parquet file's ids now read as "1.0".
    append(platform, 2, "csv")
    date = START + dt.timedelta(days=2)
    rows = saves(date, 4, users=8, pins=8)
    table = pa.table(
        {
            "event_time": pa.array([r["event_time"] for r in rows], pa.timestamp("us", "UTC")),
            "user_id": pa.array([float(r["user_id"]) for r in rows], pa.float64()),
            "pin_id": pa.array([r["pin_id"] for r in rows], pa.int64()),
            "event_type": pa.array([r["event_type"] for r in rows], pa.string()),
        }
    )
    pq.write_table(table, platform.root / "events" / f"date={date.isoformat()}" / "part-1.parquet")
    refresh = built(platform, tmp_path)  # the same bytes as a plain build: checked inside
    assert refresh["mode"] == "full", refresh
    assert refresh["reason"] == "the event files' columns or types differ from the state's"


def test_counts_not_carried_by_deltas_say_why_for_a_requested_date_and_dp(tmp_path: Path) -> None:
    """The window part is kept, and counts carried by deltas, for the default date in the exact
    mode; a build for a requested date or a DP release recounts, and its report says why."""
    from pinsights.engine.settings import BuildSettings
    from pinsights.store.publish import build

    platform = mixed_history(tmp_path / "data")
    platform.write()
    second = START + dt.timedelta(days=1)

    def counts(**options: Any) -> tuple[str, str]:
        settings = BuildSettings(
            data_dir=platform.root,
            store_dir=tmp_path / "store",
            window_days=3,
            min_audience_size=1,
            min_cell_size=1,
            max_bad_fraction=1.0,
            threads=1,
            **options,
        )
        refresh = build(settings)["refresh"]
        return refresh["counts"], refresh["counts_reason"]

    assert counts() == ("recounted", "no refresh state in the store yet")
    assert counts(date=second) == (
        "recounted",
        "a requested --date/--dates: counts by deltas are for the default date",
    )
    assert counts(privacy_mode="dp") == (
        "recounted",
        "--privacy dp: counts by deltas are for the exact mode",
    )
