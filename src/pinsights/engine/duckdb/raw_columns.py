"""The columns (names, order, types) of the raw view DuckDB's reader would make of a table's files,
found without reading a row: what tells whether a file read alone is judged as in a full read.

A file's rows are typed by the raw view's column types, and a quarantined row is serialised with
every column of the view (columns other files have are null in it): Parquet files are read with
``union_by_name``, text files share one table of every CSV header's columns, and the two parts are
unioned by name (:func:`~pinsights.engine.duckdb.reader.register_raw_view`). Reading some of a
table's files alone gives exactly the rows a full read gives them if both reads have the same
columns, or if the files are read typed by all of them (:attr:`TableSource.typed_by`) and
:func:`typed_alike` holds: a dataset whose history is Parquet and whose new days come as CSV
reads only the new days. The columns are described the reader's way
(:func:`~pinsights.engine.duckdb.reader.shape_parts`): Parquet footers and hive folders through
``read_parquet`` itself, CSV headers by their first line; no row is read.
"""

from __future__ import annotations

import duckdb

from pinsights.data.sources import InputFile, TableSource
from pinsights.engine.duckdb.reader import shape_parts


def raw_columns(con: duckdb.DuckDBPyConnection, source: TableSource) -> list[tuple[str, str]]:
    """(name, type) of every column of the raw view of ``source``, in the reader's order."""
    described = con.execute(f"DESCRIBE {' UNION ALL BY NAME '.join(shape_parts(con, source))}")
    return [(str(row[0]), str(row[1])) for row in described.fetchall()]


def typed_alike(con: duckdb.DuckDBPyConnection, source: TableSource) -> bool:
    """Whether ``source.files``, read typed by ``source.typed_by`` (every file of the table), give
    each row the values a read of every file gives it.

    The view casts each part's columns to the union's types. The text part is text either way.
    A Parquet part's values go from each file's type to the part's (``union_by_name``), then to
    the view's: the same casts as in a read of every file when the part has, column by column,
    the types the Parquet files of the whole table have. Anything else is not claimed."""
    parquet = source.of_format("parquet")
    if not parquet:
        return True
    every = TableSource(source.table, source.typed_by).of_format("parquet")
    theirs = dict(raw_columns(con, TableSource(source.table, every)))
    mine = raw_columns(con, TableSource(source.table, parquet))
    return all(theirs.get(name) == kind for name, kind in mine)


def state_columns(con: duckdb.DuckDBPyConnection, source: TableSource) -> list[tuple[str, str]]:
    """What the refresh state records of how a table's files are read: the raw view's columns,
    and, when Parquet files are mixed with text ones, the Parquet part's own columns (named
    ``parquet:…``). A Parquet file's values reach the view through that part's types: one file
    whose ids are DOUBLE among BIGINT ones makes every Parquet file's ids ``….0`` as text, though
    the view's columns (text) stay the same."""
    columns = raw_columns(con, source)
    parquet = source.of_format("parquet")
    if parquet and len(parquet) < len(source.files):
        own = raw_columns(con, TableSource(source.table, parquet))
        columns += [(f"parquet:{name}", kind) for name, kind in own]
    return columns


def raw_columns_anywhere(
    con: duckdb.DuckDBPyConnection | None, source: TableSource
) -> list[tuple[str, str]]:
    """:func:`state_columns` on ``con``, or, for another engine's build (Spark keeps the same
    state), on a DuckDB connection of its own: footers and first lines only."""
    if con is not None:
        return state_columns(con, source)
    with duckdb.connect() as side:
        return state_columns(side, source)


def read_alike(
    con: duckdb.DuckDBPyConnection | None, part: TableSource, columns: list[tuple[str, str]]
) -> tuple[InputFile, ...] | None:
    """How ``part.files`` are to be read so that each row is judged as in a read of every file of
    ``part.typed_by`` (whose :func:`state_columns` are ``columns``): ``()`` alone, ``part.typed_by``
    typed by every file, None not at all. Only DuckDB's reader types by other files (``con``
    None: Spark)."""
    if raw_columns_anywhere(con, TableSource(part.table, part.files)) == columns:
        return ()
    if con is not None and typed_alike(con, part):
        return part.typed_by
    return None
