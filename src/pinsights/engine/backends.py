"""Execution backends: where the portable Ibis definition runs.

A backend knows how to expose input files as raw tables, materialise intermediate results and hand
results back as Arrow. The semantics (``engine/semantics.py``) and the rules
(``data/validate.py``) never see which backend they run on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data.load import InputError, TableSource, find_damaged, register_raw_view

if TYPE_CHECKING:
    from pinsights.engine.spark import SparkSettings


class BackendError(Exception):
    """The engine cannot run here or failed on the input; the message says what to do."""


class Backend(Protocol):
    name: str

    def raw_table(self, source: TableSource) -> ir.Table: ...

    def materialize(self, name: str, expr: ir.Table) -> ir.Table: ...

    def to_arrow(self, expr: ir.Expr) -> pa.Table: ...

    def scalar(self, expr: ir.Scalar) -> object: ...

    def export_quarantine(self, expr: ir.Table, path: Path) -> None: ...

    def damaged_file(self, sources: list[TableSource], error: Exception) -> InputError | None:
        """When ``error`` comes from an input file that cannot be read, an error naming it."""
        ...

    def close(self) -> None: ...


class DuckDBBackend:
    """In-process DuckDB: the default engine, one machine, spills to disk when memory runs short."""

    name = "duckdb"

    def __init__(
        self,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: Path | None = None,
    ) -> None:
        self.ibis = ibis.duckdb.connect()
        self.con: duckdb.DuckDBPyConnection = self.ibis.con
        # Instants are compared as naive UTC timestamps; the session time zone makes casts agree.
        self.con.execute("SET TimeZone = 'UTC'")
        # Order of intermediate rows carries no meaning here; not preserving it is faster.
        self.con.execute("SET preserve_insertion_order = false")
        # Progress is the build's to show (on stderr, on a terminal), not DuckDB's.
        self.con.execute("SET enable_progress_bar = false")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            try:
                self.con.execute(f"SET memory_limit = '{_memory_text(memory_limit)}'")
            except duckdb.Error as error:
                raise ValueError(f"memory limit {memory_limit!r}: {error}") from error
        if temp_directory is not None:
            # Where DuckDB spills what does not fit under the memory limit: inside the store, on
            # the disk the user chose for pinsights, not in the working directory.
            self.con.execute(f"SET temp_directory = '{_sql_text(str(temp_directory))}'")
        # The counts group by small integer keys (account, audience, interest or demographic
        # value) whose ranges DuckDB knows from statistics: with up to 2^24 slots (DuckDB's
        # default stops at 2^12) it counts them in a perfect hash table, twice as fast as a
        # general one at 20M events; a wider key falls back to the general table.
        self.con.execute("SET perfect_ht_threshold = 24")

    def raw_table(self, source: TableSource) -> ir.Table:
        register_raw_view(self.con, source)
        return self.ibis.table(source.view)

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        # Plain SQL rather than Ibis' create_table: its overwrite path emits a DROP that this
        # DuckDB version rejects, and a temp table is all we need.
        sql = self.ibis.compile(expr)
        self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {sql}')
        return self.ibis.table(name)

    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        # Straight from DuckDB's result to Arrow: Ibis' own to_pyarrow adds a schema round trip.
        return self.con.sql(self.ibis.compile(expr)).to_arrow_table()

    def scalar(self, expr: ir.Scalar) -> object:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses the next query.
        rows = self.con.execute(self.ibis.compile(expr)).fetchall()
        return rows[0][0] if rows else None

    def export_quarantine(self, expr: ir.Table, path: Path) -> None:
        """Write the quarantined rows to a new DuckDB file at ``path`` (the store publishes it)."""
        sql = self.ibis.compile(expr)
        escaped = str(path).replace("'", "''")
        self.con.execute(f"ATTACH '{escaped}' AS quarantine_out")
        try:
            self.con.execute(f"CREATE TABLE quarantine_out.quarantine AS {sql}")
        finally:
            self.con.execute("DETACH quarantine_out")

    def damaged_file(self, sources: list[TableSource], error: Exception) -> InputError | None:
        if not isinstance(error, duckdb.Error):
            return None
        return find_damaged(self.con, sources)

    def close(self) -> None:
        self.ibis.disconnect()


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _memory_text(limit: str) -> str:
    """A memory limit as DuckDB reads it; a bare number is bytes."""
    text = limit.strip()
    return f"{text}B" if text.isdigit() else _sql_text(text)


def default_memory_limit() -> str:
    """Half of the machine's physical memory (DuckDB's own default is 80 %).

    DuckDB's limit covers its buffers only: the documents assembled in Python, Arrow results and
    the interpreter come on top, and a build usually shares its machine. Beyond the limit DuckDB
    spills to the store's temporary directory instead of failing.
    """
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{max(pages // 2 // 2**20, 256)}MiB"


def make_backend(
    name: str,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: Path | None = None,
    spark: SparkSettings | None = None,
) -> Backend:
    """The named backend; ``PINSIGHTS_THREADS`` and ``PINSIGHTS_MEMORY_LIMIT`` tune DuckDB when
    no explicit value is given; ``spark`` says where Spark runs (see :mod:`pinsights.engine.spark`,
    imported only for it)."""
    if name == "duckdb":
        env_threads = os.environ.get("PINSIGHTS_THREADS")
        return DuckDBBackend(
            threads=threads if threads is not None else (int(env_threads) if env_threads else None),
            memory_limit=memory_limit
            or os.environ.get("PINSIGHTS_MEMORY_LIMIT")
            or default_memory_limit(),
            temp_directory=temp_directory,
        )
    if name == "spark":
        from pinsights.engine.spark import SparkBackend, SparkSettings

        return SparkBackend.start(spark or SparkSettings())
    raise ValueError(f"unknown engine {name!r}: this build knows 'duckdb' and 'spark'")
