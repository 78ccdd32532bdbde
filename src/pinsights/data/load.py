"""Finding a dataset's tables on disk and exposing each as a raw DuckDB view.

This is the one backend-specific part of reading input: where the files are and how DuckDB reads each
format. It decides nothing about validity — the portable rules in :mod:`pinsights.data.validate` do.
What it guarantees to them:

- every contract column exists in the view (a missing one is an :class:`InputError` naming it);
- CSV is read with every column as text, so ids that are strings of digits stay strings ("007");
- JSON Lines are read line by line as JSON objects and each field is taken as text, so a number,
  a string and a nested value are all judged by the same rules; the original line is kept for the
  quarantine;
- Parquet keeps its own types (no needless casts of 20M int64 ids);
- ``__source_file`` names the file every row came from.

Input files are only ever opened for reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from pinsights.data.tables import TABLES, Table

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
SOURCE_FILE = "__source_file"
JSON_ROW = "__json"


class InputError(Exception):
    """The dataset cannot be built at all: a missing table or column, an unreadable file."""


@dataclass(frozen=True)
class TableSource:
    """Where one table's rows come from: one format, one or more files."""

    table: Table
    format: str
    files: tuple[Path, ...]

    @property
    def view(self) -> str:
        return f"raw_{self.table.name}"


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
            expected = ", ".join(f"{table.name}{ext}" for ext in FORMATS) + f" or {table.name}/"
            raise InputError(f"missing table '{table.name}': expected {expected} in {data_dir}")
        sources[table.name] = source
    return sources


def _find(data_dir: Path, table: Table) -> TableSource | None:
    for ext, fmt in FORMATS.items():
        single = data_dir / f"{table.name}{ext}"
        if single.is_file():
            return TableSource(table, fmt, (single,))
    directory = data_dir / table.name
    if not directory.is_dir():
        return None
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix in FORMATS and not path.name.startswith((".", "_")):
            found.setdefault(FORMATS[path.suffix], []).append(path)
    if not found:
        raise InputError(
            f"table '{table.name}': directory {directory} holds no .parquet, .csv or .jsonl file"
        )
    if len(found) > 1:
        raise InputError(
            f"table '{table.name}': directory {directory} mixes formats ({', '.join(sorted(found))});"
            " use one format per table"
        )
    fmt, files = next(iter(found.items()))
    return TableSource(table, fmt, tuple(files))


def _sql_list(paths: tuple[Path, ...]) -> str:
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"[{quoted}]"


def register_raw_view(con: duckdb.DuckDBPyConnection, source: TableSource) -> None:
    """Create the view ``raw_<table>`` over the source files, checking every column is there."""
    files = _sql_list(source.files)
    table = source.table
    if source.format == "parquet":
        scan = (
            f"read_parquet({files}, filename='{SOURCE_FILE}', hive_partitioning=true,"
            " union_by_name=true)"
        )
        select = f"SELECT * FROM {scan}"
    elif source.format == "csv":
        scan = (
            f"read_csv({files}, header=true, all_varchar=true, filename='{SOURCE_FILE}',"
            " hive_partitioning=true, union_by_name=true)"
        )
        select = f"SELECT * FROM {scan}"
    else:
        scan = f"read_ndjson_objects({files}, filename=true)"
        fields = ", ".join(f"{JSON_ROW} ->> '{name}' AS \"{name}\"" for name in table.column_names)
        select = (
            f"SELECT {fields}, {JSON_ROW}, {SOURCE_FILE}"
            f" FROM (SELECT json AS {JSON_ROW}, filename AS {SOURCE_FILE} FROM {scan})"
        )
    try:
        con.execute(f'CREATE OR REPLACE VIEW "{source.view}" AS {select}')
        present = {row[0] for row in con.execute(f'DESCRIBE "{source.view}"').fetchall()}
    except duckdb.Error as error:
        raise InputError(
            f"table '{table.name}': cannot read {source.files[0].parent}: {error}"
        ) from error
    missing = [name for name in table.column_names if name not in present]
    if source.format == "jsonl":
        missing = _missing_json_fields(con, source)
    if missing:
        raise InputError(
            f"table '{table.name}' is missing column(s) {', '.join(missing)}"
            f" (in {', '.join(str(f) for f in source.files[:3])}"
            f"{' …' if len(source.files) > 3 else ''})"
        )


def _missing_json_fields(con: duckdb.DuckDBPyConnection, source: TableSource) -> list[str]:
    """A JSON Lines column is missing when no line of the table has that field at all."""
    checks = ", ".join(
        f"bool_or(json_exists({JSON_ROW}, '$.\"{name}\"'))" for name in source.table.column_names
    )
    try:
        row = con.execute(f'SELECT {checks} FROM "{source.view}"').fetchall()[0]
    except duckdb.Error as error:
        raise InputError(f"table '{source.table.name}': cannot read JSON Lines: {error}") from error
    if all(value is None for value in row):  # an empty table: nothing is missing
        return []
    return [name for name, seen in zip(source.table.column_names, row, strict=True) if not seen]
