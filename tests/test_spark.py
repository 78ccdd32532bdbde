"""The Spark engine publishes what DuckDB publishes, byte for byte, locally and on a real cluster.

One SparkSession (local, 2 cores, small shuffles) is shared by every in-process test, so the JVM
starts once; builds find it active and reuse it. DuckDB, whose agreement with the independent
reference is tested in test_engine_reference.py, is the yardstick: documents, category lists,
the report's counts and the quarantine must be identical.

The cluster test starts a standalone master and two workers from PySpark's own scripts on
loopback, runs ``pinsights build --engine spark --spark-master spark://…`` in a subprocess and
compares its documents with DuckDB's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from pinsights.engine.build import BuildError
from pinsights.engine.memory import default_memory_limit, memory_bytes
from pinsights.engine.refresh.state import SEGMENT_COLUMNS
from pinsights.engine.settings import BuildSettings
from pinsights.engine.spark.class_archive import class_archive
from pinsights.engine.spark.session import (
    C1_ONLY,
    C2_LATER,
    INTERPRETED,
    JAVA_OPTIONS,
    SMALL_INPUT_BYTES,
    TINY_INPUT_BYTES,
    check_java,
    defaults,
    driver_heap_bytes,
    driver_memory,
    parse_conf,
)
from pinsights.store import Store
from pinsights.store.publish import build
from tests.datasets import (
    FORMATS,
    Platform,
    TextStyle,
    random_builds,
    snapshot_tables,
    write_build,
    write_dataset,
)
from tests.processes import pinsights

# --- comparing two builds --------------------------------------------------------------------


@dataclass
class Published:
    """Everything a build leaves behind that a user can observe."""

    report: dict[str, Any] | None
    error: str | None
    documents: dict[tuple[str, str], bytes]
    category_items: dict[tuple[str, str, str], bytes]
    quarantine: list[tuple[str, str, int | None, str, str]]
    #: The accounts of the snapshot with their names (what ad_accounts/list serves).
    accounts: list[Any]
    #: every table of every published date (tests.datasets.snapshot_tables), by date
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)


def _comparable(text: str) -> str:
    """A raw line as both engines keep it. Bytes that are not UTF-8 are shown as ``?``, but
    DuckDB's decoder and Spark's do not replace the same number of characters: up to there."""
    return text.split("?", 1)[0] + "?" if "?" in text else text


def published(store_dir: Path, report: dict[str, Any] | None, error: str | None) -> Published:
    store = Store(store_dir)
    documents: dict[tuple[str, str], bytes] = {}
    items: dict[tuple[str, str, str], bytes] = {}
    snapshot = store.latest()
    accounts = []
    if snapshot is not None:
        accounts = sorted(snapshot.accounts(), key=lambda record: record.ad_account_id)
        con = snapshot._cursor()
        for account, kind, body in con.execute("SELECT * FROM documents").fetchall():
            documents[(account, kind)] = bytes(body)
        for account, kind, category, body in con.execute("SELECT * FROM category_items").fetchall():
            items[(account, kind, category)] = bytes(body)
    quarantine = list(
        (
            row.table,
            row.source_file,
            row.line,
            row.rule,
            # A JSON Lines row or a malformed line is kept as its raw text; any other row as a
            # JSON object, which both engines write alike (timestamps included), byte for byte.
            _comparable(row.text) if row.row is None or ".jsonl" in row.source_file else row.text,
        )
        for row in store.quarantine_rows()
    )
    quarantine.sort(key=lambda row: (row[0], row[1], row[2] or 0, row[3], row[4]))
    tables = {
        info.date.isoformat(): snapshot_tables(store.root / info.file) for info in store.snapshots()
    }  # every published date (a build with --dates publishes several)
    return Published(report, error, documents, items, quarantine, accounts, tables)


def build_with(engine: str, data_dir: Path, store_dir: Path, **options: Any) -> Published:
    report, error = None, None
    try:
        report = build(
            BuildSettings(data_dir=data_dir, store_dir=store_dir, engine=engine, **options)
        )
    except BuildError as failure:
        error = str(failure)
    return published(store_dir, report, error)


def assert_same(duck: Published, spark: Published) -> None:
    assert (duck.error is None) == (spark.error is None), (duck.error, spark.error)
    assert spark.error == duck.error, "both engines fail alike: the same kind, file and message"
    if duck.report is not None and spark.report is not None:
        # one date's report, or with --dates {"dates", "reports": [one per date]}
        duck_reports = duck.report.get("reports", [duck.report])
        spark_reports = spark.report.get("reports", [spark.report])
        assert len(spark_reports) == len(duck_reports)
        for duck_report, spark_report in zip(duck_reports, spark_reports, strict=True):
            assert spark_report["engine"] == "spark"
            for key in ("date", "window", "tables", "audiences"):
                assert spark_report[key] == duck_report[key], key
    assert spark.quarantine == duck.quarantine
    assert spark.documents.keys() == duck.documents.keys()
    for key, body in duck.documents.items():
        assert spark.documents[key] == body, key
    assert spark.category_items == duck.category_items
    assert spark.accounts == duck.accounts
    assert spark.tables.keys() == duck.tables.keys(), "the same dates published"
    for date, tables in duck.tables.items():  # audiences (with `qualifies`), accounts, interests…
        for name, table in tables.items():
            assert spark.tables[date][name] == table, (date, name)


def build_both(data_dir: Path, scratch: Path, **options: Any) -> tuple[Published, Published]:
    duck = build_with("duckdb", data_dir, scratch / "store-duckdb", **options)
    spark = build_with("spark", data_dir, scratch / "store-spark", **options)
    assert_same(duck, spark)
    return duck, spark


# --- parity ----------------------------------------------------------------------------------


#: Spark parity on drawn platforms costs ~20 s an example; more with PINSIGHTS_SPARK_EXAMPLES.
SPARK_EXAMPLES = int(os.environ.get("PINSIGHTS_SPARK_EXAMPLES", "6"))


@settings(
    max_examples=SPARK_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(random_builds(), st.sampled_from([0.0, 0.05, 1.0]))
def test_spark_publishes_the_same_bytes_as_duckdb_on_random_platforms(
    spark_session: Any,
    case: tuple[Platform, dict[str, TextStyle], dict[str, Any], bool],
    max_bad_fraction: float,
) -> None:
    """Drawn examples (a new draw each run; hypothesis keeps a failing one and shows it first
    next time): the same bytes, or the same failure (--max-bad-fraction 0 and 0.05 make many
    builds fail on their bad rows, with a per-rule summary that must be the same)."""
    platform, styles, options, partitioned = case
    note(platform.describe())
    note(f"styles={styles} options={options} partitioned={partitioned}")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        write_build(case, data_dir)
        build_both(data_dir, Path(scratch), max_bad_fraction=max_bad_fraction, **options)


#: CSV lines of a two-column table whose quoting is unusual, and whether each is malformed, as
#: DuckDB reads them (docs/data-contract.md: broken quoting is malformed; a quote inside an
#: unquoted field is an ordinary character; spaces after a quoted field and one before it are
#: ignored). Spark's own CSV parser read the malformed ones as rows.
QUOTING = (
    (b'"7"x,a', True),  # text after a closing quote
    (b'1,"7"x', True),  # … in the last field
    (b'a,"b"c', True),
    (b'a,"open', True),  # a quote never closed, in the last field
    (b'a,"x""', True),  # a doubled quote, then no closing one
    (b'"7"\t,a', True),  # a tab is not a space
    (b'"a"b"c",d', True),
    (b'"a,b', True),  # a quote never closed, holding the comma
    (b'"7" ,a', False),  # 7
    (b' "7",a', False),  # 7
    (b'  "8",a', False),  # two spaces and a quote: an unquoted field, as written
    (b'"a""b",c', False),
    (b'x"y,z', False),
    (b'a,""""', False),
    (b'"a, ""b""",c', False),
    (b' "x, y" ,z', False),
    (b'"",""', False),
    (b'a,b"', False),
)


def test_spark_reads_csv_quoting_and_keeps_quarantined_times_as_duckdb(
    spark_session: Any, tmp_path: Path
) -> None:
    """Two differences the random parity test found: lines whose quoting is broken (Spark's
    parser kept them as rows, so a row could be quarantined as bad_value instead of malformed,
    or make a good row a duplicate), and a quarantined Parquet event at 23:59:59.999999 (Spark's
    to_json wrote .999, the row was not kept whole)."""
    from tests.datasets import account, at, event, interest, pin, platform, user

    last = at(hour=23, minute=59) + dt.timedelta(seconds=59, microseconds=999999)
    tables = platform(
        interests=[interest("10", "Food")],
        ad_accounts=[account(str(number)) for number in range(1, 2 * len(QUOTING))],
        users=[user(1)],
        pins=[pin(5, "1", "10")],
        events=[event(1, 5), event(1, 99, event_time=last), event(1, 98, event_time=at(hour=9))],
    )
    # each line followed by a plain one: a quote never closed is malformed on its own line only
    # when the next line opens no quote (else CSV reads on, see docs/engine.md)
    broken = tuple((2 * index, raw) for index, (raw, _) in enumerate(QUOTING))
    styles = {"ad_accounts": TextStyle(malformed=broken)}
    fmt = {"interests": "csv", "ad_accounts": "csv", "users": "csv", "pins": "csv",
           "events": "parquet"}  # fmt: skip
    written = write_dataset(tables, tmp_path / "data", fmt, styles=styles)
    duck, spark = build_both(
        tmp_path / "data", tmp_path, min_audience_size=1, min_cell_size=1, max_bad_fraction=1.0
    )
    line_of = {raw: line for _table, _path, line, raw in written.malformed}
    expected = sorted(line_of[raw] for raw, malformed in QUOTING if malformed)
    for result in (duck, spark):
        malformed = sorted(row[2] for row in result.quarantine if row[3] == "malformed")
        assert malformed == expected
    times = [json.loads(row[4])["event_time"] for row in duck.quarantine if row[0] == "events"]
    assert sorted(times) == ["2026-11-01T09:00:00Z", "2026-11-01T23:59:59.999999Z"]


def test_spark_publishes_the_same_bytes_on_generated_data(
    spark_session: Any, tmp_path: Path
) -> None:
    """At the default thresholds (100/10/10), for two dates built in one run (--dates)."""
    from pinsights.synthetic.generate import generate

    summary = generate(tmp_path / "data", users=2500, accounts=4, days=6, seed=11)
    newest = summary.end_date
    duck, spark = build_both(
        tmp_path / "data", tmp_path, dates=(newest - dt.timedelta(days=2), newest)
    )
    assert duck.report is not None and duck.report["dates"] == [
        (newest - dt.timedelta(days=2)).isoformat(),
        newest.isoformat(),
    ]
    assert all(report["audiences"]["reportable"] > 2 for report in duck.report["reports"])
    assert len(spark.tables) == 2, "both dates published"
    for tables in duck.tables.values():
        assert any(qualifies for _size, qualifies in tables["audiences"].values())
    assert len(spark.documents) == len(duck.documents) > 8


#: Two exports of the same rows: every table in another format, compressed text, directories
#: mixing formats, Hive folders, extra columns, BOM and CRLF, malformed lines of every kind.
MESSY_LAYOUTS = (
    {"interests": "csv.zst", "ad_accounts": "jsonl.gz", "users": "parquet+csv.gz",
     "pins": "jsonl", "events": "csv"},
    {"interests": "jsonl.zst", "ad_accounts": "csv", "users": "jsonl",
     "pins": "parquet+jsonl.gz", "events": "parquet"},
)  # fmt: skip
MESSY_LINES = {
    "csv": (
        b"41,18-24,female",  # too few fields
        b"42,18-24,female,US,501,iphone,surplus,more,and,more",  # too many
        b'43,"18-24"x,female,US,501,iphone',  # broken quoting
        b"44,18-24,f\xe9male,US,501,iphone",  # not UTF-8
        b'50,"18-24,female,US,501,iphone',  # a quote never closed
        b'51,18-24",female,US,501',  # a stray quote, which closes it read as CSV
    ),
    "jsonl": (
        # first, after the BOM: not UTF-8 in an object that would otherwise be a row (Spark's
        # first-line BOM removal once decoded it into valid text, and the line into a row)
        b'{"user_id": 48, "gender": "f\xe9male"}',
        b"[45, 2]",
        b"46",
        b'{"user_id": 47, "age_bucket": "18-',
        b'"user 49"',
        b"\xff\xfe",
    ),
}


def messy_tables() -> dict[str, list[dict[str, Any]]]:
    from tests.datasets import account, at, event, interest, pin, platform, user

    return platform(
        interests=[interest("10", 'Say "hi", Café'), interest("11", "Sub", "10")],
        ad_accounts=[account("007"), account("12345678901234567890")],
        users=[user(1, "18-24", "female", "Us"), user(2, None, None, "UK"), user(3, "99")],
        pins=[pin(5, "007", "11"), pin(6, None, "10"), pin(7, "999", None)],
        events=[
            event(1, 5),
            event(2, 5, "IMPRESSION"),
            event(1, 6, "CLICK"),
            event(1, 7),
            event(1, 5, event_time=at(hour=3) + dt.timedelta(microseconds=7)),
            event(3, 5, event_time=at(hour=4).astimezone(dt.timezone(dt.timedelta(hours=2)))),
        ],
    )


@pytest.mark.parametrize("layout", MESSY_LAYOUTS, ids=["layout-a", "layout-b"])
def test_spark_equals_duckdb_on_a_messy_export(
    spark_session: Any, tmp_path: Path, layout: dict[str, str]
) -> None:
    """The same quarantine (table, file, line, rule, raw text) and the same documents."""
    styles = {
        table: TextStyle(
            bom=True,
            crlf=index % 2 == 0,
            malformed=tuple(enumerate(MESSY_LINES[spec.split("+")[-1].split(".")[0]])),
        )
        for index, (table, spec) in enumerate(layout.items())
        if table == "users" and spec != "parquet"
    }
    data_dir = tmp_path / "data"
    written = write_dataset(
        messy_tables(), data_dir, layout, partitioned=True, extra_columns=True,
        anchor=dt.date(2026, 11, 1), styles=styles,
    )  # fmt: skip
    duck, spark = build_both(
        data_dir, tmp_path, min_audience_size=1, min_cell_size=1, max_bad_fraction=1.0
    )
    malformed = [row for row in spark.quarantine if row[3] == "malformed"]
    assert len(malformed) == len(written.malformed) > 0
    assert {(row[1], row[2]) for row in malformed} == {
        (str(path), line) for _table, path, line, _raw in written.malformed
    }
    assert {row[0] for row in duck.quarantine} >= {"ad_accounts", "users", "pins", "events"}
    assert spark.report is not None
    for entry in spark.report["tables"].values():
        assert entry["read"] == entry["used"] + sum(entry["quarantined"].values())


#: (format of the ad_accounts table, whether its files have the optional country and currency)
ACCOUNT_DETAIL_LAYOUTS = (("csv", True), ("jsonl.gz", True), ("parquet+csv", True), ("csv", False))


@pytest.mark.parametrize(("fmt", "details"), ACCOUNT_DETAIL_LAYOUTS)
def test_spark_reads_account_details_as_duckdb_does(
    spark_session: Any, tmp_path: Path, fmt: str, details: bool
) -> None:
    """The optional country and currency columns: read and checked the same way, or absent the
    same way (the quarantined rows then hold only the columns the files have, on both)."""
    from tests.datasets import account, accounts_platform

    rows = [
        account("100", country="us", currency="USD"),
        account("200", country="GB", currency=None),
        account("300", country="KP", currency="EUR"),  # not in the v5 enum: bad_value
        account("400", country="\u212ar", currency="krw"),  # Kelvin sign: bad_value
        account("500", country=None, currency="eur"),
    ]
    if not details:
        rows = [{k: row[k] for k in ("ad_account_id", "name")} for row in rows]
        rows.append({"ad_account_id": "12-3", "name": "Bad id"})
    tables = accounts_platform(rows)
    layout = {table: "parquet" for table in tables} | {"ad_accounts": fmt}
    write_dataset(tables, tmp_path / "data", layout, extra_columns=not details)
    duck, spark = build_both(
        tmp_path / "data", tmp_path, min_audience_size=1, min_cell_size=1, max_bad_fraction=1.0
    )
    (accounts,) = [published["account_details"] for published in spark.tables.values()]
    if details:
        assert accounts == {
            "100": ("Advertiser 100", "US", "USD"),
            "200": ("Advertiser 200", "GB", None),
            "500": ("Advertiser 500", None, "EUR"),
        }
    else:
        assert set(accounts.values()) == {
            (f"Advertiser {i}", None, None) for i in ("100", "200", "300", "400", "500")
        }
    bad = [row for row in duck.quarantine if row[0] == "ad_accounts"]
    assert [row[3] for row in bad] == ["bad_value"] * (2 if details else 1)
    if not details:
        assert '"country"' not in bad[0][4] and '"note"' in bad[0][4]


def test_a_missing_column_is_named_on_spark_too(spark_session: Any, tmp_path: Path) -> None:
    from tests.datasets import account, event, interest, pin, platform, user

    tables = platform(
        interests=[interest("10", "Food")],
        ad_accounts=[account("1")],
        users=[user(1)],
        pins=[pin(5, "1", "10")],
        events=[event(1, 5)],
    )
    for fmt in FORMATS:
        data_dir = tmp_path / fmt
        write_dataset(tables, data_dir, fmt, omit_column=("users", "gender"))
        with pytest.raises(BuildError, match=r"table 'users' is missing column\(s\) gender"):
            build(BuildSettings(data_dir=data_dir, store_dir=tmp_path / "s", engine="spark"))


def test_a_date_whose_window_holds_no_event_is_refused_on_spark_too(
    spark_session: Any, tmp_path: Path
) -> None:
    from tests.datasets import account, at, event, interest, pin, platform, user

    tables = platform(
        interests=[interest("10", "Food")],
        ad_accounts=[account("1")],
        users=[user(1)],
        pins=[pin(5, "1", "10")],
        events=[event(1, 5, event_time=at(dt.date(2026, 11, 1)))],
    )
    write_dataset(tables, tmp_path / "data", "parquet")
    duck, spark = build_both(tmp_path / "data", tmp_path, date=dt.date(2026, 12, 1))
    assert spark.error == duck.error
    assert spark.error is not None and "no valid event in the window of 2026-12-01" in spark.error
    assert "events run from 2026-11-01 to 2026-11-01" in spark.error
    assert not spark.documents, "nothing was published"
    duck, spark = build_both(
        tmp_path / "data", tmp_path / "allowed", date=dt.date(2026, 12, 1), allow_empty=True
    )
    assert spark.report is not None and spark.report["audiences"]["pinterest_total_audience"] == 0


# --- settings and errors ---------------------------------------------------------------------


def test_spark_conf_pairs_are_parsed_and_checked() -> None:
    assert parse_conf(["spark.sql.shuffle.partitions=8", "a.b=x=y"]) == (
        ("spark.sql.shuffle.partitions", "8"),
        ("a.b", "x=y"),
    )
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_conf(["spark.executor.memory"])


def test_without_java_the_build_says_what_to_install(tmp_path: Path) -> None:
    """No JVM stack trace: the message names Java 17 and how to get it; nothing is published."""
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), "PATH": "/nonexistent"}
    env.pop("PINSIGHTS_SPARK_MASTER", None)
    failed = subprocess.run(
        [sys.executable, "-m", "pinsights.cli", "build", "--data", str(tmp_path),
         "--store", str(tmp_path / "store"), "--engine", "spark"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "needs Java 17" in failed.stderr and "openjdk-17" in failed.stderr
    assert "Traceback" not in failed.stderr and "at org.apache" not in failed.stderr
    assert not (tmp_path / "store" / "manifest.json").exists()


def test_spark_connect_is_refused_with_a_reason(tmp_path: Path) -> None:
    failed = subprocess.run(
        [sys.executable, "-m", "pinsights.cli", "build", "--data", str(tmp_path),
         "--store", str(tmp_path / "store"), "--engine", "spark",
         "--spark-master", "sc://127.0.0.1:15002"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "does not run on Spark Connect yet" in failed.stderr and "spark://" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_java_is_found_here() -> None:
    assert Path(check_java()).name == "java"


def test_a_small_local_input_is_built_by_a_jvm_without_c2(tmp_path: Path) -> None:
    """C2 pays back only on long tasks: a local JVM reading a small dataset compiles with C1
    alone; a large one, a dataset of unknown size (a URL, a refused directory) and a cluster's
    driver keep their settings."""
    from pinsights.data.sources import data_path, input_bytes
    from pinsights.synthetic.generate import generate

    generate(tmp_path / "small", users=50, accounts=2, days=2, seed=3)
    size = input_bytes(tmp_path / "small")
    files = [p for p in (tmp_path / "small").rglob("*") if p.is_file()]
    assert size == sum(p.stat().st_size for p in files) and 0 < size < SMALL_INPUT_BYTES
    large = tmp_path / "large"  # the same tables, one event file grown (sparse: no disk used)
    shutil.copytree(tmp_path / "small", large)
    os.truncate(sorted((large / "events").rglob("*.parquet"))[0], SMALL_INPUT_BYTES)
    assert (input_bytes(large) or 0) > SMALL_INPUT_BYTES
    java = {
        "small": defaults("local[2]", size)[JAVA_OPTIONS],
        "large": defaults("local[2]", input_bytes(large))[JAVA_OPTIONS],
        "url": defaults("local[2]", input_bytes(data_path("hdfs://nn:8020/data")))[JAVA_OPTIONS],
        "refused": defaults("local[2]", input_bytes(tmp_path / "missing"))[JAVA_OPTIONS],
    }
    assert C1_ONLY in java["small"] and C2_LATER not in java["small"]
    for kind in ("large", "url", "refused"):
        assert C2_LATER in java[kind] and C1_ONLY not in java[kind], kind
    assert all(options.startswith("-XX:+UseParallelGC ") for options in java.values())
    assert JAVA_OPTIONS not in defaults("spark://h:7077", size)

    # A tiny input (this one) is evaluated by Spark's interpreter; a larger one, one of unknown
    # size and a cluster's build compile generated code, as Spark does by default.
    assert size < TINY_INPUT_BYTES
    assert INTERPRETED.items() <= defaults("local[2]", size).items()
    for other in (TINY_INPUT_BYTES, input_bytes(large), None):
        assert not INTERPRETED.keys() & defaults("local[2]", other).keys(), other
    assert not INTERPRETED.keys() & defaults("spark://h:7077", size).keys()


# --- memory: --memory-limit sizes the driver's heap; running out is one line -----------------


def test_the_memory_limit_sizes_the_drivers_heap() -> None:
    """The build process (Python and the driver JVM) stays under the limit: the heap is the
    limit less Python's share (as on DuckDB) and the JVM's overhead; the user's conf wins."""
    assert driver_memory("local[2]", "8GB") == {"spark.driver.memory": "6242m"}
    assert driver_memory("local[2]", "1152MiB") == {"spark.driver.memory": "512m"}
    heap = driver_heap_bytes(64 * 2**30)
    assert 0.8 < heap / (64 * 2**30) < 0.9  # 1 GiB for Python, a tenth of the heap beyond it
    assert driver_memory("local[2]", "8GB", {"spark.driver.memory": "2g"}) == {}
    assert driver_memory("spark://h:7077", "8GB") == {"spark.driver.memory": "6242m"}
    assert driver_memory("spark://h:7077", None) == {}  # a cluster's driver: Spark's default
    default = driver_memory("local[*]", None)["spark.driver.memory"]
    assert default in (
        "4096m",
        f"{driver_heap_bytes(memory_bytes(default_memory_limit()) or 0) // 2**20}m",
    )
    with pytest.raises(ValueError, match=r"too small for --engine spark.*at least 1152MiB"):
        driver_memory("local[2]", "1GB")


def test_a_memory_limit_too_small_for_spark_is_refused_before_any_work(tmp_path: Path) -> None:
    """As on DuckDB: the option is a bad command line (2), the variable fails the build (1)."""
    args = (
        "build",
        "--data",
        str(tmp_path),
        "--store",
        str(tmp_path / "store"),
        "--engine",
        "spark",
    )
    option = pinsights(*args, "--memory-limit", "1GB")
    assert option.returncode == 2, option.stderr
    (line,) = option.stderr.splitlines()
    assert line.startswith(
        "pinsights: invalid value for --memory-limit: memory limit '1GB' is too small for"
        " --engine spark: its driver JVM needs a heap of at least 512 MiB to start, which takes a"
        " limit of at least 1152MiB"
    ), line
    variable = pinsights(*args, PINSIGHTS_MEMORY_LIMIT="1GB")
    assert variable.returncode == 1 and "too small for --engine spark" in variable.stderr
    assert (
        "Traceback" not in variable.stderr and not (tmp_path / "store" / "manifest.json").exists()
    )


def test_the_users_driver_memory_wins_and_a_heap_spark_refuses_is_one_line(
    tmp_path: Path,
) -> None:
    """--spark-conf spark.driver.memory overrides the limit (1GB alone would be refused before
    the JVM starts); Spark's own refusal of a small heap is a plain line, no trace, no log."""
    (tmp_path / "tmp").mkdir()
    result = pinsights(
        "build", "--data", str(tmp_path), "--store", str(tmp_path / "store"), "--engine", "spark",
        "--spark-master", "local[1]", "--memory-limit", "1GB",
        "--spark-conf", "spark.driver.memory=400m", TMPDIR=str(tmp_path / "tmp"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("pinsights: build failed: Spark did not start: ") and (
        "[INVALID_DRIVER_MEMORY]" in line
    ), line
    assert list((tmp_path / "tmp").glob("pinsights-spark-*.log")) == []


def test_a_memory_limit_with_a_cluster_master_warns_that_it_bounds_the_driver_only(
    tmp_path: Path,
) -> None:
    """The executors are sized by spark.executor.memory: the user is told, and the build runs
    (here up to the refusal of Spark Connect, which needs no JVM)."""
    result = pinsights(
        "build", "--data", str(tmp_path), "--store", str(tmp_path / "store"), "--engine", "spark",
        "--spark-master", "sc://127.0.0.1:15002", PINSIGHTS_MEMORY_LIMIT="8GB",
    )  # fmt: skip
    warning, error = result.stderr.splitlines()
    assert warning == (
        "pinsights: warning: the memory limit 8GB bounds this machine's build process (the"
        " driver) only, not the executors: size them with --spark-conf spark.executor.memory=…"
    )
    assert result.returncode == 1 and "Spark Connect" in error


def test_a_jvm_out_of_memory_says_what_to_raise(tmp_path: Path) -> None:
    """A real OutOfMemoryError: under the smallest limit Spark takes (a 512 MiB heap), a users
    export with a 200 MB line (a row that cannot fit; under --memory-limit 8GB it is quarantined)
    fails in one line that says what to raise, exit 1, nothing published, no log left behind."""
    import gzip

    from pinsights.synthetic.generate import generate

    generate(tmp_path / "data", users=300, accounts=3, days=3, seed=5, events=2000)
    users = tmp_path / "data" / "users.parquet"
    rows = duckdb.sql(f"SELECT * FROM '{users}'")
    with gzip.open(tmp_path / "data" / "users.jsonl.gz", "wb", compresslevel=1) as out:
        for row in rows.fetchall():
            out.write(json.dumps(dict(zip(rows.columns, row, strict=True))).encode() + b"\n")
        out.write(b'{"user_id": 99999999, "age_bucket": "' + b"x" * (200 * 2**20) + b'"}\n')
    users.unlink()
    (tmp_path / "tmp").mkdir()
    failed = pinsights(
        "build", "--data", str(tmp_path / "data"), "--store", str(tmp_path / "store"),
        "--engine", "spark", "--spark-master", "local[1]", "--memory-limit", "1152MiB",
        TMPDIR=str(tmp_path / "tmp"), PINSIGHTS_SPARK_CLASS_ARCHIVE="off",
    )  # fmt: skip
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.splitlines()[-1:] == [
        "pinsights: build failed: Spark ran out of memory (Java heap space) in the driver's JVM,"
        " which runs the tasks in local mode: raise --memory-limit (or PINSIGHTS_MEMORY_LIMIT;"
        " now 1152MiB), from which its heap (512m) is derived, or set --spark-conf"
        " spark.driver.memory"
    ], failed.stderr
    assert "Traceback" not in failed.stderr and "Spark failed" not in failed.stderr
    assert not (tmp_path / "store" / "manifest.json").exists()
    assert list((tmp_path / "tmp").glob("pinsights-spark-*.log")) == []


def build_on_spark_with_archives(
    data: Path, store: Path, archives: Path, expected: Published
) -> None:
    """A ``pinsights build --engine spark`` process on a local master keeping its class archive
    in ``archives``; it must publish ``expected``'s documents and warn about nothing."""
    env = {**os.environ, "PINSIGHTS_SPARK_CLASS_ARCHIVE": str(archives)}
    env.pop("PINSIGHTS_SPARK_MASTER", None)
    finished = subprocess.run(
        [sys.executable, "-m", "pinsights.cli", "build", "--data", str(data), "--store",
         str(store), "--engine", "spark", "--spark-master", "local[2]",
         "--min-audience-size", "20", "--json"],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "WARN" not in finished.stderr and "cds" not in finished.stderr
    spark = published(store, json.loads(finished.stdout), None)
    assert spark.documents == expected.documents
    assert spark.category_items == expected.category_items


@pytest.fixture(scope="module")
def archive_platform(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Published]:
    """A small generated platform and what DuckDB publishes from it."""
    from pinsights.synthetic.generate import generate

    root = tmp_path_factory.mktemp("archive-platform")
    generate(root / "data", users=300, accounts=3, days=4, seed=5)
    return root / "data", build_with("duckdb", root / "data", root / "store", min_audience_size=20)


@pytest.mark.slow
def test_a_local_build_records_its_class_archive_once_and_later_builds_start_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive_platform: tuple[Path, Published]
) -> None:
    """The first local build's JVM records the classes it loaded as it exits, the build waits and
    moves the archive into place whole; later JVMs start from it."""
    data, duck = archive_platform
    archives = tmp_path / "classes"
    build_on_spark_with_archives(data, tmp_path / "first", archives, duck)
    [archive] = archives.glob("spark-classes-*.jsa")
    assert archive.stat().st_size > 1_000_000 and not list(archives.glob("*.recording"))
    monkeypatch.setenv("PINSIGHTS_SPARK_CLASS_ARCHIVE", str(archives))
    found = class_archive(check_java())
    assert found is not None and found.java_options() == f"-XX:SharedArchiveFile={archive}"
    recorded = archive.stat().st_mtime_ns
    build_on_spark_with_archives(data, tmp_path / "second", archives, duck)  # from the archive
    assert archive.stat().st_mtime_ns == recorded  # and it did not record it again


@pytest.mark.slow
def test_a_damaged_class_archive_is_ignored_and_the_build_loads_classes_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive_platform: tuple[Path, Published]
) -> None:
    """An archive where the build expects one that is not a class archive (a disk error, another
    tool's file): the JVM refuses it, and the build runs and publishes as without one. A test
    of its own, beside the recording one, so the two run in parallel."""
    data, duck = archive_platform
    archives = tmp_path / "classes"
    monkeypatch.setenv("PINSIGHTS_SPARK_CLASS_ARCHIVE", str(archives))
    expected = class_archive(check_java())
    assert expected is not None and expected.recording is not None
    expected.path.write_bytes(b"not a class archive")
    found = class_archive(check_java())
    assert found is not None and found.java_options() == f"-XX:SharedArchiveFile={expected.path}"
    build_on_spark_with_archives(data, tmp_path / "store", archives, duck)
    assert expected.path.read_bytes() == b"not a class archive"


# --- a standalone cluster on loopback --------------------------------------------------------


@dataclass
class Cluster:
    master_url: str
    processes: list[subprocess.Popen[bytes]]
    logs: Path


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _spark_class(
    name: str, args: list[str], log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(_spark_home() / "bin" / "spark-class"), name, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, so stopping it stops its children
        )


def _wait_for(what: str, check: Any, cluster_logs: Path, timeout: float = 180) -> Any:
    """Poll ``check`` (a state query, not a sleep-and-hope) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError, ValueError):
            result = check()
            if result:
                return result
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in cluster_logs.glob("*.log"))
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


@contextlib.contextmanager
def standalone_cluster(scratch: Path, workers: int = 2) -> Iterator[Cluster]:
    """A Spark master and ``workers`` workers (1 core, 1 GiB each) bound to 127.0.0.1 on free
    ports; stopped (the whole process group) whatever happens."""
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(scratch),
        "SPARK_WORKER_DIR": str(scratch / "work"),
        "SPARK_NO_DAEMONIZE": "1",
        # The master and the workers only schedule: the JIT's quick compiler is enough for them.
        "SPARK_DAEMON_JAVA_OPTS": C1_ONLY,
    }
    env.pop("PINSIGHTS_SPARK_MASTER", None)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # Port 0 everywhere: the master's ports are read back from its log, never picked
        # beforehand (another process could take a port between the pick and the bind).
        processes.append(
            _spark_class(
                "org.apache.spark.deploy.master.Master",
                ["--host", "127.0.0.1", "--port", "0", "--webui-port", "0"],
                scratch / "master.log",
                env,
            )
        )

        def master_ports() -> tuple[int, int] | None:
            log = (scratch / "master.log").read_text(errors="replace")
            master = re.search(r"Starting Spark master at spark://127\.0\.0\.1:(\d+)", log)
            ui = re.search(r"Successfully started service 'MasterUI' on port (\d+)", log)
            return (int(master.group(1)), int(ui.group(1))) if master and ui else None

        port, ui_port = _wait_for("the master's ports", master_ports, scratch)
        ui = f"http://127.0.0.1:{ui_port}/json/"
        _wait_for(
            "the master", lambda: httpx.get(ui, timeout=2).json()["status"] == "ALIVE", scratch
        )
        master_url = f"spark://127.0.0.1:{port}"
        for index in range(workers):
            args = ["--host", "127.0.0.1", "--port", "0", "--webui-port", "0",
                    "--cores", "1", "--memory", "1g",
                    "--work-dir", str(scratch / f"work-{index}"), master_url]  # fmt: skip
            log = scratch / f"worker-{index}.log"
            processes.append(_spark_class("org.apache.spark.deploy.worker.Worker", args, log, env))

        def alive_workers() -> int:
            state = httpx.get(ui, timeout=2).json()
            return sum(1 for w in state["workers"] if w["state"] == "ALIVE") >= workers

        _wait_for(f"{workers} workers", alive_workers, scratch)
        yield Cluster(master_url, processes, scratch)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.slow
def test_build_on_a_standalone_cluster_publishes_the_same_documents(tmp_path: Path) -> None:
    from pinsights.synthetic.generate import generate

    generate(tmp_path / "data", users=400, accounts=3, days=5, seed=5)
    duck = build_with("duckdb", tmp_path / "data", tmp_path / "store-duckdb", min_audience_size=20)
    logs = tmp_path / "cluster"
    logs.mkdir()
    temp = tmp_path / "tmp"  # the build's temporary files (its JVM's log among them)
    temp.mkdir()
    with standalone_cluster(logs) as cluster:
        finished = subprocess.run(
            [sys.executable, "-m", "pinsights.cli", "build", "--data", str(tmp_path / "data"),
             "--store", str(tmp_path / "store-spark"), "--engine", "spark",
             "--spark-master", cluster.master_url, "--min-audience-size", "20", "--json",
             "--spark-conf", "spark.driver.host=127.0.0.1",
             "--spark-conf", "spark.driver.bindAddress=127.0.0.1",
             "--spark-conf", "spark.executor.memory=512m",
             "--spark-conf", "spark.sql.shuffle.partitions=2",
             # 400 users: the driver and executors compile as a local build's on a small input.
             "--spark-conf", f"spark.driver.extraJavaOptions={C1_ONLY}",
             "--spark-conf", f"spark.executor.extraJavaOptions={C1_ONLY}"],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "TMPDIR": str(temp)},
        )  # fmt: skip
        assert finished.returncode == 0, finished.stderr[-3000:]
        # The application ran on the cluster's executors, one on each worker, not in a local JVM.
        assert "Registering app pinsights build" in (logs / "master.log").read_text()
        executor_logs = {p.parts[-4] for p in logs.glob("work-*/app-*/*/stderr")}
        assert executor_logs == {"work-0", "work-1"}, "both workers ran an executor"
    report = json.loads(finished.stdout)
    assert report["engine"] == "spark"
    spark = published(tmp_path / "store-spark", report, None)
    assert_same(duck, spark)
    assert "WARN" not in finished.stderr and "log4j" not in finished.stderr
    assert not list(temp.glob("pinsights-spark-*.log")), "a build that ran leaves no log behind"


# --- a dataset behind a URL (Hadoop's file systems) ------------------------------------------


def test_data_is_a_url_or_a_local_path() -> None:
    from pinsights.data.sources import UrlPath, data_path

    for text, root, path in (
        ("hdfs://nn:8020/exports/day/", "hdfs://nn:8020", "/exports/day"),
        ("s3a://bucket", "s3a://bucket", "/"),
        ("file:///tmp/data", "file://", "/tmp/data"),
        ("file:/tmp/data", "file:", "/tmp/data"),
        ("viewfs://cluster/exports//x", "viewfs://cluster", "/exports/x"),
    ):
        url = data_path(text)
        assert isinstance(url, UrlPath) and (url.root, str(url.path)) == (root, path), text
        assert str(url / "events") == f"{root}{path.rstrip('/')}/events"
    assert str(data_path("file:///tmp/data")) == "file:///tmp/data", "a URL stays a URL"
    for local in ("data", "./a:b/c", "/srv/exports", "c:/x", "exports:2026", "a:b/c"):
        assert data_path(local) == Path(local)


_mounts = iter(range(1_000_000))


def viewfs(session: Any, target: Path) -> str:
    """A ``viewfs://`` URL of ``target``, a file system configured only by settings (a mount
    table) that Python cannot open: what Spark lists and reads through it went through Hadoop.
    A new mount table each time: Hadoop caches a file system per URL authority."""
    name = f"pinsights{os.getpid()}n{next(_mounts)}"
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    hadoop.set(f"fs.viewfs.mounttable.{name}.link./exports", f"file://{target}")
    return f"viewfs://{name}/exports"


#: Every kind of input behind a URL: a Parquet folder with Hive partitions (and the markers a
#: Hadoop job leaves, which are skipped), gzip CSV, zstd JSON Lines, a directory mixing Parquet
#: and gzip CSV, malformed lines in CSV and JSON Lines.
URL_LAYOUT = {"interests": "jsonl.zst", "ad_accounts": "csv.gz", "users": "parquet+csv.gz",
              "pins": "csv", "events": "parquet"}  # fmt: skip
URL_STYLES = {
    "users": TextStyle(bom=True, malformed=tuple(enumerate(MESSY_LINES["csv"][:4]))),
    "interests": TextStyle(crlf=True, malformed=((1, b"[45, 2]"),)),
}


def test_a_dataset_behind_a_url_builds_as_from_its_local_path(
    spark_session: Any, tmp_path: Path
) -> None:
    """viewfs:// and file:/// URLs list, read and quarantine exactly as DuckDB does the local
    path; the quarantine names each file by the URL (a URL stays a URL)."""
    from pinsights.data.sources import data_path

    data_dir = tmp_path / "data"
    write_dataset(
        messy_tables(), data_dir, URL_LAYOUT, partitioned=True, extra_columns=True,
        anchor=dt.date(2026, 11, 1), styles=URL_STYLES,
    )  # fmt: skip
    (data_dir / "events" / "_SUCCESS").write_bytes(b"")
    (data_dir / "events" / "date=2026-11-01" / ".part-0.parquet.crc").write_bytes(b"\0")
    options = {"min_audience_size": 1, "min_cell_size": 1, "max_bad_fraction": 1.0}
    duck = build_with("duckdb", data_dir, tmp_path / "store-duckdb", **options)
    assert duck.report is not None and duck.documents, duck.error
    assert {row[1].rsplit(".", 2)[-2:][-1] for row in duck.quarantine if row[3] == "malformed"} == {
        "gz",
        "zst",
    }
    for n, url in enumerate((f"{viewfs(spark_session, tmp_path)}/data", f"file://{data_dir}")):
        remote = build_with("spark", data_path(url), tmp_path / f"store-{n}", **options)
        assert remote.error is None, remote.error
        assert {row[1].split("/data/")[0] for row in remote.quarantine} == {url[: -len("/data")]}
        shown_locally = [
            (table, file.replace(url, str(data_dir)), *rest)
            for table, file, *rest in remote.quarantine
        ]
        assert_same(duck, dataclasses.replace(remote, quarantine=shown_locally))


def test_a_damaged_compressed_file_behind_a_url_is_named(
    spark_session: Any, tmp_path: Path
) -> None:
    from pinsights.data.sources import data_path

    tables = messy_tables()
    data_dir = tmp_path / "data"
    write_dataset(tables, data_dir, {**URL_LAYOUT, "users": "csv.gz", "pins": "jsonl.zst"})
    url = f"{viewfs(spark_session, tmp_path)}/data"
    gz, zst = data_dir / "users.csv.gz", data_dir / "pins.jsonl.zst"
    intact_gz, intact_zst = gz.read_bytes(), zst.read_bytes()
    crc = bytearray(intact_gz)
    crc[-6] ^= 0xFF  # the gzip trailer's CRC no longer matches the text
    for damage, says in (
        ((gz, intact_gz[:-9]), "users.csv.gz: EOFException: Unexpected end of input stream"),
        ((gz, bytes(crc)), "users.csv.gz: IOException: gzip stream CRC failure"),
        ((zst, intact_zst[: len(intact_zst) // 2]), "pins.jsonl.zst: "),
    ):
        gz.write_bytes(intact_gz)
        zst.write_bytes(intact_zst)
        damage[0].write_bytes(damage[1])
        with pytest.raises(BuildError) as failed:
            build(BuildSettings(data_dir=data_path(url), store_dir=tmp_path / "s",
                               engine="spark"))  # fmt: skip
        message = str(failed.value)
        assert message.startswith(f"cannot read {url}/{says}"), message
        assert "damaged or truncated" in message and "\n" not in message


def test_an_unusable_url_says_what_is_wrong_in_one_line(spark_session: Any, tmp_path: Path) -> None:
    """A scheme no file system handles names the connector to add; a missing directory or
    table is named as for a local path; all with the exit status of an unusable path."""
    from pinsights.cli.errors import ExitStatus, explain
    from pinsights.data.sources import data_path

    (tmp_path / "data").mkdir()
    mounted = viewfs(spark_session, tmp_path)
    for url, says, status in (
        ("s3a://bucket/exports", r"no file system for s3a:// URLs in this Spark session \(Hadoop "
         r"[\d.]+\): add hadoop-aws to its class path, e\.g\. --spark-conf spark\.jars\.packages="
         r"org\.apache\.hadoop:hadoop-aws:[\d.]+ \(or spark-submit --jars", ExitStatus.UNUSABLE_PATH),
        ("nosuchfs://host/x", r"no file system for nosuchfs:// URLs", ExitStatus.UNUSABLE_PATH),
        (f"{mounted}/nope", rf"the data directory {mounted}/nope does not exist$",
         ExitStatus.UNUSABLE_PATH),
        (f"{mounted}/data", rf"missing table 'interests': expected .* in {mounted}/data$",
         ExitStatus.FAILED),
    ):  # fmt: skip
        with pytest.raises(BuildError) as failed:
            build(BuildSettings(data_dir=data_path(url), store_dir=tmp_path / "s",
                               engine="spark"))  # fmt: skip
        explained = explain(failed.value)
        assert explained is not None, failed.value
        assert explained[0] == status and "\n" not in explained[1], explained
        assert re.search(says, explained[1]), explained[1]


def test_a_viewfs_url_on_the_command_line_is_listed_and_read_through_hadoop(
    tmp_path: Path,
) -> None:
    """The path a user takes: ``--data viewfs://…`` with the mount table passed as
    ``--spark-conf spark.hadoop.…`` to a new session. The dataset is listed and its headers and
    compressed streams read through Hadoop: a cut file is named by its URL, in one line, exit 1
    (the build itself from a URL is compared with DuckDB's above)."""
    data_dir = tmp_path / "data"
    write_dataset(messy_tables(), data_dir, {**URL_LAYOUT, "events": "csv.gz"}, partitioned=True)
    events = data_dir / "events" / "date=2026-11-01" / "part-0.csv.gz"
    events.write_bytes(events.read_bytes()[:-9])
    finished = subprocess.run(
        [sys.executable, "-m", "pinsights.cli", "build", "--engine", "spark",
         "--data", "viewfs://exports/mounted/data/", "--store", str(tmp_path / "store"),
         "--spark-master", "local[1]",
         "--spark-conf", f"spark.hadoop.fs.viewfs.mounttable.exports.link./mounted=file://{tmp_path}"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PINSIGHTS_SPARK_CLASS_ARCHIVE": "off"},  # no archive in ~/.cache
    )  # fmt: skip
    assert finished.returncode == 1, finished.stderr[-3000:]
    assert finished.stderr == (
        "pinsights: build failed: cannot read viewfs://exports/mounted/data/events/date=2026-11-01"
        "/part-0.csv.gz: EOFException: Unexpected end of input stream. The file is damaged or"
        " truncated: export it again, or move it out of the dataset.\n"
    )


def test_a_refresh_state_file_is_written_and_read_alike_by_both_engines(
    spark_session: Any, tmp_path: Path
) -> None:
    """The refresh state's Parquet files on both engines (issue 23): rows of a segment's types
    (engine/refresh/state.py SEGMENT_COLUMNS: 32- and 64-bit integers, instants with time zone
    before 1970 and at a microsecond, booleans, text holding the separator and any character,
    a null in every column) written by DuckDB, read and written again by Spark, read and
    written again by DuckDB: every file holds the same types and rows, as DuckDB and Arrow read
    them; and Spark writes an empty table as one file with its columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pinsights.engine.duckdb.backend import DuckDBBackend
    from pinsights.engine.spark.backend import SparkBackend
    from pinsights.engine.spark.session import SparkSettings

    utc = dt.UTC
    rows = pa.table(
        {
            "file": pa.array([1, 2, None, 2_000_000_000], pa.int32()),
            "day": pa.array(
                [
                    dt.datetime(2026, 11, 1, tzinfo=utc),
                    dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=utc),
                    dt.datetime(2026, 11, 30, 23, 59, 59, 1, tzinfo=utc),
                    None,
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "user_id": pa.array([1, -(2**63), 2**63 - 1, None], pa.int64()),
            "pin_id": pa.array([None, 5, 6, 7], pa.int64()),
            "account_key": pa.array([0, None, 3, -1], pa.int32()),
            "interest_key": pa.array([None, 1, 2, 3], pa.int32()),
            "engaged": pa.array([True, False, None, True], pa.bool_()),
            "__bad": pa.array(
                [None, 'bad_value\x1f7\x1f{"a":"é\\n"}', "", "unknown_reference\x1f\x1f\x1f"]
            ),
        }
    )
    source = tmp_path / "source.parquet"
    pq.write_table(rows, source)
    duck = DuckDBBackend(threads=1, temp_directory=tmp_path / "spill")
    spark = SparkBackend.start(SparkSettings())  # the process's shared session (conftest)
    written = {name: tmp_path / f"{name}.parquet" for name in ("duckdb", "spark", "again")}
    try:
        duck.write_parquet(duck.read_parquet("t_source", [source]), written["duckdb"])
        spark.write_parquet(spark.read_parquet("t_duckdb", [written["duckdb"]]), written["spark"])
        duck.write_parquet(duck.read_parquet("t_spark", [written["spark"]]), written["again"])
        empty = spark.read_parquet("t_empty", [written["duckdb"]])
        spark.write_parquet(empty.filter(empty.file < 0), tmp_path / "empty.parquet")
        # A segment (state format 7): one part file per task, so the query before stays
        # parallel (a union of two reads: two tasks); none written, one file all the same.
        doubled = spark.read_parquet("t_a", [written["duckdb"]]).union(
            spark.read_parquet("t_b", [written["spark"]]), distinct=False
        )
        parts = spark.write_parquet_parts(doubled, tmp_path / "segment")
        no_parts = spark.write_parquet_parts(empty.filter(empty.file < 0), tmp_path / "nothing")
        again = duck.to_arrow(duck.read_parquet("t_parts", parts))
        types = {
            name: duck.con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
            for name, path in written.items()
        }
    finally:
        spark.close()
        duck.close()
    assert types["spark"] == types["duckdb"] == types["again"]
    assert [row[1] for row in types["duckdb"]] == [kind for _, kind in SEGMENT_COLUMNS]
    order = [("user_id", "ascending")]
    for name, path in written.items():
        table = pq.read_table(path).replace_schema_metadata(None)
        assert table.schema == rows.schema, name
        assert table.sort_by(order).to_pylist() == rows.sort_by(order).to_pylist(), name
    empty_file = pq.read_table(tmp_path / "empty.parquet").replace_schema_metadata(None)
    assert empty_file.num_rows == 0 and empty_file.schema == rows.schema
    assert [path.name for path in parts] == [f"segment-{k}.parquet" for k in range(len(parts))]
    assert len(parts) >= 2, parts
    doubled_rows = pa.concat_tables([rows, rows]).sort_by(order).to_pylist()
    assert again.sort_by(order).to_pylist() == doubled_rows
    assert [path.name for path in no_parts] == ["nothing-0.parquet"]
    assert pq.read_table(no_parts[0]).replace_schema_metadata(None).schema == rows.schema
    assert not list(tmp_path.glob(".*.spark"))  # Spark's own directories are gone


def test_a_state_file_spark_writes_is_read_by_several_tasks(
    spark_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file Spark writes alone (a window file of the state) holds row groups of at most
    ``ROW_GROUP_BYTES`` (issue 23): Spark reads each row group as a task of its own, and a
    file of one row group is one task however large (the next build read 2.5M facts of 10M
    events on one core). Here with the size made small: several row groups, the rows kept."""
    import pyarrow.parquet as pq

    import pinsights.engine.spark.backend as spark_backend
    from pinsights.engine.spark.backend import SparkBackend
    from pinsights.engine.spark.session import SparkSettings

    monkeypatch.setattr(spark_backend, "ROW_GROUP_BYTES", 64 * 2**10)
    spark = SparkBackend.start(SparkSettings())  # the process's shared session (conftest)
    path = tmp_path / "facts.parquet"
    try:
        spark.session.range(200_000).selectExpr(
            "id AS user_id", "CAST(id % 7 AS INT) AS account_key"
        ).createOrReplaceTempView("t_many")
        spark.write_parquet(spark.ibis.table("t_many"), path)
        rows = spark.rows(spark.read_parquet("t_read", [path]))
    finally:
        spark.close()
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    assert sorted(pq.read_table(path)["user_id"].to_pylist()) == list(range(200_000))
    assert rows == 200_000


def test_the_schema_spark_is_given_for_a_state_file_is_the_one_it_would_infer(
    spark_session: Any, tmp_path: Path
) -> None:
    """SparkBackend.read_parquet hands Spark the schema of the files' footer (Spark's own
    inference is a job for every read: ten in an incremental build). For every type a state
    file can hold, in a file written by Arrow, DuckDB and Spark, it is the schema Spark infers;
    a type it does not name (an instant without time zone) is left to Spark's inference."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pinsights.engine.spark.backend import spark_schema

    utc = dt.UTC
    rows = pa.table(
        {
            "flag": pa.array([True, None], pa.bool_()),
            "tiny": pa.array([1, None], pa.int8()),
            "small": pa.array([1, None], pa.int16()),
            "int": pa.array([1, None], pa.int32()),
            "big": pa.array([1, None], pa.int64()),
            "real": pa.array([1.5, None], pa.float32()),
            "double": pa.array([1.5, None], pa.float64()),
            "text `quoted`": pa.array(["a", None], pa.string()),
            "day": pa.array([dt.date(2026, 11, 1), None], pa.date32()),
            "amount": pa.array([None, None], pa.decimal128(38, 0)),
            "instant": pa.array([dt.datetime(2026, 11, 1, tzinfo=utc), None], pa.timestamp("us", tz="UTC")),
        }
    )  # fmt: skip
    arrow = tmp_path / "arrow.parquet"
    pq.write_table(rows, arrow)
    duck = tmp_path / "duckdb.parquet"
    con = duckdb.connect()
    con.register("source", rows)
    con.execute(f"COPY source TO '{duck}' (FORMAT parquet)")
    spark_dir = tmp_path / "spark"  # instants as the backend writes them (UTC microseconds)
    spark_session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    try:
        spark_session.read.parquet(arrow.resolve().as_uri()).coalesce(1).write.parquet(
            spark_dir.resolve().as_uri()
        )
    finally:
        spark_session.conf.unset("spark.sql.parquet.outputTimestampType")
    (spark_file,) = spark_dir.glob("part-*.parquet")
    for path in (arrow, duck, spark_file):
        given = spark_schema(pq.read_schema(path))
        assert given is not None, path
        uri = path.resolve().as_uri()
        inferred = spark_session.read.parquet(uri).schema
        assert spark_session.read.schema(given).parquet(uri).schema == inferred, path
    naive = tmp_path / "naive.parquet"
    pq.write_table(
        pa.table({"at": pa.array([dt.datetime(2026, 11, 1)], pa.timestamp("us"))}), naive
    )
    assert spark_schema(pq.read_schema(naive)) is None
