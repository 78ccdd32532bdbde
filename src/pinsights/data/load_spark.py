"""Spark's readers: a table's files as the raw table the portable rules judge.

The counterpart of :mod:`pinsights.data.load` for the Spark engine, with the same guarantees to
:mod:`pinsights.data.validate`, so both engines judge the same rows the same way:

- every contract column exists (a missing one is an :class:`InputError` naming it);
- CSV fields are text, exactly as written (``"007"`` stays a string, an empty field is null);
- JSON Lines fields are text whatever their JSON type, and the original line is kept (``__json``);
- Parquet keeps its own types; Hive partition folders (``date=…``) appear as text columns;
- ``__source_file`` is the path as the dataset was found (not Spark's ``file:`` URI).

Text files are read by Spark as lines (``.gz`` decompressed by Spark itself) and parsed in Spark
(``from_csv`` / ``json_tuple``), so the work is spread over the executors; each line keeps its
number in its file, counted without bringing any line to the driver (see :func:`numbered_lines`).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pinsights.data.load import InputError, TableSource

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

SOURCE_FILE = "__source_file"
JSON_ROW = "__json"
LINE = "__line"
#: Spark's CSV parser as DuckDB reads CSV: ``""`` inside quotes is a quote, fields kept as
#: written (no trimming), and a line whose fields do not fit the header is flagged, not guessed.
CSV_OPTIONS = {
    "mode": "PERMISSIVE",
    "escape": '"',
    "columnNameOfCorruptRecord": "__corrupt",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
BOM = "\ufeff"


def read_source(session: SparkSession, source: TableSource) -> DataFrame:
    """The raw table of ``source``; raises :class:`InputError` when a contract column is missing."""
    if source.format == "parquet":
        frame = _read_parquet(session, source)
    elif source.format == "csv":
        frame = _read_csv(session, source)
    else:
        frame = _read_jsonl(session, source)
    return frame


# -- paths ------------------------------------------------------------------------------------


def _qualified(session: SparkSession, files: Iterable[Path]) -> dict[str, str]:
    """Spark's URI of each file (as ``_metadata.file_path`` shows it) → the path as found."""
    jvm = session.sparkContext._jvm
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    uris = {}
    for file in files:
        path = jvm.org.apache.hadoop.fs.Path(str(file))
        uri = path.getFileSystem(hadoop).makeQualified(path).toUri().toString()
        uris[str(uri)] = str(file)
    return uris


def _source_file(session: SparkSession, files: tuple[Path, ...], uri: Column) -> Column:
    """The dataset's own path for Spark's file URI: a literal map lookup, no join."""
    from pyspark.sql import functions as F

    pairs = []
    for spark_uri, path in _qualified(session, files).items():
        pairs += [F.lit(spark_uri), F.lit(path)]
    return F.coalesce(F.create_map(*pairs)[uri], F.regexp_replace(uri, "^file:(//)?", ""))


def _hive_columns(source: TableSource) -> dict[Path, dict[str, str]]:
    """``key=value`` folders between the table's directory and each file, as DuckDB shows them."""
    found: dict[Path, dict[str, str]] = {}
    for file in source.files:
        parts = {}
        for folder in file.parent.parts:
            key, sep, value = folder.partition("=")
            if sep and key:
                parts[key] = value
        found[file] = parts
    return found


# -- Parquet ----------------------------------------------------------------------------------


def _read_parquet(session: SparkSession, source: TableSource) -> DataFrame:
    from pyspark.sql import functions as F

    paths = [str(f) for f in source.files]
    frame = session.read.option("mergeSchema", "true").parquet(*paths)
    uri = F.col("_metadata.file_path")
    columns = [F.col(f"`{name}`") for name in frame.columns]
    hive = _hive_columns(source)
    keys = sorted({key for parts in hive.values() for key in parts} - set(frame.columns))
    for key in keys:
        by_uri = []
        for spark_uri, path in _qualified(session, source.files).items():
            value = hive[Path(path)].get(key)
            by_uri += [F.lit(spark_uri), F.lit(value)]
        columns.append(F.create_map(*by_uri)[uri].alias(key))
    frame = frame.select(*columns, _source_file(session, source.files, uri).alias(SOURCE_FILE))
    _require_columns(source, frame.columns)
    return frame


# -- lines ------------------------------------------------------------------------------------


def numbered_lines(session: SparkSession, source: TableSource) -> DataFrame:
    """Every line of the table's text files: ``line`` (text without its line end), ``uri``, and
    ``__line``, its 1-based number in its file.

    A large file is split over several tasks, so a line's number is not known where it is read.
    Within a task, ``monotonically_increasing_id`` numbers rows consecutively, and each split
    knows where it starts in its file (``_metadata.file_block_start``); counting the lines of
    each split (a tiny table) gives every split's first line number, and a broadcast join spreads
    it back. Compressed files are never split. (Both uses scan the files with the same splits,
    so the positions agree without keeping the lines in between.)
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    scanned = session.read.text([str(f) for f in source.files]).select(
        F.col("value").alias("line"),
        F.col("_metadata.file_path").alias("uri"),
        F.col("_metadata.file_block_start").alias("block"),
        F.monotonically_increasing_id().alias("position"),
    )
    blocks = scanned.groupBy("uri", "block").agg(
        F.min("position").alias("first"), F.count(F.lit(1)).alias("lines")
    )
    earlier = Window.partitionBy("uri").orderBy("block")
    blocks = blocks.select(
        "uri",
        "block",
        "first",
        (F.sum("lines").over(earlier) - F.col("lines")).alias("before"),
    )
    joined = scanned.join(F.broadcast(blocks), ["uri", "block"])
    number = F.col("before") + F.col("position") - F.col("first") + 1
    line = F.when(number == 1, F.regexp_replace("line", f"^{BOM}", "")).otherwise(F.col("line"))
    return joined.select(line.alias("line"), "uri", number.alias(LINE))


# -- CSV --------------------------------------------------------------------------------------


def _header(file: Path) -> list[str]:
    """The column names in the first line of a CSV file (BOM and line end removed)."""
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rb") as handle:
        first = handle.readline()
    text = first.decode("utf-8", errors="replace").removeprefix(BOM).rstrip("\r\n")
    if not text:
        return []
    return next(csv.reader(io.StringIO(text)))


def _read_csv(session: SparkSession, source: TableSource) -> DataFrame:
    from pyspark.sql import functions as F

    headers = {file: _header(file) for file in source.files}
    every = sorted({name for names in headers.values() for name in names})
    lines = numbered_lines(session, source)
    uris = {path: uri for uri, path in _qualified(session, source.files).items()}
    parts = []
    by_header: dict[tuple[str, ...], list[Path]] = {}
    for file, names in headers.items():
        by_header.setdefault(tuple(names), []).append(file)
    for names, files in by_header.items():
        if not names:
            continue
        schema = ", ".join(f"`{name}` STRING" for name in names) + ", `__corrupt` STRING"
        mine = lines.filter(
            F.col("uri").isin([uris[str(f)] for f in files])
            & (F.col(LINE) > 1)
            & (F.col("line") != "")
        )
        parsed = mine.select(
            F.from_csv("line", schema, CSV_OPTIONS).alias("row"), "uri", "line", LINE
        )
        present = [F.col(f"row.`{name}`").alias(name) for name in dict.fromkeys(names)]
        absent = [F.lit(None).cast("string").alias(name) for name in every if name not in names]
        parts.append(
            parsed.select(
                *present,
                *absent,
                _source_file(session, source.files, F.col("uri")).alias(SOURCE_FILE),
            )
        )
    if not parts:
        empty = ", ".join(f"`{name}` STRING" for name in source.table.column_names)
        return session.createDataFrame([], f"{empty}, `{SOURCE_FILE}` STRING")
    frame = parts[0]
    for part in parts[1:]:
        frame = frame.unionByName(part)
    _require_columns(source, frame.columns)
    return frame


# -- JSON Lines -------------------------------------------------------------------------------


def _read_jsonl(session: SparkSession, source: TableSource) -> DataFrame:
    from pyspark.sql import functions as F

    names = source.table.column_names
    lines = numbered_lines(session, source).filter(F.col("line") != "")
    fields = F.json_tuple("line", *names)
    frame = lines.select(
        fields,
        F.col("line").alias(JSON_ROW),
        _source_file(session, source.files, F.col("uri")).alias(SOURCE_FILE),
    ).toDF(*names, JSON_ROW, SOURCE_FILE)
    missing = _missing_json_fields(lines, names)
    if missing:
        _raise_missing(source, missing)
    return frame


def _missing_json_fields(lines: DataFrame, names: tuple[str, ...]) -> list[str]:
    """A JSON Lines column is missing when no line of the table has that field at all."""
    from pyspark.sql import functions as F

    fields = F.from_json("line", "map<string,string>")
    checks = [F.max(F.map_contains_key(fields, name).cast("int")).alias(name) for name in names]
    row = lines.select(*checks).collect()[0]
    if all(row[name] is None for name in names):  # an empty table: nothing is missing
        return []
    return [name for name in names if not row[name]]


# -- columns ----------------------------------------------------------------------------------


def _require_columns(source: TableSource, present: Iterable[str]) -> None:
    have = set(present)
    missing = [name for name in source.table.column_names if name not in have]
    if missing:
        _raise_missing(source, missing)


def _raise_missing(source: TableSource, missing: list[str]) -> None:
    files = source.files
    raise InputError(
        f"table '{source.table.name}' is missing column(s) {', '.join(missing)}"
        f" (in {', '.join(str(f) for f in files[:3])}{' …' if len(files) > 3 else ''})"
    )
