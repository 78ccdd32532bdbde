"""Incremental refresh against a full build of the same day, in the same run (issue 23).

From a generated dataset of N days (``bench-data/events-…``, one ``events/date=…`` folder a day)
it makes a dataset of hard links holding day D−1 (the last day's folder left out), builds a store
from it (which writes its refresh state; the links are left ``RACY_NS`` old first, as a daily
refresh's history is, so that their digests hold on their status), then adds day D to the same
directory (its folder, and 0.5 % of the users' demographics changed, as a day's edits would),
copies the store three times and builds day D on each copy, each build in its own process (peak
RSS per build):

- ``plain``: the full check without any state (``refresh="off"``): the build as it was before
  the refresh state existed — the honest baseline;
- ``full``: ``pinsights build --full``: the full check, the state rewritten;
- ``incremental``: ``pinsights build``: only the new day's event file read.

``--window-days 29`` (with 30 days of data) makes day D's window drop its first day, as a daily
refresh of a longer history does (the default, 30, drops none). It prints wall seconds, the
report's seconds, events read, peak RSS and state size of each, the
ratios against ``plain`` (or the first of ``--builds``), and whether the three stores serve the same bytes (every snapshot table
and the quarantine, benchmarks/digests.py)::

    flock /work/notes/bench.lock python benchmarks/refresh.py bench-data/events-20000000 /tmp/rb

``--engine spark`` runs every build on Spark (the same state; the issue's figure is at 10M).
Spark's JVM is not a child the build waits for, so its CPU is not in the process' resource
usage: there each build runs under ``perf stat -e task-clock`` when ``perf`` is installed (the
CPU of the build's process and every process it starts, the JVM's threads included), and the
CPU column is ``perf``'s; without ``perf`` it is the Python process's only (compare wall seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digests import store_digests

from pinsights.engine.refresh.state import RACY_NS


def link_tree(source: Path, target: Path, *, skip: set[str]) -> None:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or any(part in skip for part in relative.parts):
            continue
        linked = target / relative
        linked.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, linked)


def edit_demographics(users: Path, fraction: float) -> int:
    """Rewrite the users table with ``fraction`` of the users' country and device changed."""
    table = pq.read_table(users)
    rows = table.num_rows
    step = max(1, round(1 / fraction))
    chosen = pa.array([i % step == 0 for i in range(rows)])
    country = pc.if_else(chosen, pa.scalar("ca"), table["country"])
    device = pc.if_else(chosen, pa.scalar("web"), table["device"])
    table = table.set_column(table.schema.get_field_index("country"), "country", country)
    table = table.set_column(table.schema.get_field_index("device"), "device", device)
    users.unlink()  # a hard link to the source: write a new file, never through the link
    pq.write_table(table, users)
    return int(pc.sum(chosen.cast(pa.int64())).as_py())


BUILD = """
import json, sys
from pathlib import Path
from pinsights.engine.settings import BuildSettings
from pinsights.store.publish import build
report = build(BuildSettings(data_dir=Path(sys.argv[1]), store_dir=Path(sys.argv[2]),
                             refresh=sys.argv[3], window_days=int(sys.argv[4]),
                             engine=sys.argv[5]))
print(json.dumps(report))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def task_clock_seconds(output: Path) -> float | None:
    """The CPU seconds ``perf stat -x, -e task-clock`` wrote (milliseconds, CSV), if any."""
    for line in output.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("task-clock"):
            try:
                return float(fields[0]) / 1000
            except ValueError:
                return None
    return None


def run_build(
    data: Path, store: Path, refresh: str, window_days: int, engine: str = "duckdb"
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-c",
        BUILD,
        str(data),
        str(store),
        refresh,
        str(window_days),
        engine,
    ]
    perf = shutil.which("perf") if engine == "spark" else None
    with tempfile.NamedTemporaryFile(suffix=".perf") as counted:
        if perf is not None:  # the JVM's CPU too (not in the resource usage of children)
            command = [perf, "stat", "-x,", "-e", "task-clock", "-o", counted.name, *command]
        cpu = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        cpu = _children_cpu() - cpu
        if perf is not None:
            cpu = task_clock_seconds(Path(counted.name)) or cpu
    if done.returncode != 0:
        raise SystemExit(f"build failed ({refresh}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    state = store / "state"
    size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file()) if state.exists() else 0
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "report_seconds": report["seconds"],
        "events_read": report["refresh"]["events_read"],
        "mode": report["refresh"]["mode"],
        "reason": report["refresh"]["reason"],
        "counts": report["refresh"].get("counts"),
        "pins": report["refresh"].get("pins"),
        "peak_rss_mib": round(report["peak_rss_bytes"] / 2**20),
        "state_mib": round(size / 2**20, 1),
        "validate_seconds": report["timings"].get("validate"),
        "step_seconds": report["timings"],
    }


def served(store: Path) -> dict[str, Any]:
    return {
        name: digest
        for name, digest in store_digests(store).items()
        if name != "reports" and not name.endswith(" meta")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a generated dataset, one events/date=… a day")
    parser.add_argument("work", type=Path, help="a scratch directory (emptied)")
    parser.add_argument("--edited", type=float, default=0.005, help="users edited on day D")
    parser.add_argument(
        "--window-days",
        type=int,
        default=30,
        help="the builds' window (29 with 30 days of data: day D's window drops the first day, as"
        " a daily refresh of a longer history does; 30: no day leaves)",
    )
    parser.add_argument(
        "--engine",
        default="duckdb",
        choices=("duckdb", "spark"),
        help="the engine of every build (Spark: local[*], its default settings)",
    )
    parser.add_argument(
        "--builds",
        default="plain,full,incremental",
        help="which of the three builds of day D to run (plain,incremental at 100M saves the"
        " --full build's ~10 minutes)",
    )
    args = parser.parse_args()
    builds = args.builds.split(",")
    shutil.rmtree(args.work, ignore_errors=True)
    # Day D is the last day's folder (``date=…``): other folders (the messy dataset's ``extra``
    # text files) are history, read by every build.
    days = sorted(p.name for p in (args.data / "events").iterdir() if p.name.startswith("date="))
    # One data directory, as a platform has: the state knows files by their path.
    data = args.work / "data"
    link_tree(args.data, data, skip={days[-1]})
    # A daily refresh's history was written long before the builds that read it; files linked
    # just now changed status (a link moves the change time) within the racy window of the
    # state's fingerprints (RACY_NS), so day D's build would hash every one of them again, which
    # a daily run does not (docs/engine.md, "What a build with a state does", 2). Another run
    # linking the same dataset's files meanwhile moves their change time too: hashed again.
    time.sleep(RACY_NS / 1e9)
    base = args.work / "store-previous"
    prepared = run_build(data, base, "auto", args.window_days, args.engine)
    print(f"store of D-1 built ({prepared['report_seconds']} s, state {prepared['state_mib']} MiB)")
    link_tree(args.data / "events" / days[-1], data / "events" / days[-1], skip=set())
    edited = edit_demographics(data / "users.parquet", args.edited)
    print(f"dataset {args.data}: {len(days)} days; day D = {days[-1]}; {edited} users edited")
    results: dict[str, dict[str, Any]] = {}
    for name, refresh in (("plain", "off"), ("full", "full"), ("incremental", "auto")):
        if name not in builds:
            continue
        store = args.work / f"store-{name}"
        shutil.copytree(base, store)
        load = os.getloadavg()[0]
        results[name] = {
            **run_build(data, store, refresh, args.window_days, args.engine),
            "load_before": round(load, 2),
        }
    # Ratios against the first build run: plain, else --full (Spark's target is its own full).
    base_name, base = next(iter(results.items()))
    for name, result in results.items():
        wall = result["wall_seconds"] / base["wall_seconds"]
        cpu = result["cpu_seconds"] / base["cpu_seconds"]
        print(f"{name:<12} {json.dumps(result)}  vs {base_name}: wall {wall:.2f}, CPU {cpu:.2f}")
    digests = {name: served(args.work / f"store-{name}") for name in results}
    same = all(digest == digests[base_name] for digest in digests.values())
    print(f"documents and quarantine identical across the {len(digests)} stores: {same}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
