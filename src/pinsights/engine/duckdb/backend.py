"""In-process DuckDB: the default engine. Its backend runs the portable expressions and keeps
intermediate results as tables of an in-memory database, spilling to the store's disk beyond the
memory limit; its reader (:mod:`pinsights.engine.duckdb.reader`) turns files into raw views.

DuckDB's errors are the backend's to explain (:class:`~pinsights.engine.backend.BackendError`),
as the Spark engine explains Spark's: the build never sees a ``duckdb.Error`` it could explain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data.sources import DataPath, TableSource, discover
from pinsights.engine.backend import BackendError
from pinsights.engine.compiled import sql_of
from pinsights.engine.duckdb.reader import find_damaged, register_raw_view
from pinsights.engine.memory import MIN_MEMORY_LIMIT, TOO_SMALL, buffer_pool_bytes, memory_bytes

#: How DuckDB writes a refresh state's Parquet files: version 2 encodings (delta-packed
#: integers): at 2M events writing a segment took 0.39 CPU s against 0.49 and 21 MiB against 25
#: with the default.
PARQUET_OPTIONS = "FORMAT parquet, PARQUET_VERSION v2"
#: How it writes a refresh state's segment (:meth:`DuckDBBackend.write_parquet_parts`): without
#: dictionaries. Its user and pin ids are nearly all distinct within a row group, so the writer
#: built a dictionary for each and gave it up; its small keys are as small delta-packed. At 20M
#: events writing a segment took 1.82-1.89 CPU s against 2.32-2.45 (0.8 % larger), and the
#: facts' and pairs' aggregates read it back in no more time (BENCHMARKS.md, "Tenth round").
SEGMENT_OPTIONS = f"{PARQUET_OPTIONS}, DICTIONARY_SIZE_LIMIT 1"


class DuckDBBackend:
    """In-process DuckDB: the default engine, one machine, spills to disk when memory runs short."""

    name = "duckdb"
    hashes_value_lists = False  # a long IN list is a chain of comparisons

    def __init__(
        self,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: Path | None = None,
    ) -> None:
        self.memory_limit = memory_limit
        self._sources: list[TableSource] = []  # every table read, to name a damaged file
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
                raise ValueError(f"memory limit {memory_limit!r} {TOO_SMALL}; raise --memory-limit")
            pool = buffer_pool_bytes(limit)
            self.con.execute(f"SET memory_limit = '{pool}B'")
        if temp_directory is not None:
            # Where DuckDB spills what does not fit under the memory limit: inside the store, on
            # the disk the user chose for pinsights, not in the working directory.
            self.con.execute(f"SET temp_directory = '{_sql_text(str(temp_directory))}'")
        # The counts group by small integer keys (account, audience, interest or demographic
        # value) whose ranges DuckDB knows from statistics: with up to 2^24 slots (DuckDB's
        # default stops at 2^12) it counts them in a perfect hash table, much faster than a
        # general one; a wider key falls back to the general table.
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
        with self._errors(name_files=False):
            register_raw_view(self.con, source)
        self._sources.append(source)
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
            f'CREATE OR REPLACE TABLE "{name}" AS {sql_of(self.ibis, expr)}'
            for name, expr in exprs.items()
        ]
        with self._errors():
            self._execute_all(statements)
        return {name: self.ibis.table(name) for name in exprs}

    def _execute_all(self, statements: list[str]) -> None:
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

    def execute(self, sql: str) -> None:
        """A statement of the DuckDB-only parts (the refresh state's ``COPY``), its failures
        explained as the portable statements' are (running out of memory, a damaged file)."""
        with self._errors():
            self.con.execute(sql)

    def write_parquet(self, expr: ir.Table, path: Path, options: str = PARQUET_OPTIONS) -> None:
        """One ``COPY`` (:data:`PARQUET_OPTIONS`)."""
        self.execute(f"COPY ({sql_of(self.ibis, expr)}) TO '{_sql_text(str(path))}' ({options})")

    def write_parquet_parts(self, expr: ir.Table, stem: Path) -> list[Path]:
        """One file, by one ``COPY`` (DuckDB's writer is parallel within it): a segment of the
        refresh state, written without dictionaries (:data:`SEGMENT_OPTIONS`)."""
        path = stem.with_name(f"{stem.name}-0.parquet")
        self.write_parquet(expr, path, SEGMENT_OPTIONS)
        return [path]

    def read_parquet(self, name: str, paths: Sequence[Path]) -> ir.Table:
        listed = ", ".join(f"'{_sql_text(str(path))}'" for path in paths)
        self.execute(
            f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM'
            f" read_parquet([{listed}], hive_partitioning=false)"
        )
        return self.ibis.table(name)

    def release(self, *names: str) -> None:
        """Drop tables (or views: the refresh's checked events are one over the state)."""
        for name in names:
            views = self.con.execute(
                "SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]
            ).fetchall()
            kind = "VIEW" if views[0][0] else "TABLE"
            self.con.execute(f'DROP {kind} IF EXISTS "{name}"')

    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        # Straight from DuckDB's result to Arrow: Ibis' own to_pyarrow adds a schema round trip.
        with self._errors():
            return self.con.sql(sql_of(self.ibis, expr)).to_arrow_table()

    def scalar(self, expr: ir.Scalar) -> object:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses the next query.
        with self._errors():
            rows = self.con.execute(sql_of(self.ibis, expr)).fetchall()
        return rows[0][0] if rows else None

    def rows(self, table: ir.Table) -> int:
        rows = self.scalar(table.count())
        return rows if isinstance(rows, int) else 0

    def close(self) -> None:
        self.ibis.disconnect()

    @contextmanager
    def _errors(self, *, name_files: bool = True) -> Iterator[None]:
        """DuckDB's failures as the build's: running out of memory says which limit to raise;
        an error while reading input names the damaged file (with ``name_files``; the reader
        names what it finds unreadable itself). Any other error is not the input's fault, and
        goes on as it is."""
        try:
            yield
        except Exception as error:
            if out_of_memory(error):
                raise BackendError(
                    f"DuckDB ran out of memory under the memory limit {self.memory_limit}: raise"
                    " --memory-limit (or PINSIGHTS_MEMORY_LIMIT), or lower PINSIGHTS_THREADS (each"
                    " thread needs its own buffers)"
                ) from error
            if not name_files or not isinstance(error, duckdb.Error):
                raise
            damaged = find_damaged(self.con, self._sources)
            if damaged is None:
                raise
            raise BackendError(str(damaged)) from error


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _memory_text(limit: str) -> str:
    """A memory limit as DuckDB reads it; a bare number is bytes."""
    text = limit.strip()
    return f"{text}B" if text.isdigit() else _sql_text(text)


def out_of_memory(error: BaseException) -> bool:
    """Whether DuckDB ran out of memory at the root of ``error`` (it may come wrapped)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, duckdb.OutOfMemoryException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
