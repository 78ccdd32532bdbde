"""Execution backends: where the portable Ibis definition runs.

A backend knows how to expose input files as raw tables, materialise intermediate results and hand
results back as Arrow. The semantics (``engine/semantics.py``) and the rules
(``data/validate.py``) never see which backend they run on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data.load import (
    DataPath,
    InputError,
    TableSource,
    discover,
    find_damaged,
    register_raw_view,
)

if TYPE_CHECKING:
    from pinsights.engine.spark import SparkSettings


class BackendError(Exception):
    """The engine cannot run here or failed on the input; the message says what to do."""


class Backend(Protocol):
    name: str

    def discover(self, data_dir: DataPath) -> dict[str, TableSource]:
        """The dataset's tables (SPEC §2), listed with the file system the engine reads."""
        ...

    def raw_table(self, source: TableSource) -> ir.Table: ...

    def materialize(self, name: str, expr: ir.Table) -> ir.Table: ...

    def materialize_all(self, exprs: Mapping[str, ir.Table]) -> dict[str, ir.Table]:
        """Materialise independent results, at the same time where the engine can."""
        ...

    def release(self, *names: str) -> None:
        """Forget materialised results no later step reads, so their memory serves the next."""
        ...

    def to_arrow(self, expr: ir.Expr) -> pa.Table: ...

    def scalar(self, expr: ir.Scalar) -> object: ...

    def rows(self, table: ir.Table) -> int:
        """How many rows ``table`` has (known without a query for a result just materialised,
        where the engine counted it while keeping it)."""
        ...

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
                # DuckDB reads the limit first: it knows every unit a user may write, and says so.
                self.con.execute(f"SET memory_limit = '{_memory_text(memory_limit)}'")
            except duckdb.Error as error:
                raise ValueError(f"memory limit {memory_limit!r}: {error}") from error
            # The limit bounds the whole process: DuckDB's buffers get what the rest leaves.
            limit = self._limit_bytes(memory_limit)
            if limit < MIN_MEMORY_LIMIT:
                raise ValueError(
                    f"memory limit {memory_limit!r} is too small: a build needs at least"
                    f" {MIN_MEMORY_LIMIT // 10**6}MB (DuckDB's buffers get half of it);"
                    " raise --memory-limit"
                )
            pool = buffer_pool_bytes(limit)
            self.con.execute(f"SET memory_limit = '{pool}B'")
        if temp_directory is not None:
            # Where DuckDB spills what does not fit under the memory limit: inside the store, on
            # the disk the user chose for pinsights, not in the working directory.
            self.con.execute(f"SET temp_directory = '{_sql_text(str(temp_directory))}'")
        # The counts group by small integer keys (account, audience, interest or demographic
        # value) whose ranges DuckDB knows from statistics: with up to 2^24 slots (DuckDB's
        # default stops at 2^12) it counts them in a perfect hash table, twice as fast as a
        # general one at 20M events; a wider key falls back to the general table.
        self.con.execute("SET perfect_ht_threshold = 24")

    def _limit_bytes(self, limit: str) -> int:
        """The limit DuckDB just accepted, in bytes (DuckDB shows it rounded: parsed here)."""
        parsed = memory_bytes(limit)
        if parsed is not None:
            return parsed
        shown = str(self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return memory_bytes(shown.replace(" ", "")) or 0

    def discover(self, data_dir: DataPath) -> dict[str, TableSource]:
        """Local (or mounted) paths only: a URL is refused, saying to use Spark."""
        return discover(data_dir)

    def raw_table(self, source: TableSource) -> ir.Table:
        register_raw_view(self.con, source)
        return self.ibis.table(source.view)

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        return self.materialize_all({name: expr})[name]

    def materialize_all(self, exprs: Mapping[str, ir.Table]) -> dict[str, ir.Table]:
        """Several independent results at once, each query on its own cursor and thread.

        A query that cannot use both cores by itself (a Parquet file of one row group is read by
        one thread; the users of a 20M-event platform are) then runs beside another. Results
        are tables of the in-memory database, not temp tables: those only their own cursor sees.
        """
        # Plain SQL rather than Ibis' create_table: its overwrite path emits a DROP that this
        # DuckDB version rejects.
        statements = [
            f'CREATE OR REPLACE TABLE "{name}" AS {self.ibis.compile(expr)}'
            for name, expr in exprs.items()
        ]
        if len(statements) == 1:
            self.con.execute(statements[0])
        else:
            with ThreadPoolExecutor(max_workers=len(statements)) as pool:
                cursors = [self.con.cursor() for _ in statements]
                try:
                    running = [
                        pool.submit(cursor.execute, sql)
                        for cursor, sql in zip(cursors, statements, strict=True)
                    ]
                    for future in running:
                        future.result()  # the first failure is raised, after all have ended
                finally:
                    for cursor in cursors:
                        cursor.close()
        return {name: self.ibis.table(name) for name in exprs}

    def release(self, *names: str) -> None:
        for name in names:
            self.con.execute(f'DROP TABLE IF EXISTS "{name}"')

    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        # Straight from DuckDB's result to Arrow: Ibis' own to_pyarrow adds a schema round trip.
        return self.con.sql(self.ibis.compile(expr)).to_arrow_table()

    def scalar(self, expr: ir.Scalar) -> object:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses the next query.
        rows = self.con.execute(self.ibis.compile(expr)).fetchall()
        return rows[0][0] if rows else None

    def rows(self, table: ir.Table) -> int:
        rows = self.scalar(table.count())
        return rows if isinstance(rows, int) else 0

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
        if not isinstance(error, duckdb.Error) or out_of_memory(error):
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


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_memory_limit() -> str:
    """Half of the machine's physical memory (DuckDB's own default is 80 %): a build usually
    shares its machine (a server, other jobs). Beyond the limit DuckDB spills to the store's
    temporary directory instead of failing."""
    return f"{max(physical_memory_bytes() // 2 // 2**20, 256)}MiB"


#: Units of a memory limit as DuckDB reads them (KB is 1000 bytes, KiB 1024), lower-cased.
_UNITS = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "k": 10**3, "kb": 10**3, "kilobyte": 10**3, "kilobytes": 10**3, "kib": 2**10,
    "m": 10**6, "mb": 10**6, "megabyte": 10**6, "megabytes": 10**6, "mib": 2**20,
    "g": 10**9, "gb": 10**9, "gigabyte": 10**9, "gigabytes": 10**9, "gib": 2**30,
    "t": 10**12, "tb": 10**12, "terabyte": 10**12, "terabytes": 10**12, "tib": 2**40,
}  # fmt: skip


def memory_bytes(limit: str) -> int | None:
    """``8GB``, ``7.5 GiB``, ``50%`` (of the machine's memory) or a bare number of bytes, in
    bytes; None for a form this does not know."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z%]*)\s*", limit)
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        return int(physical_memory_bytes() * number / 100)
    return int(number * _UNITS[unit]) if unit in _UNITS else None


#: Share of ``--memory-limit`` left to everything outside DuckDB's buffers, and its bounds.
OUTSIDE_SHARE = 0.10
OUTSIDE_MIN = 256 * 2**20
OUTSIDE_MAX = 2**30


#: The smallest ``--memory-limit`` a build accepts: DuckDB's buffers get half of it, 32 MB,
#: which builds a million events (spilling); under 16 MB DuckDB fails on a few thousand. The
#: interpreter alone takes some 200 MiB, so a limit this small cannot be kept anyway.
MIN_MEMORY_LIMIT = 64 * 10**6


def memory_limit_in_effect(memory_limit: str | None) -> str:
    """The limit a DuckDB build runs under: the option, else PINSIGHTS_MEMORY_LIMIT, else half
    of the machine."""
    return memory_limit or os.environ.get("PINSIGHTS_MEMORY_LIMIT") or default_memory_limit()


def out_of_memory(error: BaseException) -> bool:
    """Whether DuckDB ran out of memory at the root of ``error`` (it may come wrapped)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, duckdb.OutOfMemoryException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def buffer_pool_bytes(limit: int) -> int:
    """DuckDB's share of a memory limit meant for the whole build process.

    DuckDB's own limit covers its buffers only; the interpreter and its libraries, Arrow results,
    the documents assembled in Python and the snapshot being written come on top (some 300-500
    MiB at 20M events, about as much at 100M: they grow with accounts and interests, not events).
    So DuckDB gets the limit less a tenth of it, that tenth kept between 256 MiB and 1 GiB and at
    most half of the limit: with ``--memory-limit 8GB`` DuckDB's buffers get 7.2 GB.
    """
    outside = min(max(int(limit * OUTSIDE_SHARE), OUTSIDE_MIN), OUTSIDE_MAX, limit // 2)
    return limit - outside


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
    imported only for it), and a memory limit given either way sizes its driver's heap."""
    if name == "duckdb":
        env_threads = os.environ.get("PINSIGHTS_THREADS")
        return DuckDBBackend(
            threads=threads if threads is not None else (int(env_threads) if env_threads else None),
            memory_limit=memory_limit_in_effect(memory_limit),
            temp_directory=temp_directory,
        )
    if name == "spark":
        from pinsights.engine.spark import SparkBackend, SparkSettings

        given = memory_limit or os.environ.get("PINSIGHTS_MEMORY_LIMIT")
        return SparkBackend.start(spark or SparkSettings(), memory_limit=given)
    raise ValueError(f"unknown engine {name!r}: this build knows 'duckdb' and 'spark'")
