"""Starting and stopping the Spark session a build runs on, and the settings it starts with.

A session stays quiet (its JVM logs to a file) and local to loopback unless told otherwise; a
local driver's heap comes from the build's memory limit (:func:`driver_memory`, sharing
:mod:`pinsights.engine.memory`'s policy); Java is checked before a JVM is started, so a missing or
old one is said plainly. Spark Connect is refused with a clear message (docs/spark.md).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinsights.engine.backend import BackendError
from pinsights.engine.memory import (
    OUTSIDE_MIN,
    buffer_pool_bytes,
    default_memory_limit,
    memory_bytes,
)
from pinsights.engine.spark.class_archive import ClassArchive
from pinsights.engine.spark.reader import ZSTD_CODEC

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


MASTER_ENV = "PINSIGHTS_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"
#: The local JVM's options (the collector; the class archive is added to them).
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: The JIT's C2 thresholds, three times the JVM's defaults (local masters).
C2_LATER = (
    "-XX:Tier4InvocationThreshold=15000 -XX:Tier4MinInvocationThreshold=1800"
    " -XX:Tier4CompileThreshold=45000 -XX:Tier4BackEdgeThreshold=120000"
)
#: The JIT's quick compiler only (local masters, small inputs: see :func:`jit_options`).
C1_ONLY = "-XX:TieredStopAtLevel=1"
#: Input files smaller than this in all are built by a local JVM without C2 (2M generated events
#: in Parquet, 27 MB, are about where either way costs the same: the line is drawn below them).
SMALL_INPUT_BYTES = 16 * 2**20
#: Input files smaller than this in all are evaluated without generated code by a local JVM
#: (a 212 KB platform: −12 % JVM CPU in a fresh JVM, −40 % in a reused session; 1.8 MB: +5 %).
TINY_INPUT_BYTES = 512 * 2**10
#: Spark's settings for evaluating a query's expressions and stages by its interpreter instead of
#: compiling Java for each (see :func:`evaluation_options`).
INTERPRETED = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
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


def jit_options(input_bytes: int | None) -> str:
    """How a local JVM compiles: C1 only for an input of known size below
    :data:`SMALL_INPUT_BYTES`, else C2 for hot code only (:data:`C2_LATER`).

    C2's optimised code pays back only on long tasks. A small build runs ~60 short queries whose
    planning and generated code C2 compiles once each, for nothing: on 200 KB of input its
    compiler threads took 17-19 CPU s of a 48-54 CPU s JVM, and C1 alone cut the build's wall time
    from 52-53 s to 28-33 s; at 2M events (27 MB) the JVM still used less CPU without C2 (57-59
    against 74-80 s), with more in the tasks (33-35 against 21-23 s). Measured in
    docs/benchmarks-history.md ("C1 only for small inputs"). Unknown sizes (a URL) keep C2.
    The size is the files' on disk, whatever their format: a conservative line for text, whose
    bytes hold fewer rows than Parquet's.
    """
    small = input_bytes is not None and input_bytes < SMALL_INPUT_BYTES
    return C1_ONLY if small else C2_LATER


def evaluation_options(input_bytes: int | None) -> dict[str, str]:
    """Spark's interpreter instead of generated code for an input of known size below
    :data:`TINY_INPUT_BYTES` (a local JVM); nothing otherwise.

    Spark compiles each query's stages and expressions to Java and then to bytecode (Janino)
    before it runs them: time that pays back over many rows, and that a build on a tiny platform
    (a trial, a demo, a test's) spends on ~120 short jobs that each read a few thousand rows.
    Spark's interpreted evaluation gives the same results (its own tests run both ways). On
    this machine, a 212 KB platform built on ``local[2]``: a fresh JVM 33 → 28-30 CPU s, and
    three builds on a reused session 49-52 → 28-31 JVM CPU s; at 1.8 MB (100,000 events) the
    interpreter already cost a little more (34 against 32 CPU s), at 15 MB clearly more (91-94
    against 47-80). docs/benchmarks-history.md, "Spark's interpreter for tiny inputs".
    """
    tiny = input_bytes is not None and input_bytes < TINY_INPUT_BYTES
    return dict(INTERPRETED) if tiny else {}


def defaults(master: str, input_bytes: int | None = None) -> dict[str, str]:
    """Settings the build relies on, before the user's ``--spark-conf`` (which wins).

    - UTC session time zone: instants compare as UTC, as on DuckDB.
    - ``to_json`` keeps null fields: a quarantined row shows every column, as on DuckDB.
    - No console progress bar and no UI: the build shows its own progress, and opens no port
      beyond what Spark needs.
    - A local master binds to loopback only, uses few shuffle partitions (the adaptive
      executor coalesces them further), the parallel garbage collector, a JIT suited to the
      input's size (``input_bytes``, see :func:`jit_options`) and shuffled hash joins (each
      measured in docs/benchmarks-history.md); a cluster keeps Spark's own defaults.
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
                # Throughput collector: G1's concurrent marking and barriers cost CPU the tasks
                # need on few cores. C2 compiles only hot code (3x the JVM's thresholds): its
                # compilations of lukewarm code compete with the tasks; not at all on a small input.
                JAVA_OPTIONS: "-XX:+UseParallelGC " + jit_options(input_bytes),
                # Joins of stored results (whose size Spark only learns after the shuffle) build
                # a hash table per partition instead of sorting both sides, when it is small.
                "spark.sql.join.preferSortMergeJoin": "false",
                "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold": "256MB",
                # A partial aggregate's first-level hash map holds 2^20 groups instead of 2^16:
                # the interest counts' groups stay in it instead of spilling into the slower
                # second level.
                "spark.sql.codegen.aggregate.fastHashMap.capacityBit": "20",
                **evaluation_options(input_bytes),
            }
        )
    return settings


#: The smallest driver heap Spark 4.0 starts with: it refuses a JVM whose usable heap is under
#: 450 MiB (1.5 times the 300 MiB it reserves), and ``-Xmx512m`` leaves 455 MiB usable under the
#: parallel collector (460m was refused here).
MIN_DRIVER_HEAP = 512 * 2**20
#: A local driver's heap when no memory limit is given (at most what the default limit allows):
#: the setting the benchmarks measured (a larger heap cut GC time but not CPU).
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


def import_pyspark() -> None:
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
    input_bytes: int | None = None,
) -> tuple[SparkSession, Path | None]:
    """A new SparkSession for ``settings``; the JVM's output goes to a log file unless verbose.

    Returns the session and the log file (None when verbose). The driver's heap comes from
    ``memory_limit`` (see :func:`driver_memory`). Spark Connect URLs (``sc://``) are refused with
    a clear message (see docs/spark.md). With ``classes``, the JVM starts from that
    class-data-sharing archive, or records it (see :mod:`pinsights.engine.spark.class_archive`).
    ``input_bytes``, the size of the input when known, chooses a local JVM's JIT
    (:func:`jit_options`).
    """
    import_pyspark()
    from py4j.protocol import Py4JJavaError
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    master = settings.resolved_master()
    user = dict(settings.conf)
    merged = {**defaults(master, input_bytes), **driver_memory(master, memory_limit, user), **user}
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
        reason = first_cause(str(error))  # read from the JVM, before it is stopped
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


def error_causes(text: str) -> list[str]:
    """The lines of a JVM error that say what happened (``Caused by: …``)."""
    return [
        line.strip()
        for line in re.findall(r"(?:Caused by: |^: )([^\n]+)", text, flags=re.M)
        if line.strip()
    ]


def first_cause(text: str) -> str:
    causes = error_causes(text)
    first = causes[0] if causes else next((ln for ln in text.splitlines() if ln.strip()), text)
    return first.strip()[:500]
