"""Spark's readers: a table's files as the raw table the portable rules judge.

The counterpart of :mod:`pinsights.engine.duckdb.reader` for the Spark engine. It keeps the raw
table contract (:mod:`pinsights.data.sources`), so both engines judge the same rows the same way:

- contract columns and extra columns; ``__source_file`` is the path as the dataset was found
  (not Spark's ``file:`` URI); Parquet keeps its own types when the table is all Parquet, Hive
  folders (``date=…``) appear as text columns of Parquet rows;
- CSV fields are text exactly as written (``"007"`` stays a string, an empty field is null);
  JSON Lines fields are text whatever their JSON type, the line kept in ``__text``;
- a line that cannot be read as a row is a row with every value null, ``__malformed`` true, its
  text in ``__text`` and its number in ``__line``: a CSV line whose field count differs from its
  file's header or whose quoting is broken (Spark's CSV parser flags it, PERMISSIVE mode with a
  corrupt-record column), a JSON line that is not an object, bytes that are not UTF-8;
- blank lines are not rows (in CSV an empty line, in JSON Lines one of spaces and tabs too);
- a compressed file that is cut short or corrupt is named before anything is read.

Text files are read by Spark as lines (``.gz`` by Hadoop's codec, ``.zst`` by the pure-Java codec
Spark ships) and parsed in Spark (``from_csv`` / ``from_json`` / ``json_tuple``), so the work is
spread over the executors; each line keeps its number in its file, counted without bringing any
line to the driver (see :func:`numbered_lines`).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from pinsights.data.sources import (
    DataPath,
    InputError,
    InputFile,
    Kind,
    TableSource,
    UrlPath,
    check_stream,
    csv_header,
    first_line,
    read_csv_header,
    unreadable,
    unusable_path,
)
from pinsights.data.tables import LINE, MALFORMED, SOURCE_FILE, TEXT

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: Hadoop codec for ``.zst``: Hadoop's own needs a native library; this one is Java, in Spark.
ZSTD_CODEC = "io.airlift.compress.zstd.ZstdCodec"
#: Spark's CSV parser as DuckDB reads CSV: ``""`` inside quotes is a quote, fields kept as
#: written (no trimming), and a line whose fields do not fit the header is flagged, not guessed.
CSV_OPTIONS = {
    "mode": "PERMISSIVE",
    "escape": '"',
    "columnNameOfCorruptRecord": "__corrupt",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
#: A JSON object as DuckDB's json_valid sees one: no single quotes, no NaN.
JSON_OPTIONS = {"allowSingleQuotes": "false", "allowNonNumericNumbers": "false"}
#: One CSV field whose quoting is sound, as DuckDB reads it: a quoted field (``""`` inside is a
#: quote) with spaces after it and at most one before it (two spaces and a quote open an unquoted
#: field, DuckDB's rule), or an unquoted field, where a quote is an ordinary character (``ab"c``).
#: Possessive: inside quotes a quote either doubles or closes, nothing is worth backtracking into.
_FIELD = r'(?: ?"(?:[^"]|"")*+" *|(?! ?")[^,]*+)'
#: A line whose every field is sound. Spark's CSV parser is lenient where DuckDB (and the
#: contract: broken quoting is ``malformed``) rejects the line: text after a closing quote
#: (``"7"x``) is kept as text, a quote never closed in the last field (``a,"open``) reads to the
#: end of the line, a tab after a closing quote is skipped.
WELL_QUOTED = rf"^{_FIELD}(?:,{_FIELD})*+$"
#: A quoted field with the spaces around it, taken whole (so that a comma inside quotes is never
#: taken for a field's start): its spaces are dropped before ``from_csv``, which would keep the
#: one before the quote (`` "7"`` read as `` "7"``, where DuckDB reads ``7``).
SPACED_QUOTED_FIELD = r'(^|,) ?("(?:[^"]|"")*+") *(?=,|$)'
BOM = "\ufeff"
#: A blank JSON line holds at most these (DuckDB's trim set); in CSV only an empty line is blank.
BLANK_JSON = r"^[ \t\r]*$"
#: Hadoop codecs by the compression a file's name tells (the ones Spark's text reader picks).
CODECS = {"gzip": "org.apache.hadoop.io.compress.GzipCodec", "zstd": ZSTD_CODEC}
#: Hadoop connectors Spark does not ship, by URL scheme: (what it is, Maven coordinates with
#: ``{hadoop}`` for the Hadoop version of the session, so the jar matches its client).
CONNECTORS = {
    "s3a": ("hadoop-aws", "org.apache.hadoop:hadoop-aws:{hadoop}"),
    "abfs": ("hadoop-azure", "org.apache.hadoop:hadoop-azure:{hadoop}"),
    "abfss": ("hadoop-azure", "org.apache.hadoop:hadoop-azure:{hadoop}"),
    "wasb": ("hadoop-azure", "org.apache.hadoop:hadoop-azure:{hadoop}"),
    "wasbs": ("hadoop-azure", "org.apache.hadoop:hadoop-azure:{hadoop}"),
    "gs": ("the GCS connector", "com.google.cloud.bigdataoss:gcs-connector:hadoop3-VERSION"),
}


def read_source(session: SparkSession, source: TableSource) -> DataFrame:
    """The raw table of ``source``; raises :class:`InputError` when a needed contract column is
    missing (an optional one no file has is left out)."""
    parts: list[DataFrame] = []
    present: set[str] = set()
    parquet = source.of_format("parquet")
    text = source.of_format("csv") + source.of_format("jsonl")
    if parquet:
        frame = _read_parquet(session, parquet)
        present |= set(frame.columns)
        if text:  # mixed with text: every value as text, as DuckDB's union by name makes it
            frame = frame.select(*[_as_text(frame, c).alias(c) for c in frame.columns])
        parts.append(frame)
    if text:
        frame, names = _read_text(session, source, text)
        present |= names
        parts.append(frame)
    missing = [name for name in source.table.needed_column_names if name not in present]
    if missing:
        files = [str(f.path) for f in source.files]
        raise InputError(
            f"table '{source.table.name}' is missing column(s) {', '.join(missing)}"
            f" (in {', '.join(files[:3])}{' …' if len(files) > 3 else ''})"
        )
    frame = parts[0]
    for part in parts[1:]:
        frame = frame.unionByName(part, allowMissingColumns=True)
    # The text part has every contract column; an optional one no file has is not a column
    # (as absent from Parquet), so the checks see it as absent on both engines.
    return frame.drop(*source.table.absent_columns(present))


def _as_text(frame: DataFrame, name: str) -> Column:
    """A Parquet column as the text DuckDB casts it to: an instant (the session's time zone is
    UTC) gets DuckDB's ``+00``, which Spark's cast leaves out; the digits are the same (a zero
    fraction left out, trailing zeros trimmed), and a quarantined row shows this text."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    column = frame[f"`{name}`"]
    if isinstance(frame.schema[name].dataType, TimestampType):
        return F.concat(column.cast("string"), F.lit("+00"))
    return column.cast("string")


# -- a dataset behind a URL -------------------------------------------------------------------


class HadoopTree:
    """Files named by URLs, through Hadoop's FileSystem API in the driver's JVM (py4j): the
    listing of :func:`pinsights.data.sources.discover`, CSV header lines and the check of compressed
    streams, so a dataset in HDFS, S3 or any file system the session's Hadoop configuration knows
    is found and judged by the same rules as a local one. Python's own file functions never see
    a URL. Errors say what is wrong in one line: a scheme no file system handles (and which
    connector to add), a path that does not exist, no permission, a file system not reachable.
    """

    def __init__(self, session: SparkSession) -> None:
        context = session.sparkContext
        assert context._jvm and context._jsc, "a classic (JVM) session"
        self._jvm = context._jvm
        self._conf = context._jsc.hadoopConfiguration()

    # -- FileTree -------------------------------------------------------------------------

    def kind(self, path: DataPath) -> Kind:
        fs, jpath = self._file_system(path)
        try:
            return _kind(fs.getFileStatus(jpath))
        except Exception as error:
            if "java.io.FileNotFoundException" in _java_classes(error):
                return None
            self._fail(path, error, "cannot reach")

    def entries(self, directory: DataPath) -> list[tuple[DataPath, Kind]]:
        return sorted(self._list(directory))

    def files_under(self, directory: DataPath) -> list[DataPath]:
        found: list[DataPath] = []
        pending = [directory]
        while pending:
            for path, kind in self._list(pending.pop()):
                if path.name.startswith((".", "_")):
                    continue
                if kind == "dir":
                    pending.append(path)
                elif kind == "file":
                    found.append(path)
        return sorted(found)

    def _list(self, directory: DataPath) -> list[tuple[DataPath, Kind]]:
        assert isinstance(directory, UrlPath)
        fs, jpath = self._file_system(directory)
        try:
            return [
                (directory / str(status.getPath().getName()), _kind(status))
                for status in fs.listStatus(jpath)
            ]
        except Exception as error:
            self._fail(directory, error, "cannot list")

    # -- reading ----------------------------------------------------------------------------

    def csv_header(self, file: InputFile) -> tuple[str, ...] | None:
        """A CSV file's header line (see :func:`pinsights.data.sources.csv_header`)."""
        stream = self._open(file)
        try:

            def read(size: int) -> bytes:  # py4j hands a Java byte[] over as bytes
                return bytes(stream.readNBytes(size))

            line = first_line(read)
        except Exception as error:
            raise unreadable(file, _JavaFailure(error)) from error
        finally:
            stream.close()
        return csv_header(file, line)

    def check_stream(self, file: InputFile) -> None:
        """A compressed file decompresses to its end, intact (see
        :func:`pinsights.data.sources.check_stream`): read through in the JVM, nothing sent to
        Python. Hadoop's gzip checks the CRC, a cut stream ends early in either codec."""
        if file.compression is None:
            return
        stream = self._open(file)
        try:
            stream.transferTo(self._jvm.java.io.OutputStream.nullOutputStream())
        except Exception as error:
            raise unreadable(file, _JavaFailure(error)) from error
        finally:
            stream.close()

    def _open(self, file: InputFile) -> Any:
        """The file's bytes, decompressed by the codec its name tells."""
        fs, jpath = self._file_system(file.path)
        try:
            stream = fs.open(jpath)
        except Exception as error:
            self._fail(file.path, error, "cannot open")
        if file.compression is None:
            return stream
        codec = self._jvm.org.apache.hadoop.util.ReflectionUtils.newInstance(
            self._jvm.java.lang.Class.forName(CODECS[file.compression]), self._conf
        )
        try:
            return codec.createInputStream(stream)  # gzip reads its header here
        except Exception as error:
            stream.close()
            raise unreadable(file, _JavaFailure(error)) from error

    # -- errors -----------------------------------------------------------------------------

    def _file_system(self, path: DataPath) -> tuple[Any, Any]:
        jpath = self._jvm.org.apache.hadoop.fs.Path(str(path))
        try:
            return jpath.getFileSystem(self._conf), jpath
        except Exception as error:
            self._fail(path, error, "cannot reach")

    def _fail(self, path: DataPath, error: Exception, doing: str) -> NoReturn:
        """One line for a file system that failed on ``path``, with the status of an unusable
        path (docs/cli.md): what is wrong and, where it helps, what to do. Raised here, not
        ``from`` the Java error, whose handling context it keeps: its cause is the ``OSError``
        that gives the status."""
        classes = _java_classes(error)
        reason = _JavaFailure(error).reason
        scheme = path.scheme if isinstance(path, UrlPath) else "file"
        if classes & {"org.apache.hadoop.fs.UnsupportedFileSystemException"} or (
            "java.lang.ClassNotFoundException" in classes and "FileSystem" in reason
        ):
            raise unusable_path(self._no_file_system(scheme), errno.EPROTONOSUPPORT, path)
        if classes & {"java.io.FileNotFoundException"}:
            raise unusable_path(f"{path} does not exist", errno.ENOENT, path)
        if classes & {
            "org.apache.hadoop.security.AccessControlException",
            "java.nio.file.AccessDeniedException",
        }:
            raise unusable_path(f"{doing} {path}: permission denied ({reason})", errno.EACCES, path)
        raise unusable_path(f"{doing} {path}: {reason}", errno.EIO, path)

    def _no_file_system(self, scheme: str) -> str:
        hadoop = str(self._jvm.org.apache.hadoop.util.VersionInfo.getVersion())
        what, package = CONNECTORS.get(
            scheme, (f"a Hadoop file system for {scheme}://", "GROUP:ARTIFACT:VERSION")
        )
        package = package.format(hadoop=hadoop)
        return (
            f"no file system for {scheme}:// URLs in this Spark session (Hadoop {hadoop}):"
            f" add {what} to its class path, e.g. --spark-conf spark.jars.packages={package}"
            f" (or spark-submit --jars with the jar and its dependencies)"
        )


def _kind(status: Any) -> Kind:
    """What a Hadoop ``FileStatus`` is."""
    return "dir" if status.isDirectory() else "file" if status.isFile() else None


class _JavaFailure(Exception):
    """A JVM exception met through py4j, as its innermost message (no stack trace)."""

    def __init__(self, error: Exception) -> None:
        throwable = _throwable(error)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        while throwable is not None:
            message = throwable.getMessage()
            name = str(throwable.getClass().getSimpleName())
            reason = f"{name}: {message}" if message else name
            throwable = throwable.getCause()
        self.reason = reason
        super().__init__(reason)


def _throwable(error: BaseException) -> Any:
    """The Java exception behind a py4j error (PySpark converts some to its own classes)."""
    return getattr(error, "java_exception", None) or getattr(error, "_origin", None)


def _java_classes(error: BaseException) -> set[str]:
    """Class names of the Java exception behind ``error`` and of its causes."""
    names: set[str] = set()
    throwable = _throwable(error)
    while throwable is not None:
        names.add(str(throwable.getClass().getName()))
        throwable = throwable.getCause()
    return names


# -- paths ------------------------------------------------------------------------------------


def _qualified(session: SparkSession, files: Iterable[InputFile]) -> dict[str, str]:
    """Spark's URI of each file (as ``_metadata.file_path`` shows it) → the path as found."""
    context = session.sparkContext
    jvm = context._jvm
    assert jvm is not None, "the Spark readers need a classic (JVM) session"
    hadoop = context._jsc.hadoopConfiguration()
    uris = {}
    for file in files:
        path = jvm.org.apache.hadoop.fs.Path(str(file.path))
        uri = str(path.getFileSystem(hadoop).makeQualified(path).toUri().toString())
        uris[_canonical(uri)] = str(file.path)
    return uris


def _canonical(uri: str) -> str:
    """``file:///a`` and ``file:/a`` are one file; Spark's scans say the latter."""
    return "file:/" + uri[len("file:///") :] if uri.startswith("file:///") else uri


def _canonical_column(uri: Column) -> Column:
    from pyspark.sql import functions as F

    return F.regexp_replace(uri, "^file:///", "file:/")


def _by_uri(uris: dict[str, str], values: dict[str, str | None], uri: Column) -> Column:
    """A value per file, looked up by Spark's URI in a literal map (no join)."""
    from pyspark.sql import functions as F

    pairs = []
    for spark_uri, path in uris.items():
        pairs += [F.lit(spark_uri), F.lit(values.get(path)).cast("string")]
    return F.create_map(*pairs)[uri]


def _source_file(uris: dict[str, str], uri: Column) -> Column:
    from pyspark.sql import functions as F

    lookup = _by_uri(uris, {path: path for path in uris.values()}, uri)
    return F.coalesce(lookup, F.regexp_replace(uri, "^file:(//)?", ""))


# -- Parquet ----------------------------------------------------------------------------------


def _read_parquet(session: SparkSession, files: tuple[InputFile, ...]) -> DataFrame:
    from pyspark.sql import functions as F

    frame = session.read.option("mergeSchema", "true").parquet(*[str(f.path) for f in files])
    uris = _qualified(session, files)
    uri = _canonical_column(F.col("_metadata.file_path"))
    columns = [F.col(f"`{name}`") for name in frame.columns]
    hive: dict[str, dict[str, str | None]] = {}
    for file in files:
        for folder in file.path.parent.parts:
            key, sep, value = folder.partition("=")
            if sep and key and key not in frame.columns:
                hive.setdefault(key, {})[str(file.path)] = value
    columns += [_by_uri(uris, values, uri).alias(key) for key, values in sorted(hive.items())]
    return frame.select(*columns, _source_file(uris, uri).alias(SOURCE_FILE))


# -- lines ------------------------------------------------------------------------------------


def numbered_lines(session: SparkSession, files: tuple[InputFile, ...]) -> DataFrame:
    """Every line of the text files: ``line`` (no line end; a BOM removed), ``uri``, and
    ``number``, its 1-based number in its file.

    A large file is split over several tasks, so a line's number is not known where it is read.
    Within a task, ``monotonically_increasing_id`` numbers rows consecutively, and each split
    knows where it starts in its file (``_metadata.file_block_start``); counting the lines of
    each split (a tiny table) gives every split's first line number, and a broadcast join spreads
    it back. Compressed files are never split. Both uses scan the files with the same splits, so
    the positions agree without keeping the lines in between.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    scanned = session.read.text([str(f.path) for f in files]).select(
        F.col("value").alias("line"),
        _canonical_column(F.col("_metadata.file_path")).alias("uri"),
        F.col("_metadata.file_block_start").alias("block"),
        F.monotonically_increasing_id().alias("position"),
    )
    blocks = scanned.groupBy("uri", "block").agg(
        F.min("position").alias("first"), F.count(F.lit(1)).alias("lines")
    )
    earlier = Window.partitionBy("uri").orderBy("block")
    blocks = blocks.select(
        "uri", "block", "first", (F.sum("lines").over(earlier) - F.col("lines")).alias("before")
    )
    joined = scanned.join(F.broadcast(blocks), ["uri", "block"])
    number = F.col("before") + F.col("position") - F.col("first") + 1
    # A byte-level cut, not regexp_replace: that decodes the line to a Java string, which turns
    # bytes that are not UTF-8 into U+FFFD, so a malformed first line would pass as valid text.
    starts_with_bom = (number == 1) & F.col("line").startswith(BOM)
    line = F.when(starts_with_bom, F.substring("line", 2, 1 << 30)).otherwise(F.col("line"))
    return joined.select(line.alias("line"), "uri", number.alias("number"))


def _raw_text(line: Column) -> Column:
    """A malformed line's text: bytes that are not UTF-8 shown as ``?``, as DuckDB shows them."""
    from pyspark.sql import functions as F

    return F.when(F.is_valid_utf8(line), line).otherwise(
        F.regexp_replace(F.make_valid_utf8(line), "\ufffd", "?")
    )


def _read_text(
    session: SparkSession, source: TableSource, files: tuple[InputFile, ...]
) -> tuple[DataFrame, set[str]]:
    """Every CSV and JSON Lines file of a table, malformed lines included, as one frame; and
    the contract columns the files have."""
    from pyspark.sql import functions as F

    # A table's files are all local or all behind URLs (discovered from one --data): the
    # header lines and the check of compressed streams go through Hadoop for URLs only.
    read_header, check = read_csv_header, check_stream
    if any(isinstance(file.path, UrlPath) for file in files):
        remote = HadoopTree(session)
        read_header, check = remote.csv_header, remote.check_stream
    headers = {file.path: read_header(file) for file in files if file.format == "csv"}
    columns: dict[str, None] = dict.fromkeys(source.table.column_names)
    for names in headers.values():
        columns.update(dict.fromkeys(names or ()))
    for file in files:  # a cut or corrupt compressed stream is named before anything is read
        check(file)
    uris = _qualified(session, files)
    uri_of = {path: uri for uri, path in uris.items()}
    lines = numbered_lines(session, files)
    valid = F.is_valid_utf8("line")
    parts: list[DataFrame] = []

    by_header: dict[tuple[str, ...], list[str]] = {}
    for path, header in headers.items():
        if header is not None:  # an empty file: no header, no rows
            by_header.setdefault(header, []).append(uri_of[str(path)])
    for header, header_uris in by_header.items():
        schema = ", ".join(f"`{name}` STRING" for name in header) + ", `__corrupt` STRING"
        mine = lines.filter(
            F.col("uri").isin(header_uris) & (F.col("number") > 1) & (F.col("line") != "")
        )
        quoted = F.col("line").contains('"')  # only such lines pay for the regular expressions
        sound = F.regexp_replace("line", SPACED_QUOTED_FIELD, "$1$2")
        parsed = mine.select(
            "line",
            "uri",
            "number",
            (quoted & ~F.col("line").rlike(WELL_QUOTED)).alias("badly_quoted"),
            F.from_csv(F.when(quoted, sound).otherwise(F.col("line")), schema, CSV_OPTIONS).alias(
                "row"
            ),
        )
        broken = F.col("row.__corrupt").isNotNull() | F.col("badly_quoted") | ~valid
        parts.append(
            parsed.select(
                *[
                    F.when(~broken, F.col(f"row.`{name}`")).alias(name)
                    for name in columns
                    if name in header
                ],
                F.when(broken, _raw_text(F.col("line"))).alias(TEXT),
                F.when(broken, F.col("number")).alias(LINE),
                broken.alias(MALFORMED),
                "uri",
            )
        )

    json_uris = [uri_of[str(f.path)] for f in files if f.format == "jsonl"]
    json_fields: set[str] = set()
    if json_uris:
        mine = lines.filter(F.col("uri").isin(json_uris) & ~F.col("line").rlike(BLANK_JSON))
        fields = F.from_json("line", "map<string,string>", JSON_OPTIONS)
        is_object = valid & F.ltrim("line").startswith("{") & fields.isNotNull()
        names = source.table.column_names
        objects = mine.select("*", is_object.alias("is_object"), fields.alias("fields"))
        parts.append(
            objects.select(
                *[F.when(F.col("is_object"), F.col("fields")[name]).alias(name) for name in names],
                _raw_text(F.col("line")).alias(TEXT),
                F.when(~F.col("is_object"), F.col("number")).alias(LINE),
                (~F.col("is_object")).alias(MALFORMED),
                "uri",
            )
        )
        json_fields = _json_fields_present(objects, names)

    frame = parts[0]
    for part in parts[1:]:
        frame = frame.unionByName(part, allowMissingColumns=True)
    text = frame.select(
        *[
            (F.col(f"`{name}`") if name in frame.columns else F.lit(None))
            .cast("string")
            .alias(name)
            for name in columns
        ],
        _source_file(uris, F.col("uri")).alias(SOURCE_FILE),
        F.col(LINE).cast("bigint").alias(LINE),
        F.col(TEXT),
        F.col(MALFORMED),
    )
    present = {c for header in headers.values() if header for c in header}
    return text, present | json_fields


def _json_fields_present(objects: DataFrame, names: tuple[str, ...]) -> set[str]:
    """The contract columns some JSON object of the table has (a table of none lacks none)."""
    from pyspark.sql import functions as F

    valid = objects.filter(F.col("is_object"))
    checks = [F.max(F.map_contains_key("fields", name).cast("int")).alias(name) for name in names]
    row = valid.select(F.count(F.lit(1)).alias("__objects"), *checks).collect()[0]
    if not row["__objects"]:
        return set(names)
    return {name for name in names if row[name]}
