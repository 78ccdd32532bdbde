"""The Spark engine: the same Ibis definition run by Ibis' PySpark backend (SPEC §4).

Nothing here knows the semantics or the input rules; it only knows Spark: how to start a session
that stays quiet and local to loopback unless told otherwise, how files become raw tables
(:mod:`pinsights.data.load_spark`), how intermediate results are kept (cached and counted, the
analogue of DuckDB's temporary tables) and how results come back to the driver (as Arrow).

The documents and the store are written by the same code as for DuckDB, on the driver's machine:
only counts, never rows of events, travel back from the executors.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data.load import WHAT_TO_DO, DataPath, InputError, TableSource, UrlPath, discover
from pinsights.data.load_spark import ZSTD_CODEC
from pinsights.engine.backends import (
    OUTSIDE_MIN,
    BackendError,
    buffer_pool_bytes,
    default_memory_limit,
    memory_bytes,
)
from pinsights.engine.class_archive import ClassArchive, class_archive

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Intermediate results up to this many rows are broadcast to joins (see materialize).
BROADCAST_ROWS = 1_000_000
#: Where ``--spark-master`` comes from when it is not given.
MASTER_ENV = "PINSIGHTS_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"
#: The local JVM's options (the collector; the class archive is added to them).
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: The JIT's C2 thresholds, three times the JVM's defaults (local masters).
C2_LATER = (
    "-XX:Tier4InvocationThreshold=15000 -XX:Tier4MinInvocationThreshold=1800"
    " -XX:Tier4CompileThreshold=45000 -XX:Tier4BackEdgeThreshold=120000"
)
#: Spark 4.0 runs on Java 17 and 21.
MIN_JAVA = 17

INSTALL_JAVA = (
    "install a Java 17 runtime (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless;"
    " elsewhere any JDK 17 or 21) or point JAVA_HOME at one"
)


class SparkUnavailable(BackendError):
    """Spark cannot start here (no pyspark, no Java); the message says what to install."""


class SparkOutOfMemory(BackendError):
    """A JVM of the build ran out of memory; the message says which setting to raise."""


@dataclass(frozen=True)
class SparkSettings:
    """How to reach Spark: the master URL and ``--spark-conf`` pairs, and whether to show its logs."""

    master: str | None = None
    conf: tuple[tuple[str, str], ...] = ()
    verbose: bool = False

    def resolved_master(self) -> str:
        return self.master or os.environ.get(MASTER_ENV) or DEFAULT_MASTER


def parse_conf(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` strings as pairs; a string without ``=`` is a :class:`ValueError`."""
    parsed = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--spark-conf expects KEY=VALUE, got {pair!r}")
        parsed.append((key.strip(), value))
    return tuple(parsed)


#: Settings the results depend on: applied to every session the build runs on, even a reused one.
REQUIRED = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.jsonGenerator.ignoreNullFields": "false",
}
#: Hadoop settings the readers rely on (``.zst`` without a native library).
HADOOP = {"io.compression.codecs": ZSTD_CODEC}


def defaults(master: str) -> dict[str, str]:
    """Settings the build relies on, before the user's ``--spark-conf`` (which wins).

    - UTC session time zone: instants compare as UTC, as on DuckDB.
    - ``to_json`` keeps null fields: a quarantined row shows every column, as on DuckDB.
    - No console progress bar and no UI: the build shows its own progress, and opens no port
      beyond what Spark needs.
    - A local master binds to loopback only, uses few shuffle partitions (the adaptive
      executor coalesces them further), the parallel garbage collector and shuffled hash joins
      (measured in BENCHMARKS.md); a cluster keeps Spark's own defaults.
    """
    settings = {
        **REQUIRED,
        **{f"spark.hadoop.{key}": value for key, value in HADOOP.items()},
        "spark.app.name": "pinsights build",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        # Plans are described for listeners even with no UI; a long description is never read.
        "spark.sql.maxPlanStringLength": "20000",
    }
    if master.startswith("local"):
        cores = _local_cores(master)
        settings.update(
            {
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.sql.shuffle.partitions": str(max(4, 4 * cores)),
                # spark.driver.memory (the driver is the executor) comes from the memory
                # limit: see driver_memory.
                # Throughput collector: G1's concurrent marking and barriers cost a quarter of
                # the JVM's CPU on two cores (90 vs 118 CPU s at 10M events, BENCHMARKS.md).
                # C2 compiles a method after 3x the JVM's default calls and loops: fewer
                # compilations of lukewarm code, which on two cores competes with the tasks
                # (10M events: wall -3 to -4 s, JVM CPU -5 to -8 s; 2M the same; BENCHMARKS.md).
                "spark.driver.extraJavaOptions": "-XX:+UseParallelGC " + C2_LATER,
                # Joins of stored results (whose size Spark only learns after the shuffle) build
                # a hash table per partition instead of sorting both sides, when it is small.
                "spark.sql.join.preferSortMergeJoin": "false",
                "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold": "256MB",
                # A partial aggregate's first-level hash map holds 2^20 groups instead of 2^16:
                # the interest counts' (~450k groups per task at 10M events from 35M joined
                # rows) then stay in it instead of spilling into the slower second level
                # (BENCHMARKS.md: 12.9 -> 9.3 task-CPU s for that query).
                "spark.sql.codegen.aggregate.fastHashMap.capacityBit": "20",
            }
        )
    return settings


#: The smallest driver heap Spark 4.0 starts with: it refuses a JVM whose usable heap is under
#: 450 MiB (1.5 times the 300 MiB it reserves), and ``-Xmx512m`` leaves 455 MiB usable under the
#: parallel collector (460m was refused here).
MIN_DRIVER_HEAP = 512 * 2**20
#: A local driver's heap when no memory limit is given (at most what the default limit allows):
#: the setting the benchmarks measured (an 8 GiB heap cut GC time but not CPU, BENCHMARKS.md).
DEFAULT_DRIVER_HEAP = 4 * 2**30
#: What a JVM takes beyond its heap (class metadata, JIT code, thread stacks, direct buffers):
#: Spark's own allowance for containers, a tenth of the heap and at least 384 MiB.
JVM_OVERHEAD_SHARE = 0.10
JVM_OVERHEAD_MIN = 384 * 2**20
#: The smallest memory limit a Spark build accepts: the smallest heap, the JVM's allowance
#: beyond it and the Python process's (as on DuckDB). 1152 MiB.
MIN_SPARK_MEMORY_LIMIT = MIN_DRIVER_HEAP + JVM_OVERHEAD_MIN + OUTSIDE_MIN


def driver_heap_bytes(limit: int) -> int:
    """The driver JVM's heap under a memory limit meant for the whole build process.

    The build process on Spark is the Python driver plus the JVM it starts (in local mode the
    JVM runs the tasks too). Python keeps the allowance it has on DuckDB (a tenth of the limit,
    256 MiB to 1 GiB: counts, documents, the snapshot being written); the JVM gets the rest,
    heap plus its overhead beyond the heap (a tenth of the heap, at least 384 MiB). So
    ``--memory-limit 8GB`` gives a heap of 6,242 MiB, four fifths of the limit.
    """
    rest = buffer_pool_bytes(limit)
    return min(int(rest / (1 + JVM_OVERHEAD_SHARE)), rest - JVM_OVERHEAD_MIN)


def check_memory_limit(limit: str) -> int:
    """The driver heap ``limit`` gives; :class:`ValueError` when it is too small for Spark."""
    size = memory_bytes(limit)
    if size is None:
        raise ValueError(f"memory limit {limit!r} is not a size: write e.g. 8GB, 7.5GiB or 50%")
    heap = driver_heap_bytes(size)
    if heap < MIN_DRIVER_HEAP:
        raise ValueError(
            f"memory limit {limit!r} is too small for --engine spark: its driver JVM needs a heap"
            f" of at least {MIN_DRIVER_HEAP // 2**20} MiB to start, which takes a limit of at"
            f" least {MIN_SPARK_MEMORY_LIMIT // 2**20}MiB (the JVM's overhead and Python's share"
            " come on top); raise --memory-limit"
        )
    return heap


def driver_memory(
    master: str, memory_limit: str | None, conf: Mapping[str, str] = {}
) -> dict[str, str]:
    """``spark.driver.memory`` for a session this build starts, from the memory limit.

    ``memory_limit`` is the limit the user gave (``--memory-limit`` or PINSIGHTS_MEMORY_LIMIT):
    the driver's heap is derived from it on any master (on a cluster the driver still runs
    here; the executors are sized by ``spark.executor.memory``). Without one, a local driver
    gets :data:`DEFAULT_DRIVER_HEAP`, less if the default limit (half the machine) is smaller,
    and a cluster's driver keeps Spark's default. A ``spark.driver.memory`` in ``conf`` (the
    user's ``--spark-conf``) wins: nothing is derived then.
    """
    if "spark.driver.memory" in conf:
        return {}
    if memory_limit is not None:
        heap = check_memory_limit(memory_limit)
    elif master.startswith("local"):
        default = driver_heap_bytes(memory_bytes(default_memory_limit()) or DEFAULT_DRIVER_HEAP)
        heap = max(min(DEFAULT_DRIVER_HEAP, default), MIN_DRIVER_HEAP)
    else:
        return {}
    return {"spark.driver.memory": f"{heap // 2**20}m"}


def _local_cores(master: str) -> int:
    match = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", master)
    if match is None or match.group(1) == "*":
        return os.cpu_count() or 1
    return int(match.group(1))


def check_java() -> str:
    """The ``java`` executable Spark will use; :class:`SparkUnavailable` when there is none, or
    when it is older than Spark needs (said plainly, instead of a JVM stack trace)."""
    return _check_java(os.environ.get("JAVA_HOME"), os.environ.get("PATH"))


@functools.cache
def _check_java(java_home: str | None, search_path: str | None) -> str:
    """Once per JAVA_HOME and PATH: probing ``java -version`` costs a JVM start of its own."""
    java = (
        str(Path(java_home) / "bin" / "java")
        if java_home
        else shutil.which("java", path=search_path)
    )
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no `java` on PATH"
        raise SparkUnavailable(f"the Spark engine needs Java {MIN_JAVA} or newer ({where}): "
                               f"{INSTALL_JAVA}")  # fmt: skip
    try:
        probe = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkUnavailable(f"cannot run {java}: {error}; {INSTALL_JAVA}") from error
    match = re.search(r'version "(\d+)(?:\.(\d+))?', probe.stderr + probe.stdout)
    if match is None:
        raise SparkUnavailable(f"cannot tell the version of {java}; {INSTALL_JAVA}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" is Java 8
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise SparkUnavailable(
            f"the Spark engine needs Java {MIN_JAVA} or newer, {java} is Java {major}: "
            + INSTALL_JAVA
        )
    return java


def _import_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as error:
        raise SparkUnavailable(
            "the Spark engine needs PySpark: pip install 'pinsights[spark]'"
        ) from error


def start_session(
    settings: SparkSettings,
    memory_limit: str | None = None,
    *,
    classes: ClassArchive | None = None,
) -> tuple[SparkSession, Path | None]:
    """A new SparkSession for ``settings``; the JVM's output goes to a log file unless verbose.

    Returns the session and the log file (None when verbose). The driver's heap comes from
    ``memory_limit`` (see :func:`driver_memory`). Spark Connect URLs (``sc://``) are refused with
    a clear message (see docs/spark.md). With ``classes``, the JVM starts from that
    class-data-sharing archive, or records it (see :mod:`pinsights.engine.class_archive`).
    """
    _import_pyspark()
    from py4j.protocol import Py4JJavaError
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    master = settings.resolved_master()
    user = dict(settings.conf)
    merged = {**defaults(master), **driver_memory(master, memory_limit, user), **user}
    if master.startswith("sc://"):
        raise SparkUnavailable(
            f"--spark-master {master}: the build does not run on Spark Connect yet (its readers"
            " need the classic session's JVM); use a spark://HOST:7077 master or spark-submit"
        )
    check_java()
    if classes is not None:
        options = f"{merged.get(JAVA_OPTIONS, '')} {classes.java_options()}"
        merged[JAVA_OPTIONS] = options.strip()
    conf = SparkConf().setMaster(master).setAll(list(merged.items()))
    log_path: Path | None = None
    handle: int | None = None
    popen: dict[str, Any] = {}
    if not settings.verbose:
        handle, name = tempfile.mkstemp(prefix="pinsights-spark-", suffix=".log")
        log_path = Path(name)
        popen = {"stdout": handle, "stderr": handle}
    try:
        gateway = launch_gateway(conf, popen_kwargs=popen)
    except Exception as error:
        detail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
        raise SparkUnavailable(f"Spark did not start: {error}\n{detail}".rstrip()) from error
    finally:
        if handle is not None:
            os.close(handle)
    try:
        context = SparkContext(conf=conf, gateway=gateway)
    except Py4JJavaError as error:  # e.g. a heap Spark refuses (--spark-conf spark.driver.memory)
        reason = _first_cause(str(error))  # read from the JVM, before it is stopped
        gateway.shutdown()
        gateway.proc.kill()
        if log_path is not None:
            log_path.unlink(missing_ok=True)
        raise SparkUnavailable(f"Spark did not start: {reason}") from error
    if not settings.verbose:
        context.setLogLevel("ERROR")
    return SparkSession(context), log_path


def stop_session(session: SparkSession, classes: ClassArchive | None = None) -> None:
    """Stop a session :func:`start_session` started. When its JVM records a class archive, end
    the JVM now, so that it writes the archive while the build waits (a JVM left to exit with
    Python would write it after the build is gone), and forget it: a later session starts its own.
    """
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    session.stop()
    if classes is None or classes.recording is None or gateway is None:
        return
    SparkContext._gateway, SparkContext._jvm = None, None
    gateway.close()
    classes.finish(getattr(gateway, "proc", None))


class SparkBackend:
    """Runs the portable expressions on Spark through Ibis' PySpark backend.

    ``owns_session`` is False when the session was started by someone else (a test's shared
    session): then closing the backend drops what it cached and leaves the session running.
    """

    name = "spark"

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
    def start(cls, settings: SparkSettings, *, memory_limit: str | None = None) -> SparkBackend:
        """A backend on the active session if there is one (tests share one), else a new one.

        ``memory_limit`` (the user's ``--memory-limit`` or PINSIGHTS_MEMORY_LIMIT, None when not
        given) sizes the driver's heap of a session started here.
        """
        _import_pyspark()
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
        session, log_path = start_session(settings, memory_limit, classes=classes)
        backend = cls(session, owns_session=True, log_path=log_path, classes=classes)
        backend.memory_advice = memory_advice(master, memory_limit, dict(settings.conf))
        return backend

    # -- Backend interface ----------------------------------------------------------------

    def discover(self, data_dir: DataPath) -> dict[str, TableSource]:
        """A local path is listed as on DuckDB; a URL through Hadoop's FileSystem API in the
        driver's JVM, so any file system the session knows (HDFS, S3, viewfs…) holds a dataset."""
        if not isinstance(data_dir, UrlPath):
            return discover(data_dir)
        from pinsights.data.load_spark import HadoopTree

        return discover(data_dir, HadoopTree(self.session))

    def raw_table(self, source: TableSource) -> ir.Table:
        from pinsights.data.load_spark import read_source

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
        return self._keep(name, self.ibis.compile(expr))

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
        statements = {name: self.ibis.compile(expr) for name, expr in exprs.items()}
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
            return _collect_arrow(self.session.sql(self.ibis.compile(expr)))

    def scalar(self, expr: ir.Scalar) -> object:
        with self._spark_errors():
            rows = self.session.sql(self.ibis.compile(expr)).collect()
        return rows[0][0] if rows else None

    def export_quarantine(self, expr: ir.Table, path: Path) -> None:
        """Bring the quarantined rows to the driver (Arrow) and write them where DuckDB would."""
        rows = self.to_arrow(expr)
        con = duckdb.connect(str(path))
        try:
            con.register("incoming", rows)
            con.execute("CREATE TABLE quarantine AS SELECT * FROM incoming")
            con.unregister("incoming")
        finally:
            con.close()

    def damaged_file(self, sources: list[TableSource], error: Exception) -> InputError | None:
        """Spark's read failures are named where they happen (see :meth:`_spark_errors`)."""
        return None

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


def _causes(text: str) -> list[str]:
    """The lines of a JVM error that say what happened (``Caused by: …``)."""
    return [
        line.strip()
        for line in re.findall(r"(?:Caused by: |^: )([^\n]+)", text, flags=re.M)
        if line.strip()
    ]


def _first_cause(text: str) -> str:
    causes = _causes(text)
    first = causes[0] if causes else next((ln for ln in text.splitlines() if ln.strip()), text)
    return first.strip()[:500]


def describe_failure(error: BaseException, log_path: Path | None) -> str:
    """One paragraph a person can act on, from a Spark exception (whose text is a JVM trace)."""
    text = str(error)
    unreadable = re.search(r"Encountered error while reading file (\S+?)\.?\s", text)
    where = f" (Spark's log: {log_path})" if log_path else ""
    if unreadable:
        path = re.sub(r"^file:(//)?", "", unreadable.group(1))
        causes = _causes(text)
        reason = causes[-1] if causes else "unreadable"
        return f"cannot read {path}: {reason}. The file is damaged or truncated: {WHAT_TO_DO}."
    return f"Spark failed: {_first_cause(text)}{where}"


def _collect_arrow(frame: DataFrame) -> pa.Table:
    """The rows of ``frame`` as one Arrow table on the driver, straight from Spark's Arrow
    batches (no pandas in between)."""
    return frame.toArrow()
