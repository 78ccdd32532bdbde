"""DuckDB's reader: a table's files as a raw DuckDB view, the raw table contract kept.

How DuckDB reads each format; the files were found by :mod:`pinsights.data.sources`, whose
docstring states the raw table contract every engine's reader keeps. It decides nothing about
validity — the portable rules in :mod:`pinsights.data.validate` do. What is DuckDB's own:

- CSV is read with every column as text (header read by :func:`~pinsights.data.sources.read_csv_header`,
  not sniffed); JSON Lines as lines of text, each field taken as text;
- a CSV record that cannot be read and spans several physical lines (a quote never closed) is cut
  back to its first line, and the lines after it are read as rows (:func:`_read_csv_cut_back`).

Text files are read one at a time, materialised once: the CSV reader's rejects (wrong field
count, broken quoting, bytes that are not UTF-8) are tied to the file they came from, a file that
cannot be read at all is named, and later steps do not parse the text again.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from pinsights.data.sources import (
    WHAT_TO_DO,
    InputError,
    InputFile,
    TableSource,
    check_stream,
    read_csv_header,
    unreadable,
)
from pinsights.data.tables import LINE, MALFORMED, SOURCE_FILE, TEXT, Table

#: JSON Lines are read as one text column: a character valid JSON never holds unescaped as the
#: delimiter, no quoting. A line holding it is not a JSON object anyway, and is rejected.
_LINE_OPTIONS = (
    "header=false, auto_detect=false, columns={'line': 'VARCHAR'}, delim='\\x1f', quote='',"
    " escape='', strict_mode=false, hive_partitioning=false"
)
_CSV_OPTIONS = "auto_detect=false, delim=',', quote='\"', escape='\"', hive_partitioning=false"
_REJECTS = "rejects_table='{table}', rejects_scan='{scans}', store_rejects=true"

#: Errors that are a defect of this reader's SQL, never blamed on a file. Anything else DuckDB
#: raises while reading one file (a damaged footer or page, a broken compressed stream — some of
#: them plain ``duckdb.Error``) means that file cannot be read.
#: Errors that say nothing about the file being read (a query bug, too little memory).
NOT_FILE_ERRORS = (
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ParserException,
    duckdb.OutOfMemoryException,
)


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


def check_parquet_footers(con: duckdb.DuckDBPyConnection, files: tuple[InputFile, ...]) -> None:
    """A damaged footer is found before any read, and the file named, not halfway through."""
    for file in files:
        try:
            con.execute(f"SELECT num_rows FROM parquet_file_metadata({_sql_text(str(file.path))})")
        except duckdb.Error as error:
            if isinstance(error, NOT_FILE_ERRORS):
                raise
            raise unreadable(file, error) from error


def _parquet_scan(files: tuple[InputFile, ...]) -> str:
    return (
        f"SELECT * FROM read_parquet({_sql_list(files)}, filename='{SOURCE_FILE}',"
        " hive_partitioning=true, union_by_name=true)"
    )


def _text_columns(table: Table, headers: Iterable[tuple[str, ...] | None]) -> list[str]:
    """The text table's value columns, in order: the contract's, then every CSV header's."""
    columns: dict[str, None] = dict.fromkeys(table.column_names)
    for header in headers:
        columns.update(dict.fromkeys(header or ()))
    return list(columns)


def shape_parts(con: duckdb.DuckDBPyConnection, source: TableSource) -> list[str]:
    """The raw view's parts as empty relations with its columns and types, in its order, found
    from Parquet footers and CSV headers only (no row read): what :func:`raw_columns` describes,
    and what a read of some files is unioned with to be typed as a read of them all."""
    parts: list[str] = []
    parquet = source.of_format("parquet")
    if parquet:
        check_parquet_footers(con, parquet)
        parts.append(f"{_parquet_scan(parquet)} WHERE false")
    text_files = source.of_format("csv") + source.of_format("jsonl")
    if text_files:
        headers = (read_csv_header(f) for f in text_files if f.format == "csv")
        definition = ", ".join(
            f"CAST(NULL AS VARCHAR) AS {_quoted(c)}" for c in _text_columns(source.table, headers)
        )
        parts.append(
            f"SELECT {definition}, CAST(NULL AS VARCHAR) AS {SOURCE_FILE},"
            f" CAST(NULL AS BIGINT) AS {LINE}, CAST(NULL AS VARCHAR) AS {TEXT},"
            f" CAST(NULL AS BOOLEAN) AS {MALFORMED} WHERE false"
        )
    return parts


def register_raw_view(con: duckdb.DuckDBPyConnection, source: TableSource) -> None:
    """Create the view ``raw_<table>`` over the source files, checking every column the contract
    needs is there (an optional column no file has is not a column of the view). With
    ``source.typed_by``, the view has the columns and types of a read of those files (the
    caller checked :func:`~pinsights.engine.duckdb.raw_columns.typed_alike`)."""
    table = source.table
    parts: list[str] = []
    present: set[str] = set()
    if source.typed_by:
        parts += shape_parts(con, TableSource(table, source.typed_by))
        described = con.execute(f"DESCRIBE {' UNION ALL BY NAME '.join(parts)}").fetchall()
        present |= {row[0] for row in described}
    parquet = source.of_format("parquet")
    if parquet:
        check_parquet_footers(con, parquet)
        parts.append(_parquet_scan(parquet))
    text_files = source.of_format("csv") + source.of_format("jsonl")
    text_table = None
    if text_files:
        text_table, found = _read_text_files(con, source, text_files)
        present |= found
    try:
        if parquet:
            described = con.execute(f"DESCRIBE {parts[-1]}").fetchall()
            present |= {row[0] for row in described}
        if text_table is not None:
            # The text table has every contract column; one no file has is left out of the
            # view, as absent from Parquet: not a column of null values in every row shown.
            absent = ", ".join(_quoted(name) for name in table.absent_columns(present))
            exclude = f" EXCLUDE ({absent})" if absent else ""
            parts.append(f"SELECT *{exclude} FROM {_quoted(text_table)}")
        select = " UNION ALL BY NAME ".join(parts)
        con.execute(f"CREATE OR REPLACE VIEW {_quoted(source.view)} AS {select}")
    except duckdb.Error as error:
        raise InputError(f"table '{table.name}': cannot read its files: {error}") from error
    missing = [name for name in table.needed_column_names if name not in present]
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
    headers = {file.path: read_csv_header(file) for file in files if file.format == "csv"}
    columns = _text_columns(source.table, headers.values())
    definition = ", ".join(f"{_quoted(c)} VARCHAR" for c in columns)
    con.execute(
        f"CREATE OR REPLACE TABLE {_quoted(name)} ({definition}, {SOURCE_FILE} VARCHAR,"
        f" {LINE} BIGINT, {TEXT} VARCHAR, {MALFORMED} BOOLEAN)"
    )
    for table_name in (rejects, scans):
        con.execute(f"DROP TABLE IF EXISTS {_quoted(table_name)}")
    for file in files:
        assert isinstance(file.path, Path), "DuckDB reads local files (discover refuses URLs)"
        check_stream(file)
        options = _REJECTS.format(table=rejects, scans=scans) + _compression(file)
        try:
            if file.format == "csv":
                header = headers[file.path]
                if header is None:
                    continue  # an empty file: no header, no rows
                _insert_csv(con, name, file.path, file, header, options)
                if _first_spanning_reject(con, rejects, scans, file.path) is not None:
                    _discard_file(con, name, rejects, scans, file)
                    _read_csv_cut_back(con, name, file, header)
            else:
                _insert_json_lines(con, name, source.table, file, options)
        except duckdb.Error as error:
            if isinstance(error, NOT_FILE_ERRORS):
                raise
            raise unreadable(file, error) from error
    _insert_rejected_lines(con, name, rejects, scans, files)
    present = {c for header in headers.values() if header for c in header}
    return name, present | _json_fields_present(con, name, source)


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
    rejected = _rejected(rejects, scans)
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
    _insert_malformed(con, name, rejected)


def _csv_scan(path: Path, header: tuple[str, ...], options: str) -> str:
    types = ", ".join(f"{_sql_text(c)}: 'VARCHAR'" for c in header)
    return (
        f"read_csv({_sql_text(str(path))}, header=true, {_CSV_OPTIONS}, {options},"
        f" columns={{{types}}})"
    )


def _insert_csv(
    con: duckdb.DuckDBPyConnection,
    target: str,
    path: Path,
    file: InputFile,
    header: tuple[str, ...],
    options: str,
) -> None:
    """Read the CSV file at ``path`` into ``target``, its rows named after ``file``."""
    con.execute(
        f"INSERT INTO {_quoted(target)} BY NAME"
        f" SELECT *, {_sql_text(str(file.path))} AS {SOURCE_FILE}, false AS {MALFORMED}"
        f" FROM {_csv_scan(path, header, options)}"
    )


def _rejected(rejects: str, scans: str, file: str = "s.file_path", offset: int = 0) -> str:
    """The reader's rejected lines, one per (file, line) whatever the number of errors DuckDB
    found on it: ``file``, ``line`` (plus ``offset``) and ``raw``."""
    return (
        f"SELECT {file} AS file, e.line + {offset} AS line, any_value(e.csv_line) AS raw"
        f" FROM {_quoted(rejects)} e JOIN {_quoted(scans)} s USING (scan_id)"
        " GROUP BY ALL"
    )


def _insert_malformed(con: duckdb.DuckDBPyConnection, name: str, rejected: str) -> None:
    """The rejected lines as malformed rows, raw text without the line end, in file order (the
    quarantine shows them in the order they are read)."""
    con.execute(
        f"INSERT INTO {_quoted(name)} BY NAME"
        f" SELECT file AS {SOURCE_FILE}, line AS {LINE},"
        f"  trim(raw, chr(13) || chr(10)) AS {TEXT}, true AS {MALFORMED}"
        f" FROM ({rejected}) ORDER BY file, line"
    )


#: A rejected record holding a line break: the reader took more than one physical line for it.
_SPANS_LINES = "contains(trim(e.csv_line, chr(13) || chr(10)), chr(10))"
#: How many lines of one file may open a quote never closed before the file is refused: each
#: one costs a new read of the rest of the file (see :func:`_read_csv_cut_back`).
MAX_CUT_BACKS = 100


def _first_spanning_reject(
    con: duckdb.DuckDBPyConnection, rejects: str, scans: str, path: Path | None = None
) -> tuple[int, int, str] | None:
    """The first rejected record of the file (of any file when ``path`` is None) that spans
    several physical lines: (its line, the 1-based byte position where its raw text starts,
    its raw text)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [rejects]
    ).fetchall()[0][0]
    if not exists:
        return None
    where = "" if path is None else f" AND s.file_path = {_sql_text(str(path))}"
    rows = con.execute(
        f"SELECT e.line, e.line_byte_position, e.csv_line"
        f" FROM {_quoted(rejects)} e JOIN {_quoted(scans)} s USING (scan_id)"
        f" WHERE {_SPANS_LINES}{where} ORDER BY e.line, e.line_byte_position LIMIT 1"
    ).fetchall()
    return (int(rows[0][0]), int(rows[0][1]), str(rows[0][2])) if rows else None


def _discard_file(
    con: duckdb.DuckDBPyConnection, name: str, rejects: str, scans: str, file: InputFile
) -> None:
    """Forget what one reading of ``file`` gave: its rows and its rejected lines."""
    path = _sql_text(str(file.path))
    con.execute(f"DELETE FROM {_quoted(name)} WHERE {SOURCE_FILE} = {path}")
    con.execute(
        f"DELETE FROM {_quoted(rejects)} WHERE scan_id IN"
        f" (SELECT scan_id FROM {_quoted(scans)} WHERE file_path = {path})"
    )


def _read_csv_cut_back(
    con: duckdb.DuckDBPyConnection, name: str, file: InputFile, header: tuple[str, ...]
) -> None:
    """Read a CSV file in which DuckDB rejected a record spanning several physical lines.

    Such a record is a quote left open (or closed lines later by a stray quote): CSV lets a
    quoted field hold line breaks, so the reader takes every line up to the next quote — with an
    unclosed quote, the rest of the file — as one broken record. Counted as one line, it would
    hide all those lines from ``read`` and from ``--max-bad-fraction``. So the record is cut back
    to its own first line, which is malformed, and reading resumes at the next physical line,
    as a line-by-line reader (the Spark engine's) reads them. DuckDB cannot start reading in the
    middle of a file (its ``skip`` counts records, quotes included), so the rest is copied, under
    the header line, to a temporary file that is read in turn: at most :data:`MAX_CUT_BACKS`
    times per file. Line numbers are those of the original file. Only files with such a record
    take this path; a quoted field holding a line break that is closed properly stays one row.
    """
    cut_rejects, cut_scans = f"rejects_cut_{name}", f"reject_scans_cut_{name}"
    stage = f"cut_{name}"
    options = _REJECTS.format(table=cut_rejects, scans=cut_scans)
    source = _sql_text(str(file.path))
    with tempfile.TemporaryDirectory(prefix="pinsights-csv-") as folder:
        rest, head = Path(folder) / "rest.csv", Path(folder) / "head.csv"
        with (
            pa.input_stream(str(file.path), compression=file.compression) as stream,
            rest.open("wb") as out,
        ):
            while chunk := stream.read(1 << 20):
                out.write(chunk)
        with rest.open("rb") as text:
            header_line = text.readline()
        offset = 0  # a line of the rest file is line + offset of the original file
        for _ in range(MAX_CUT_BACKS + 1):
            for table_name in (cut_rejects, cut_scans):
                con.execute(f"DROP TABLE IF EXISTS {_quoted(table_name)}")
            con.execute(f"CREATE OR REPLACE TABLE {_quoted(stage)} AS FROM {_quoted(name)} LIMIT 0")
            _insert_csv(con, stage, rest, file, header, options)
            spanning = _first_spanning_reject(con, cut_rejects, cut_scans)
            if spanning is None:
                con.execute(f"INSERT INTO {_quoted(name)} BY NAME FROM {_quoted(stage)}")
                _insert_malformed(con, name, _rejected(cut_rejects, cut_scans, source, offset))
                con.execute(f"DROP TABLE {_quoted(stage)}")
                return
            line, position, raw = spanning
            start, end = _own_line(rest, position - 1, raw)
            if start > len(header_line):  # the lines before it read as they were
                _copy_range(rest, head, 0, start)
                for table_name in (cut_rejects, cut_scans):
                    con.execute(f"DROP TABLE IF EXISTS {_quoted(table_name)}")
                _insert_csv(con, name, head, file, header, options)
                _insert_malformed(con, name, _rejected(cut_rejects, cut_scans, source, offset))
            own = raw.strip("\r\n").split("\n", 1)[0].removesuffix("\r")
            con.execute(
                f"INSERT INTO {_quoted(name)} ({SOURCE_FILE}, {LINE}, {TEXT}, {MALFORMED})"
                " VALUES (?, ?, ?, true)",
                [str(file.path), line + offset, own],
            )
            _copy_range(rest, head, end, None, prefix=header_line)
            head.replace(rest)
            offset += line - 1
        con.execute(f"DROP TABLE IF EXISTS {_quoted(stage)}")
    raise InputError(
        f"cannot read {file.path}: more than {MAX_CUT_BACKS} of its lines open a quote that is"
        f" never closed. The file is not valid CSV: {WHAT_TO_DO}."
    )


def _own_line(path: Path, position: int, raw: str) -> tuple[int, int]:
    """Where the first physical line of a rejected record starts in the file, and where the
    line after it starts. The reader's raw text begins at ``position`` (0-based), line ends of
    the lines before it included."""
    with path.open("rb") as text:
        lead = len(raw) - len(raw.lstrip("\r\n"))  # line-end characters are single bytes
        text.seek(position + lead)
        start = text.tell()
        own = text.readline()
        first = raw.lstrip("\r\n").split("\n", 1)[0]
        if start > 0:
            text.seek(start - 1)
            before = text.read(1)
        else:
            before = b"\n"
    expected = first.encode("utf-8", errors="replace")
    if before != b"\n" or ("?" not in first and not own.startswith(expected)):
        raise RuntimeError(  # a defect: DuckDB's byte positions are not what this reader assumes
            f"the CSV reader's rejected record at byte {position} of {path} is not where expected"
        )
    return start, start + len(own)


def _copy_range(
    source: Path, target: Path, start: int, end: int | None, prefix: bytes = b""
) -> None:
    """Write ``prefix`` and the bytes ``start``..``end`` (or to the end) of ``source`` to ``target``."""
    with source.open("rb") as inp, target.open("wb") as out:
        out.write(prefix)
        inp.seek(start)
        if end is None:
            shutil.copyfileobj(inp, out, 1 << 20)
            return
        remaining = end - start
        while remaining > 0 and (chunk := inp.read(min(remaining, 1 << 20))):
            out.write(chunk)
            remaining -= len(chunk)


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
