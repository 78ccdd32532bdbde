"""The columns (names, order, types) of the raw view DuckDB's reader would make of a table's files,
found without reading a row: what tells whether a file read alone is judged as in a full read.

A file's rows are typed by the raw view's column types, and a quarantined row is serialised with
every column of the view (columns other files have are null in it): Parquet files are read with
``union_by_name``, text files share one table of every CSV header's columns, and the two parts are
unioned by name (:func:`~pinsights.engine.duckdb.reader.register_raw_view`). So reading some of a
table's files alone gives exactly the rows a full read gives them if, and only if, both reads have
the same columns. This module describes those columns the reader's way: Parquet footers and hive
folders through ``read_parquet`` itself, CSV headers by their first line, and the text part as an
empty table of the columns the reader would create; only footers and first lines are read.
"""

from __future__ import annotations

import duckdb

from pinsights.data.sources import TableSource, read_csv_header
from pinsights.data.tables import LINE, MALFORMED, SOURCE_FILE, TEXT
from pinsights.engine.duckdb.reader import check_parquet_footers


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def raw_columns(con: duckdb.DuckDBPyConnection, source: TableSource) -> list[tuple[str, str]]:
    """(name, type) of every column of the raw view of ``source``, in the reader's order."""
    parts: list[str] = []
    parquet = source.of_format("parquet")
    if parquet:
        check_parquet_footers(con, parquet)
        files = "[" + ", ".join(_text(str(f.path)) for f in parquet) + "]"
        parts.append(
            f"SELECT * FROM read_parquet({files}, filename='{SOURCE_FILE}',"
            " hive_partitioning=true, union_by_name=true)"
        )
    text_files = source.of_format("csv") + source.of_format("jsonl")
    if text_files:
        columns: dict[str, None] = dict.fromkeys(source.table.column_names)
        for file in text_files:
            if file.format == "csv":
                columns.update(dict.fromkeys(read_csv_header(file) or ()))
        definition = ", ".join(f"CAST(NULL AS VARCHAR) AS {_quoted(c)}" for c in columns)
        parts.append(
            f"SELECT {definition}, CAST(NULL AS VARCHAR) AS {SOURCE_FILE},"
            f" CAST(NULL AS BIGINT) AS {LINE}, CAST(NULL AS VARCHAR) AS {TEXT},"
            f" CAST(NULL AS BOOLEAN) AS {MALFORMED} WHERE false"
        )
    described = con.execute(f"DESCRIBE {' UNION ALL BY NAME '.join(parts)}").fetchall()
    return [(str(row[0]), str(row[1])) for row in described]


def raw_columns_anywhere(
    con: duckdb.DuckDBPyConnection | None, source: TableSource
) -> list[tuple[str, str]]:
    """:func:`raw_columns` on ``con``, or, for another engine's build (Spark keeps the same
    state), on a DuckDB connection of its own: footers and first lines only."""
    if con is not None:
        return raw_columns(con, source)
    with duckdb.connect() as side:
        return raw_columns(side, source)
