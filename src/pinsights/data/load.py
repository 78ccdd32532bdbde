"""Finding a dataset's tables on disk and exposing each as a raw DuckDB view.

This is the one backend-specific part of reading input: where the files are and how DuckDB reads each
format. It decides nothing about validity — the portable rules in :mod:`pinsights.data.validate` do.
What it guarantees to them (the *raw table contract*, which every engine's reader keeps):

- every contract column exists in the view (a missing one is an :class:`InputError` naming it);
- a table may be spread over files of several formats (a migration leaves Parquet and CSV side by
  side); text files may be compressed (``.gz``, ``.zst``, told by the suffix);
- CSV is read with every column as text, so ids that are strings of digits stay strings ("007");
- JSON Lines are read as lines of text and each field is taken as text, so a number, a string and
  a nested value are all judged by the same rules;
- Parquet keeps its own types (no needless casts of 20M int64 ids) when a table is all Parquet;
- ``__source_file`` names the file every row came from;
- a line that cannot be read as a row (the ``malformed`` rule) is a row too, with every contract
  column null, ``__malformed`` true, its raw text in ``__text`` and its line number in ``__line``,
  so that it is counted and judged with all the others and nothing is lost.

Text files are read one at a time, materialised once: the CSV reader's rejects (wrong field
count, broken quoting, bytes that are not UTF-8) are tied to the file they came from, a file that
cannot be read at all is named, and later steps do not parse the text again.

Input files are only ever opened for reading.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pinsights.data.tables import TABLES, Table

#: Accepted file name endings: (format, compression). Compression is told by the suffix alone.
SUFFIXES: dict[str, tuple[str, str | None]] = {
    ".parquet": ("parquet", None),
    ".csv": ("csv", None),
    ".csv.gz": ("csv", "gzip"),
    ".csv.zst": ("csv", "zstd"),
    ".jsonl": ("jsonl", None),
    ".jsonl.gz": ("jsonl", "gzip"),
    ".jsonl.zst": ("jsonl", "zstd"),
}
SOURCE_FILE = "__source_file"
#: Set for lines that cannot be read as a row; such a row has every contract column null.
MALFORMED = "__malformed"
#: The raw text of a JSON line or of a malformed line (null for CSV and Parquet rows).
TEXT = "__text"
#: The line number of a malformed line in its file (1-based; a CSV header is line 1).
LINE = "__line"

#: JSON Lines are read as one text column: a character valid JSON never holds unescaped as the
#: delimiter, no quoting. A line holding it is not a JSON object anyway, and is rejected.
_LINE_OPTIONS = (
    "header=false, auto_detect=false, columns={'line': 'VARCHAR'}, delim='\\x1f', quote='',"
    " escape='', strict_mode=false, hive_partitioning=false"
)
_CSV_OPTIONS = "auto_detect=false, delim=',', quote='\"', escape='\"', hive_partitioning=false"
_REJECTS = "rejects_table='{table}', rejects_scan='{scans}', store_rejects=true"

WHAT_TO_DO = "export it again, or move it out of the dataset"
#: Errors that are a defect of this reader's SQL, never blamed on a file. Anything else DuckDB
#: raises while reading one file (a damaged footer or page, a broken compressed stream — some of
#: them plain ``duckdb.Error``) means that file cannot be read.
NOT_FILE_ERRORS = (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException)


class InputError(Exception):
    """The dataset cannot be built at all: a missing table or column, an unreadable file."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: str  # parquet, csv or jsonl
    compression: str | None = None


def input_file(path: Path) -> InputFile | None:
    """The file's format and compression from its name, or None for a file that is not input."""
    name = path.name.lower()
    for suffix, (fmt, compression) in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return InputFile(path, fmt, compression)
    return None


@dataclass(frozen=True)
class TableSource:
    """Where one table's rows come from: one or more files, in one or several formats."""

    table: Table
    files: tuple[InputFile, ...]

    @property
    def view(self) -> str:
        return f"raw_{self.table.name}"

    @property
    def formats(self) -> frozenset[str]:
        return frozenset(f.format for f in self.files)

    def of_format(self, fmt: str) -> tuple[InputFile, ...]:
        return tuple(f for f in self.files if f.format == fmt)


def discover(data_dir: Path) -> dict[str, TableSource]:
    """Locate every table of the contract in ``data_dir``; a missing required table is an error."""
    if not data_dir.is_dir():
        raise InputError(f"data directory {data_dir} does not exist or is not a directory")
    sources: dict[str, TableSource] = {}
    for table in TABLES:
        source = _find(data_dir, table)
        if source is None:
            if table.optional:
                continue
            expected = ", ".join(f"{table.name}{ext}" for ext in SUFFIXES) + f" or {table.name}/"
            raise InputError(f"missing table '{table.name}': expected {expected} in {data_dir}")
        sources[table.name] = source
    return sources


def _find(data_dir: Path, table: Table) -> TableSource | None:
    entries = [
        found
        for path in sorted(data_dir.iterdir())
        if path.is_file()
        and (found := input_file(path)) is not None
        and path.name.lower() == table.name + _suffix_of(path.name)
    ]
    directory = data_dir / table.name
    candidates = [str(e.path.name) for e in entries] + (
        [f"{table.name}/"] if directory.is_dir() else []
    )
    if len(candidates) > 1:
        raise InputError(
            f"table '{table.name}' is given more than once in {data_dir}"
            f" ({', '.join(candidates)}): keep one of them"
        )
    if entries:
        return TableSource(table, (entries[0],))
    if not directory.is_dir():
        return None
    files = tuple(
        found
        for path in sorted(directory.rglob("*"))
        if path.is_file()
        and not any(part.startswith((".", "_")) for part in path.relative_to(directory).parts)
        and (found := input_file(path)) is not None
    )
    if not files:
        raise InputError(
            f"table '{table.name}': directory {directory} holds no {', '.join(SUFFIXES)} file"
        )
    return TableSource(table, files)


def _suffix_of(name: str) -> str:
    lowered = name.lower()
    return next((s for s in SUFFIXES if lowered.endswith(s)), "")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(files: tuple[InputFile, ...]) -> str:
    return "[" + ", ".join(_sql_text(str(f.path)) for f in files) + "]"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_path(field: str) -> str:
    return _sql_text('$."' + field.replace('"', '\\"') + '"')


def _compression(file: InputFile) -> str:
    return f", compression='{file.compression}'" if file.compression else ""


def unreadable(file: InputFile, error: Exception) -> InputError:
    """The error for a file that cannot be read at all: which file, why, and what to do."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InputError(
        f"cannot read {file.path}: {reason}. The file is damaged or truncated: {WHAT_TO_DO}."
    )


def register_raw_view(con: duckdb.DuckDBPyConnection, source: TableSource) -> None:
    """Create the view ``raw_<table>`` over the source files, checking every column is there."""
    table = source.table
    parts: list[str] = []
    parquet = source.of_format("parquet")
    if parquet:
        for file in parquet:  # a damaged footer is found now, and named, not halfway through
            try:
                con.execute(
                    f"SELECT num_rows FROM parquet_file_metadata({_sql_text(str(file.path))})"
                )
            except duckdb.Error as error:
                if isinstance(error, NOT_FILE_ERRORS):
                    raise
                raise unreadable(file, error) from error
        parts.append(
            f"SELECT * FROM read_parquet({_sql_list(parquet)}, filename='{SOURCE_FILE}',"
            " hive_partitioning=true, union_by_name=true)"
        )
    text_files = source.of_format("csv") + source.of_format("jsonl")
    present: set[str] = set()
    if text_files:
        text_table, present = _read_text_files(con, source, text_files)
        parts.append(f"SELECT * FROM {_quoted(text_table)}")
    select = " UNION ALL BY NAME ".join(parts)
    try:
        if parquet:
            described = con.execute(f"DESCRIBE {parts[0]}").fetchall()
            present |= {row[0] for row in described}
        con.execute(f"CREATE OR REPLACE VIEW {_quoted(source.view)} AS {select}")
    except duckdb.Error as error:
        raise InputError(f"table '{table.name}': cannot read its files: {error}") from error
    missing = [name for name in table.column_names if name not in present]
    if missing:
        files = [str(f.path) for f in source.files]
        raise InputError(
            f"table '{table.name}' is missing column(s) {', '.join(missing)}"
            f" (in {', '.join(files[:3])}{' …' if len(files) > 3 else ''})"
        )


def find_damaged(con: duckdb.DuckDBPyConnection, sources: list[TableSource]) -> InputError | None:
    """The first Parquet file that cannot be read through, as an error naming it, or None.

    Parquet is scanned where the rules read it, so a damaged page (the footer being fine) only
    shows halfway through a build, in an error that may not name the file; this finds it.
    """
    for source in sources:
        for file in source.of_format("parquet"):
            try:
                con.execute(
                    f"SELECT count(*) FROM read_parquet({_sql_text(str(file.path))}) t"
                    " WHERE t::VARCHAR IS NOT NULL"
                ).fetchall()
            except duckdb.Error as error:
                if isinstance(error, NOT_FILE_ERRORS):
                    raise
                return unreadable(file, error)
    return None


# --- text files ------------------------------------------------------------------------------


def _read_text_files(
    con: duckdb.DuckDBPyConnection, source: TableSource, files: tuple[InputFile, ...]
) -> tuple[str, set[str]]:
    """Materialise every CSV and JSON Lines file of a table, malformed lines included, in one
    table of the in-memory database (not a temp table: the build checks tables on several
    cursors, see the DuckDB backend); return its name and the contract columns the files have."""
    name = f"text_{source.table.name}"
    rejects, scans = f"rejects_{source.table.name}", f"reject_scans_{source.table.name}"
    headers = {file.path: _csv_header(file) for file in files if file.format == "csv"}
    columns: dict[str, None] = dict.fromkeys(source.table.column_names)
    for header in headers.values():
        columns.update(dict.fromkeys(header or ()))
    definition = ", ".join(f"{_quoted(c)} VARCHAR" for c in columns)
    con.execute(
        f"CREATE OR REPLACE TABLE {_quoted(name)} ({definition}, {SOURCE_FILE} VARCHAR,"
        f" {LINE} BIGINT, {TEXT} VARCHAR, {MALFORMED} BOOLEAN)"
    )
    for table_name in (rejects, scans):
        con.execute(f"DROP TABLE IF EXISTS {_quoted(table_name)}")
    for file in files:
        _check_stream(file)
        path = _sql_text(str(file.path))
        options = _REJECTS.format(table=rejects, scans=scans) + _compression(file)
        try:
            if file.format == "csv":
                header = headers[file.path]
                if header is None:
                    continue  # an empty file: no header, no rows
                types = ", ".join(f"{_sql_text(c)}: 'VARCHAR'" for c in header)
                scan = (
                    f"read_csv({path}, header=true, {_CSV_OPTIONS}, {options}, columns={{{types}}})"
                )
                con.execute(
                    f"INSERT INTO {_quoted(name)} BY NAME"
                    f" SELECT *, {path} AS {SOURCE_FILE}, false AS {MALFORMED} FROM {scan}"
                )
            else:
                _insert_json_lines(con, name, source.table, file, options)
        except duckdb.Error as error:
            if isinstance(error, NOT_FILE_ERRORS):
                raise
            raise unreadable(file, error) from error
    _insert_rejected_lines(con, name, rejects, scans, files)
    present = {c for header in headers.values() if header for c in header}
    return name, present | _json_fields_present(con, name, source)


def _check_stream(file: InputFile) -> None:
    """A compressed file must decompress to its end, intact.

    DuckDB reads a zstd stream cut short without a word, as if the file ended there; the lines
    after the cut would be lost without a trace. Decompressing once more here (in C, in 1 MiB
    chunks, output discarded) costs a fraction of parsing the text and finds a cut or corrupt
    stream — gzip's CRC included — before anything is read.
    """
    if file.compression is None:
        return
    try:
        with pa.input_stream(str(file.path), compression=file.compression) as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, pa.ArrowException) as error:
        raise unreadable(file, error) from error


def _csv_header(file: InputFile) -> tuple[str, ...] | None:
    """The column names of a CSV file's header line (None for an empty file).

    Read here, not sniffed by DuckDB: a sniffer guesses from a sample, and a broken line in the
    sample would change its guess for the whole file.
    """
    try:
        with pa.input_stream(str(file.path), compression=file.compression) as stream:
            first = b""
            while b"\n" not in first and (chunk := stream.read(1 << 16)):
                first += chunk
        line = first.split(b"\n", 1)[0].removesuffix(b"\r").decode("utf-8-sig")
    except (OSError, pa.ArrowException) as error:
        raise unreadable(file, error) from error
    except UnicodeDecodeError as error:
        raise InputError(
            f"cannot read {file.path}: its header line is not UTF-8 text ({error})"
        ) from error
    if not line.strip():
        return None
    names = next(csv.reader([line]))
    unique: list[str] = []
    for column in names:
        candidate, n = column, 1
        while candidate in unique or candidate.startswith("__"):
            n += 1
            candidate = f"{column}_{n}"
        unique.append(candidate)
    return tuple(unique)


def _insert_json_lines(
    con: duckdb.DuckDBPyConnection, name: str, table: Table, file: InputFile, options: str
) -> None:
    """Each non-blank line is a row: fields of a JSON object as text, anything else malformed.

    The line number of a line that is not an object is its ordinality among the lines the reader
    returned; the lines it rejected (not UTF-8) are added back in :func:`_insert_rejected_lines`.
    """
    path = _sql_text(str(file.path))
    paths = ", ".join(_json_path(c) for c in table.column_names)
    fields = ", ".join(
        f"CASE WHEN is_object THEN fields[{i}] END AS {_quoted(c)}"
        for i, c in enumerate(table.column_names, start=1)
    )
    con.execute(
        f"INSERT INTO {_quoted(name)} BY NAME"
        f" SELECT {fields}, {path} AS {SOURCE_FILE}, line AS {TEXT},"
        f" NOT is_object AS {MALFORMED}, CASE WHEN NOT is_object THEN ordinality END AS {LINE}"
        f" FROM (SELECT line, ordinality, is_object,"
        f"   CASE WHEN is_object THEN json_extract_string(line, [{paths}]) END AS fields"
        f"  FROM (SELECT line, ordinality,"
        f"    coalesce(json_valid(line) AND ltrim(line, ' \t\r')[1] = '{{', false) AS is_object"
        f"   FROM read_csv({path}, {_LINE_OPTIONS}, {options}) WITH ORDINALITY"
        f"   WHERE line IS NOT NULL AND trim(line, ' \t\r') <> ''))"
    )


def _insert_rejected_lines(
    con: duckdb.DuckDBPyConnection,
    name: str,
    rejects: str,
    scans: str,
    files: tuple[InputFile, ...],
) -> None:
    """Turn the reader's rejected lines into malformed rows: one per (file, line), whatever the
    number of errors DuckDB found on it, raw text without the line end."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [rejects]
    ).fetchall()[0][0]
    if not exists:
        return
    rejected = (
        f"SELECT s.file_path AS file, e.line AS line, any_value(e.csv_line) AS raw"
        f" FROM {_quoted(rejects)} e JOIN {_quoted(scans)} s USING (scan_id)"
        " GROUP BY ALL"
    )
    if any(f.format == "jsonl" for f in files):
        # A JSON line's ordinality skips the rejected lines before it: add them back. With the
        # rejected lines r_1 < r_2 < … of a file, a line returned as the k-th comes after
        # exactly the r_j with r_j - j < k.
        con.execute(
            f"UPDATE {_quoted(name)} t SET {LINE} = t.{LINE} + ("
            f"  SELECT count(*) FROM (SELECT line - row_number() OVER (ORDER BY line) AS shift"
            f"   FROM ({rejected}) r WHERE r.file = t.{SOURCE_FILE}) WHERE shift < t.{LINE})"
            f" WHERE t.{MALFORMED} AND t.{TEXT} IS NOT NULL"
        )
    con.execute(
        f"INSERT INTO {_quoted(name)} BY NAME"
        f" SELECT file AS {SOURCE_FILE}, line AS {LINE},"
        f"  trim(raw, chr(13) || chr(10)) AS {TEXT}, true AS {MALFORMED}"
        f" FROM ({rejected})"
    )


def _json_fields_present(
    con: duckdb.DuckDBPyConnection, text_table: str, source: TableSource
) -> set[str]:
    """The contract columns some JSON line of the table has (an empty table lacks none)."""
    if "jsonl" not in source.formats:
        return set()
    checks = ", ".join(
        f"bool_or(json_exists({TEXT}, {_json_path(name)}))" for name in source.table.column_names
    )
    row = con.execute(
        f"SELECT count(*), {checks} FROM {_quoted(text_table)}"
        f" WHERE NOT {MALFORMED} AND {TEXT} IS NOT NULL"
    ).fetchall()[0]
    if not row[0]:
        return set(source.table.column_names)
    return {name for name, seen in zip(source.table.column_names, row[1:], strict=True) if seen}
