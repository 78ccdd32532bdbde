"""The Spark engine's backend: the same Ibis definition run by Ibis' PySpark backend (SPEC §4).

Nothing here knows the semantics or the input rules; it only knows Spark: how files become raw
tables (:mod:`pinsights.engine.spark.reader`), how intermediate results are kept (checkpointed and
counted, the analogue of DuckDB's tables) and how results come back to the driver (as Arrow). The
session itself is started by :mod:`pinsights.engine.spark.session`.

The documents and the store are written by the same code as for DuckDB, on the driver's machine:
only counts, never rows of events, travel back from the executors.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from pinsights.data.sources import (
    WHAT_TO_DO,
    DataPath,
    TableSource,
    UrlPath,
    discover,
    input_bytes,
)
from pinsights.engine.backend import BackendError
from pinsights.engine.compiled import sql_of
from pinsights.engine.spark.class_archive import ClassArchive, class_archive
from pinsights.engine.spark.session import (
    HADOOP,
    MASTER_ENV,
    REQUIRED,
    SparkOutOfMemory,
    SparkSettings,
    check_java,
    driver_memory,
    error_causes,
    first_cause,
    import_pyspark,
    start_session,
    stop_session,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


BROADCAST_ROWS = 1_000_000
#: The size of a row group of the Parquet files Spark writes (its writer's
#: ``parquet.block.size``, Spark's default 128 MiB): Spark reads a file's row groups as
#: separate tasks, and one row group is one task however large the file. The state's window
#: files, written as one file each (2.5M facts of 10M events: 19 MB), were each read by one
#: task on one core by the next build (see :meth:`SparkBackend._write`).
ROW_GROUP_BYTES = 2 * 2**20


#: Where ``--spark-master`` comes from when it is not given.
class SparkBackend:
    """Runs the portable expressions on Spark through Ibis' PySpark backend.

    ``owns_session`` is False when the session was started by someone else (a test's shared
    session): then closing the backend drops what it cached and leaves the session running.
    """

    name = "spark"
    #: Catalyst turns an IN list of more than 10 constants into a hash set (``InSet``).
    hashes_value_lists = True

    def __init__(
        self,
        session: SparkSession,
        *,
        owns_session: bool,
        log_path: Path | None = None,
        classes: ClassArchive | None = None,
    ) -> None:
        self.session = session
        self.owns_session = owns_session
        self.log_path = log_path
        self.classes = classes  # the JVM's class archive (recorded as the JVM exits)
        self.ibis = ibis.pyspark.connect(session)
        for key, value in REQUIRED.items():
            session.conf.set(key, value)
        if session.sparkContext._jsc is not None:
            hadoop = session.sparkContext._jsc.hadoopConfiguration()
            for key, value in HADOOP.items():
                hadoop.set(key, value)
        self._views: set[str] = set()
        self._rows: dict[str, int] = {}  # rows of each materialised view
        self._stored: dict[str, Any] = {}  # its checkpointed RDD (a JVM object)
        self._log_cited = False  # an error message pointed the user at the log: keep it
        #: What to raise when a JVM runs out of memory (see :func:`memory_advice`).
        self.memory_advice = memory_advice(None, None, {})

    @classmethod
    def start(
        cls,
        settings: SparkSettings,
        *,
        memory_limit: str | None = None,
        data_dir: DataPath | None = None,
    ) -> SparkBackend:
        """A backend on the active session if there is one (tests share one), else a new one.

        ``memory_limit`` (the user's ``--memory-limit`` or PINSIGHTS_MEMORY_LIMIT, None when not
        given) sizes the driver's heap of a session started here; the size of the input in
        ``data_dir`` chooses its JIT (:func:`~.session.jit_options`), measured only then: a
        session that is already running has its JIT.
        """
        import_pyspark()
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None and settings.master is None and not settings.conf:
            return cls(active, owns_session=False)
        submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # started by spark-submit
        if submitted and settings.master is None and not os.environ.get(MASTER_ENV):
            # Under spark-submit: its JVM, master and settings are the ones to use.
            builder = SparkSession.builder
            for key, value in settings.conf:
                builder = builder.config(key, value)
            return cls(builder.getOrCreate(), owns_session=True)
        master = settings.resolved_master()
        classes = class_archive(check_java()) if master.startswith("local") else None
        session, log_path = start_session(
            settings,
            memory_limit,
            classes=classes,
            input_bytes=None if data_dir is None else input_bytes(data_dir),
        )
        backend = cls(session, owns_session=True, log_path=log_path, classes=classes)
        backend.memory_advice = memory_advice(master, memory_limit, dict(settings.conf))
        return backend

    # -- Backend interface ----------------------------------------------------------------

    def discover(self, data_dir: DataPath) -> dict[str, TableSource]:
        """A local path is listed as on DuckDB; a URL through Hadoop's FileSystem API in the
        driver's JVM, so any file system the session knows (HDFS, S3, viewfs…) holds a dataset."""
        if not isinstance(data_dir, UrlPath):
            return discover(data_dir)
        from pinsights.engine.spark.reader import HadoopTree

        return discover(data_dir, HadoopTree(self.session))

    def raw_table(self, source: TableSource) -> ir.Table:
        from pinsights.engine.spark.reader import read_source

        # Spark's reader types files by those it reads; the refresh asks only DuckDB to type
        # some files by all of them (engine/duckdb/raw_columns.py, read_alike).
        assert not source.typed_by, "Spark reads files typed by themselves only"
        with self._spark_errors():
            frame = read_source(self.session, source)
            frame.createOrReplaceTempView(source.view)
        return self.ibis.table(source.view)

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        """Compute ``expr`` once and keep it under a temp view, as DuckDB keeps a temp table.

        A local checkpoint (kept by the executors, memory then disk) cuts the lineage: a later
        step's plan starts from the stored rows instead of repeating every step before it, which
        keeps plans, and their planning time, small. One job computes, keeps and counts the rows:
        the checkpoint is lazy and its rows are counted as an RDD (a DataFrame's ``count`` would
        be a second query with a shuffle of its own); the count is remembered for :meth:`rows`.
        Spark knows nothing of the size of stored rows, so it would shuffle both sides of every
        join with them; a result of at most :data:`BROADCAST_ROWS` rows (a checked table of
        accounts, users or pins, keys, levels) is marked to be broadcast instead, as Spark does
        for small files.
        """
        return self._keep(name, sql_of(self.ibis, expr))

    def _keep(self, name: str, sql: str) -> ir.Table:
        with self._spark_errors():
            frame = self.session.sql(sql).localCheckpoint(eager=False)
            rows = int(frame._jdf.queryExecution().toRdd().count())
            replaced = self._stored.pop(name, None)
            self._stored[name] = frame._jdf.logicalPlan().rdd()  # the rows kept, to free later
            if rows <= BROADCAST_ROWS:
                frame = frame.hint("broadcast")
            frame.createOrReplaceTempView(name)
            self._views.add(name)
            self._rows[name] = rows
            if replaced is not None:
                replaced.unpersist(False)
        return self.ibis.table(name)

    def materialize_all(self, exprs: Mapping[str, ir.Table]) -> dict[str, ir.Table]:
        """Independent results as concurrent jobs, one driver thread each.

        Spark's scheduler runs their tasks side by side: a table read as one task (a Parquet
        file of one row group: the users) keeps one core busy while the other works on the
        pins, and one query's planning overlaps another's tasks.
        """
        if len(exprs) == 1:
            return {name: self.materialize(name, expr) for name, expr in exprs.items()}
        statements = {name: sql_of(self.ibis, expr) for name, expr in exprs.items()}
        with ThreadPoolExecutor(max_workers=len(statements)) as pool:
            running = {name: pool.submit(self._keep, name, sql) for name, sql in statements.items()}
            return {name: future.result() for name, future in running.items()}

    def release(self, *names: str) -> None:
        """Drop the views and the rows the executors keep for them (memory the collector
        would otherwise walk through for the rest of the build)."""
        for name in names:
            if name in self._views:
                self.session.catalog.dropTempView(name)
                self._views.discard(name)
            stored = self._stored.pop(name, None)
            if stored is not None:
                stored.unpersist(False)

    def rows(self, table: ir.Table) -> int:
        name = table.get_name() if isinstance(table.op(), ops.DatabaseTable) else None
        if name in self._rows:
            return self._rows[name]
        counted = self.scalar(table.count())
        return counted if isinstance(counted, int) else 0

    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        with self._spark_errors():
            return _collect_arrow(self.session.sql(sql_of(self.ibis, expr)))

    def scalar(self, expr: ir.Scalar) -> object:
        with self._spark_errors():
            rows = self.session.sql(sql_of(self.ibis, expr)).collect()
        return rows[0][0] if rows else None

    def write_parquet(self, expr: ir.Table, path: Path) -> None:
        """One task writes the rows (``coalesce(1)``) into a directory beside ``path``; its one
        part file becomes ``path``. Timestamps as UTC microseconds (Spark's default, INT96, is
        read by DuckDB as a timestamp without time zone)."""
        staging = path.with_name(f".{path.name}.spark")
        parts = self._write(expr, staging, one=True)
        if len(parts) != 1:
            raise BackendError(f"Spark wrote {len(parts)} files for {path.name}, not one")
        os.replace(parts[0], path)
        shutil.rmtree(staging, ignore_errors=True)

    def write_parquet_parts(self, expr: ir.Table, stem: Path) -> list[Path]:
        """Every task writes its own part file (the query before the write stays parallel);
        the part files become ``<stem>-<k>.parquet`` in Spark's order (none written: one)."""
        staging = stem.with_name(f".{stem.name}.spark")
        parts = self._write(expr, staging, one=False) or self._write(expr, staging, one=True)
        placed = []
        for k, part in enumerate(parts):
            placed.append(stem.with_name(f"{stem.name}-{k}.parquet"))
            os.replace(part, placed[-1])
        shutil.rmtree(staging, ignore_errors=True)
        return placed

    def _write(self, expr: ir.Table, staging: Path, *, one: bool) -> list[Path]:
        with self._spark_errors():
            frame = self.session.sql(sql_of(self.ibis, expr))
            writer = (frame.coalesce(1) if one else frame).write.mode("overwrite")
            writer = writer.option("parquet.block.size", str(ROW_GROUP_BYTES))
            previous = self.session.conf.get("spark.sql.parquet.outputTimestampType", None)
            self.session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            try:
                writer.parquet(staging.resolve().as_uri())
            finally:
                if previous is None:
                    self.session.conf.unset("spark.sql.parquet.outputTimestampType")
                else:
                    self.session.conf.set("spark.sql.parquet.outputTimestampType", previous)
        return sorted(staging.glob("part-*.parquet"))

    def read_parquet(self, name: str, paths: Sequence[Path]) -> ir.Table:
        """Files of one schema (the state's), which is read from the first file's footer here:
        given to Spark, it reads no footer itself (its schema inference is a job of its own)."""
        try:
            schema = spark_schema(pq.read_schema(paths[0])) if paths else None
        except (OSError, pa.ArrowException):  # unreadable: Spark says so, as without the schema
            schema = None
        with self._spark_errors():
            reader = self.session.read if schema is None else self.session.read.schema(schema)
            frame = reader.parquet(*(path.resolve().as_uri() for path in paths))
            frame.createOrReplaceTempView(name)
        self._views.add(name)
        return self.ibis.table(name)

    def close(self) -> None:
        """Drop what was kept; stop a session this backend started, and remove its log unless an
        error message cited it (a build that ran leaves no file behind in the temp directory)."""
        self.release(*{*self._views, *self._stored})
        self._rows.clear()
        if self.owns_session:
            stop_session(self.session, self.classes)
            if self.log_path is not None and not self._log_cited:
                self.log_path.unlink(missing_ok=True)

    # -- errors ---------------------------------------------------------------------------

    @contextmanager
    def _spark_errors(self) -> Iterator[None]:
        """Spark's failures as the build's errors: an unreadable file names the file."""
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            yield
        # Py4JError: a JVM call failed (Py4JJavaError), or the JVM is gone.
        except (PySparkException, Py4JError) as error:
            oom = out_of_memory_reason(str(error)) or out_of_memory_reason(self._log_tail())
            if oom is not None:
                raise SparkOutOfMemory(
                    f"Spark ran out of memory ({oom}){self.memory_advice}"
                ) from error
            self._log_cited = self.log_path is not None
            raise BackendError(describe_failure(error, self.log_path)) from error

    def _log_tail(self) -> str:
        """The end of the JVM's log: where a JVM that died of an OutOfMemoryError said so."""
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 65536))
                return log.read().decode(errors="replace")
        except OSError:
            return ""


#: Spark's names of the Arrow types a state file holds (spark_schema).
_SPARK_TYPES = {
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.string(): "STRING",
    pa.large_string(): "STRING",
    pa.date32(): "DATE",
}


def spark_schema(schema: pa.Schema) -> str | None:
    """The Spark schema (DDL) Spark infers from a Parquet file of this Arrow ``schema``; None
    for a type not named here (Spark then infers it). An instant (a timestamp adjusted to UTC,
    which Arrow reads with a time zone) is Spark's TIMESTAMP."""
    fields = []
    for field in schema:
        kind = field.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            name = "TIMESTAMP"
        elif pa.types.is_decimal(kind):
            name = f"DECIMAL({kind.precision},{kind.scale})"
        elif kind in _SPARK_TYPES:
            name = _SPARK_TYPES[kind]
        else:
            return None
        fields.append(f"`{field.name.replace('`', '``')}` {name}")
    return ", ".join(fields)


_OUT_OF_MEMORY = re.compile(
    r"(?:java\.lang\.|org\.apache\.spark\.memory\.Spark)OutOfMemoryError(?:: ([^\n(]+))?"
)


def out_of_memory_reason(text: str) -> str | None:
    """The reason of the first OutOfMemoryError in a JVM's error text (``Java heap space``;
    Spark's own when a task cannot get execution memory), None when there is none."""
    found = _OUT_OF_MEMORY.search(text)
    if found is None:
        return None
    return (found.group(1) or "").strip() or "OutOfMemoryError"


def memory_advice(master: str | None, memory_limit: str | None, conf: Mapping[str, str]) -> str:
    """What follows "Spark ran out of memory (reason)" in the build's error: which JVM, and the
    setting that gives it more.

    A local master's driver runs the tasks too: its heap comes from the memory limit unless the
    user set ``spark.driver.memory``. On a cluster the tasks run in the executors.
    """
    if master is None:  # a session started elsewhere (spark-submit, a test's shared session)
        return (
            ": give its JVMs more memory where the session was started (spark.driver.memory,"
            " which in local mode runs the tasks too, or spark.executor.memory)"
        )
    if "spark.driver.memory" in conf:
        driver = f"--spark-conf spark.driver.memory (now {conf['spark.driver.memory']})"
    else:
        heap = driver_memory(master, memory_limit, conf).get("spark.driver.memory", "Spark's 1g")
        limit = memory_limit or "the default, half the machine's memory"
        driver = (
            f"--memory-limit (or PINSIGHTS_MEMORY_LIMIT; now {limit}), from which its heap"
            f" ({heap}) is derived, or set --spark-conf spark.driver.memory"
        )
    if master.startswith("local"):
        return f" in the driver's JVM, which runs the tasks in local mode: raise {driver}"
    return (
        ": the tasks run in the executors, whose heap is spark.executor.memory: raise it with"
        f" --spark-conf; if the driver ran out (collecting results), raise {driver}"
    )


def describe_failure(error: BaseException, log_path: Path | None) -> str:
    """One paragraph a person can act on, from a Spark exception (whose text is a JVM trace)."""
    text = str(error)
    unreadable = re.search(r"Encountered error while reading file (\S+?)\.?\s", text)
    where = f" (Spark's log: {log_path})" if log_path else ""
    if unreadable:
        path = re.sub(r"^file:(//)?", "", unreadable.group(1))
        causes = error_causes(text)
        reason = causes[-1] if causes else "unreadable"
        return f"cannot read {path}: {reason}. The file is damaged or truncated: {WHAT_TO_DO}."
    return f"Spark failed: {first_cause(text)}{where}"


def _collect_arrow(frame: DataFrame) -> pa.Table:
    """The rows of ``frame`` as one Arrow table on the driver, straight from Spark's Arrow
    batches (no pandas in between)."""
    return frame.toArrow()
