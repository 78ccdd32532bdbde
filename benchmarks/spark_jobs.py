"""Spark jobs and wall seconds per build step of a daily refresh (issue 23), in process.

On Spark a small build's cost is mostly its jobs (each a fixed scheduling and planning cost), so
job counts compare two versions of the code where wall seconds on a loaded machine do not. As
benchmarks/refresh.py does, it builds day D−1 of a generated dataset (hard links, the last
day's folder left out) into a store that keeps its refresh state, adds day D with 0.5 % of the
users' demographics changed, then builds day D incrementally and with ``--full``, each from a
copy of the D−1 store. Every build runs in this process on its own Spark session; the jobs of
each step are counted from the SparkContext's status tracker, and its CPU seconds: the JVM's
(``/proc``: the JVM the session started, a child of this process) and this process' own::

    python benchmarks/spark_jobs.py /work/bench-data/events-2000000 /tmp/jobs

``--prepared`` reuses the work directory of an earlier run (or of benchmarks/refresh.py: its
``data`` and ``store-previous``) instead of building day D−1 again; ``--builds`` chooses which of
the two builds of day D run (``incremental,full,incremental``: alternating, each from a copy).
``--queries`` also prints each kept result's, write's and collect's wall and JVM CPU seconds
(``SparkBackend._keep``, ``_write``, ``to_arrow``, in the order run), to take a step apart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refresh import edit_demographics, link_tree

from pinsights.engine.settings import BuildSettings
from pinsights.engine.steps import run as steps_run
from pinsights.store.publish import build

JOBS: dict[str, int] = {}
JVM_CPU: dict[str, float] = {}
PY_CPU: dict[str, float] = {}
QUERIES: list[tuple[str, float, float]] = []  # (what, wall s, JVM CPU s), with --queries
TICKS = os.sysconf("SC_CLK_TCK")


def jobs_so_far() -> int:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        return 0
    return len(session.sparkContext.statusTracker().getJobIdsForGroup(None))


def jvm_cpu() -> float:
    """CPU seconds (user + system) of the session's JVM so far; 0 before it started."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if proc is None:
        return 0.0
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def counted(step: Any) -> Any:
    @contextlib.contextmanager
    def wrapped(self: Any, name: str) -> Iterator[None]:
        before, jvm, py = jobs_so_far(), jvm_cpu(), time.process_time()
        with step(self, name):
            yield
        JOBS[name] = JOBS.get(name, 0) + jobs_so_far() - before
        JVM_CPU[name] = round(JVM_CPU.get(name, 0.0) + jvm_cpu() - jvm, 2)
        PY_CPU[name] = round(PY_CPU.get(name, 0.0) + time.process_time() - py, 2)

    return wrapped


def timed(method: Any, label: Any) -> Any:
    """``method`` of SparkBackend with its wall and JVM CPU seconds appended to QUERIES."""

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        started, jvm = time.perf_counter(), jvm_cpu()
        try:
            return method(self, *args, **kwargs)
        finally:
            wall = time.perf_counter() - started
            QUERIES.append((label(*args), round(wall, 2), round(jvm_cpu() - jvm, 2)))

    return wrapped


def time_queries() -> None:
    from pinsights.engine.spark.backend import SparkBackend

    backend: Any = SparkBackend
    backend._keep = timed(backend._keep, lambda name, sql: name)
    backend._write = timed(backend._write, lambda expr, staging, **_: f"write {staging.name}")
    backend.to_arrow = timed(backend.to_arrow, lambda expr: "collect")


def one_build(data: Path, store: Path, refresh: str, window_days: int) -> dict[str, Any]:
    JOBS.clear()
    JVM_CPU.clear()
    PY_CPU.clear()
    QUERIES.clear()
    started, py, jvm = time.perf_counter(), time.process_time(), jvm_cpu()
    settings = BuildSettings(
        data_dir=data, store_dir=store, refresh=refresh, window_days=window_days, engine="spark"
    )
    report = build(settings)
    return {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "python_cpu_seconds": round(time.process_time() - py, 1),
        # The JVM outlives its session (a later build here reuses it): its CPU so far, the
        # start of the JVM included when this build started it.
        "jvm_cpu_seconds": round(jvm_cpu() - jvm, 1),
        "jvm_cpu_seconds_in_steps": round(sum(JVM_CPU.values()), 1),
        "jobs": sum(JOBS.values()),
        "jobs_per_step": dict(JOBS),
        "step_seconds": report["timings"],
        "jvm_cpu_per_step": dict(JVM_CPU),
        "python_cpu_per_step": dict(PY_CPU),
        "tables": report["refresh"].get("tables"),
        **({"queries": list(QUERIES)} if QUERIES else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a generated dataset, one events/date=… a day")
    parser.add_argument("work", type=Path, help="a scratch directory (emptied)")
    parser.add_argument("--window-days", type=int, default=29)
    parser.add_argument(
        "--prepared", action="store_true", help="WORK holds data and store-previous already"
    )
    parser.add_argument("--builds", default="incremental,full")
    parser.add_argument("--queries", action="store_true", help="time each query too")
    args = parser.parse_args()
    if args.queries:
        time_queries()
    steps_run.Run.step = counted(steps_run.Run.step)  # type: ignore[method-assign]
    data, base = args.work / "data", args.work / "store-previous"
    if not args.prepared:
        shutil.rmtree(args.work, ignore_errors=True)
        days = sorted(p.name for p in (args.data / "events").iterdir() if p.is_dir())
        link_tree(args.data, data, skip={days[-1]})
        print("D-1", json.dumps(one_build(data, base, "auto", args.window_days)), flush=True)
        link_tree(args.data / "events" / days[-1], data / "events" / days[-1], skip=set())
        edit_demographics(data / "users.parquet", 0.005)
    refreshes = {"incremental": "auto", "full": "full"}
    for name in args.builds.split(","):
        store = args.work / f"store-{name}"
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(base, store)
        load = round(os.getloadavg()[0], 2)
        result = one_build(data, store, refreshes[name], args.window_days)
        print(name, json.dumps({**result, "load_before": load}), flush=True)


if __name__ == "__main__":
    main()
