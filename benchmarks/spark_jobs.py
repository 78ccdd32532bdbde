"""Spark jobs and wall seconds per build step of a daily refresh (issue 23), in process.

On Spark a small build's cost is mostly its jobs (each a fixed scheduling and planning cost), so
job counts compare two versions of the code where wall seconds on a loaded machine do not. As
benchmarks/refresh.py does, it builds day D−1 of a generated dataset (hard links, the last
day's folder left out) into a store that keeps its refresh state, adds day D with 0.5 % of the
users' demographics changed, then builds day D incrementally and with ``--full``, each from a
copy of the D−1 store. Every build runs in this process on its own Spark session; the jobs of
each step are counted from the SparkContext's status tracker::

    python benchmarks/spark_jobs.py /work/bench-data/events-2000000 /tmp/jobs
"""

from __future__ import annotations

import argparse
import contextlib
import json
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


def jobs_so_far() -> int:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        return 0
    return len(session.sparkContext.statusTracker().getJobIdsForGroup(None))


def counted(step: Any) -> Any:
    @contextlib.contextmanager
    def wrapped(self: Any, name: str) -> Iterator[None]:
        before = jobs_so_far()
        with step(self, name):
            yield
        JOBS[name] = JOBS.get(name, 0) + jobs_so_far() - before

    return wrapped


def one_build(data: Path, store: Path, refresh: str, window_days: int) -> dict[str, Any]:
    JOBS.clear()
    started = time.perf_counter()
    settings = BuildSettings(
        data_dir=data, store_dir=store, refresh=refresh, window_days=window_days, engine="spark"
    )
    report = build(settings)
    return {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "jobs": sum(JOBS.values()),
        "jobs_per_step": dict(JOBS),
        "step_seconds": report["timings"],
        "tables": report["refresh"].get("tables"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a generated dataset, one events/date=… a day")
    parser.add_argument("work", type=Path, help="a scratch directory (emptied)")
    parser.add_argument("--window-days", type=int, default=29)
    args = parser.parse_args()
    steps_run.Run.step = counted(steps_run.Run.step)  # type: ignore[method-assign]
    shutil.rmtree(args.work, ignore_errors=True)
    days = sorted(p.name for p in (args.data / "events").iterdir() if p.is_dir())
    data, base = args.work / "data", args.work / "store-previous"
    link_tree(args.data, data, skip={days[-1]})
    print("D-1", json.dumps(one_build(data, base, "auto", args.window_days)), flush=True)
    link_tree(args.data / "events" / days[-1], data / "events" / days[-1], skip=set())
    edit_demographics(data / "users.parquet", 0.005)
    for name, refresh in (("incremental", "auto"), ("full", "full")):
        store = args.work / f"store-{name}"
        shutil.copytree(base, store)
        print(name, json.dumps(one_build(data, store, refresh, args.window_days)), flush=True)


if __name__ == "__main__":
    main()
