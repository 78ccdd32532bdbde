"""Benchmark: `pinsights build` beside a hand-written DuckDB SQL computation of the same counts.

For each size (events), a synthetic platform is generated once (cached under ``--data-dir``,
default ``bench-data/``), then both contenders run in fresh processes, alternating, ``--repeat``
times each, under the same DuckDB memory limit when ``--memory-limit`` is given:

- **pinsights**: ``pinsights build --data … --store …`` — checks every row of every table, writes
  the quarantine, computes the counts, assembles every document, publishes a snapshot;
- **baseline**: the same audience, interest and demographic counts written by hand as DuckDB SQL
  straight over the Parquet files, trusting the input (no checks, no documents, no store).

It prints the best wall time of each, their ratio (pinsights / baseline), events per second and the
peak resident memory of each process (``wait4`` rusage), and the load average before and after
each size (the machine may be shared: compare ratios, not seconds). Usage::

    python benchmarks/build.py [--sizes 2000000,10000000,20000000] [--repeat 2] [--threads N]
        [--users-per-event 0.05] [--memory-limit 8GB] [--data-dir DIR]

With ``--engine spark`` it compares the engines instead: ``pinsights build --engine duckdb`` beside
``pinsights build --engine spark --spark-master local[2]`` on the same data in the same run, with
the peak memory of each whole process tree (Spark's JVM included) and each build's step timings::

    python benchmarks/build.py --engine spark --sizes 2000000,10000000 --repeat 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"

BASELINE = r"""
import sys, duckdb
data, start, end, min_cell = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
memory_limit, temp_directory = sys.argv[5], sys.argv[6]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("SET preserve_insertion_order = false")
con.execute(f"SET temp_directory = '{temp_directory}'")
if memory_limit:
    con.execute(f"SET memory_limit = '{memory_limit}'")
con.execute(f'''
CREATE TEMP TABLE facts AS
SELECT e.user_id, p.ad_account_id, p.interest_id, bool_or(e.event_type <> 'IMPRESSION') AS engaged
FROM read_parquet('{data}/events/**/*.parquet', hive_partitioning = false) e
JOIN read_parquet('{data}/pins.parquet') p ON e.pin_id = p.pin_id
WHERE e.event_time >= TIMESTAMPTZ '{start} 00:00:00+00' AND e.event_time < TIMESTAMPTZ '{end} 00:00:00+00'
GROUP BY ALL''')
con.execute(f'''
CREATE TEMP TABLE levels AS
WITH RECURSIVE tree AS (
  SELECT interest_id, 1 AS level, interest_id AS l1, NULL::VARCHAR AS l2
  FROM read_parquet('{data}/interests.parquet') WHERE parent_id IS NULL
  UNION ALL
  SELECT i.interest_id, t.level + 1, t.l1, coalesce(t.l2, i.interest_id)
  FROM read_parquet('{data}/interests.parquet') i JOIN tree t ON i.parent_id = t.interest_id)
SELECT * FROM tree''')
con.execute('''
CREATE TEMP TABLE members AS
SELECT DISTINCT '' AS acct, 'P' AS kind, user_id FROM facts
UNION ALL SELECT DISTINCT ad_account_id, 'T', user_id FROM facts WHERE ad_account_id IS NOT NULL
UNION ALL SELECT DISTINCT ad_account_id, 'E', user_id FROM facts
  WHERE engaged AND ad_account_id IS NOT NULL''')
con.execute('''
CREATE TEMP TABLE user_interests AS
SELECT DISTINCT f.user_id, l.l1 AS interest_id FROM facts f JOIN levels l USING (interest_id) WHERE f.engaged
UNION
SELECT DISTINCT f.user_id, l.l2 FROM facts f JOIN levels l USING (interest_id)
WHERE f.engaged AND l.l2 IS NOT NULL''')
sizes = con.execute('SELECT acct, kind, count(*) FROM members GROUP BY ALL').to_arrow_table()
interests = con.execute(f'''
SELECT m.acct, m.kind, ui.interest_id, count(*) AS n FROM members m JOIN user_interests ui USING (user_id)
GROUP BY ALL HAVING count(*) >= {min_cell}''').to_arrow_table()
demographics = con.execute(f'''
WITH u AS (SELECT user_id, coalesce(age_bucket, 'unknown') AS age, coalesce(gender, 'unspecified') AS gender,
                  coalesce(lower(country), 'unknown') AS country, coalesce(metro, 'unknown') AS metro,
                  coalesce(device, 'unknown') AS device FROM read_parquet('{data}/users.parquet')),
mu AS (SELECT m.acct, m.kind, u.* FROM members m JOIN u USING (user_id))
SELECT acct, kind, 'ages' AS dim, age AS key, count(*) AS n FROM mu GROUP BY ALL HAVING n >= {min_cell}
UNION ALL SELECT acct, kind, 'genders', gender, count(*) FROM mu GROUP BY ALL HAVING count(*) >= {min_cell}
UNION ALL SELECT acct, kind, 'countries', country, count(*) FROM mu GROUP BY ALL HAVING count(*) >= {min_cell}
UNION ALL SELECT acct, kind, 'metros', metro, count(*) FROM mu GROUP BY ALL HAVING count(*) >= {min_cell}
UNION ALL SELECT acct, kind, 'devices', device, count(*) FROM mu GROUP BY ALL HAVING count(*) >= {min_cell}''').to_arrow_table()
print(sizes.num_rows, interests.num_rows, demographics.num_rows)
"""


def ensure_dataset(data_dir: Path, events: int, users: int) -> tuple[Path, dt.date]:
    """Generate (once) a platform of ``events`` events and ``users`` users."""
    default = users == max(events // 20, 1000)
    out = data_dir / (f"events-{events}" if default else f"events-{events}-users-{users}")
    end = dt.date(2026, 11, 27)
    if not (out / "events").is_dir():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [
                sys.executable, "-m", "pinsights.cli", "generate", str(out),
                "--events", str(events), "--users", str(users),
                "--accounts", "1000", "--days", "30", "--end-date", end.isoformat(), "--seed", "7",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return out, end


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, all threads) and peak RSS (MiB) of one child.

    CPU time is reported beside wall time because it is far less sensitive to other load on a
    shared machine; both ratios are printed.
    """
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        stderr = child.stderr.read().decode() if child.stderr else ""
        raise SystemExit(f"{command[:3]!s:.120} failed ({status}):\n{stderr}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000000,10000000,20000000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--users-per-event", type=float, default=0.05)
    parser.add_argument(
        "--memory-limit", default="", help="DuckDB memory limit for both contenders, e.g. 8GB."
    )
    parser.add_argument("--data-dir", type=Path, default=DATA, help="Where datasets are cached.")
    parser.add_argument("--json", action="store_true", help="Print results as JSON too.")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="spark: compare the Spark engine (local, 2 cores) with DuckDB.")  # fmt: skip
    args = parser.parse_args()
    if args.engine == "spark":
        sizes = [int(s) for s in args.sizes.split(",")]
        compare_engines(args.data_dir, sizes, args.users_per_event, args.repeat, args.json)
        return
    env = dict(os.environ)
    if args.threads:
        env["PINSIGHTS_THREADS"] = str(args.threads)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"memory limit: {args.memory_limit or 'defaults (pinsights: half the RAM; DuckDB: 80%)'}")
    print(f"{'events':>11} {'users':>10} {'pinsights s':>12} {'baseline s':>11} {'ratio':>6} "
          f"{'cpu ratio':>9} {'events/s':>11} {'ns/event':>9} {'RSS MiB':>8} {'base RSS':>9} "
          f"{'load before/after':>17}")  # fmt: skip
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    results = []
    for events in [int(s) for s in args.sizes.split(",")]:
        users = max(round(events * args.users_per_event), 1000)
        data, end = ensure_dataset(args.data_dir, events, users)
        start = end - dt.timedelta(days=29)
        best = {"pinsights": (float("inf"), 0.0, 0), "baseline": (float("inf"), 0.0, 0)}
        load_before = os.getloadavg()[0]
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.data_dir) as store:
                ours = run_measured(
                    [sys.executable, "-m", "pinsights.cli", "build", "--data", str(data),
                     "--store", store, "--json", *limit],
                    env,
                )  # fmt: skip
            with tempfile.TemporaryDirectory(dir=args.data_dir) as spill:
                theirs = run_measured(
                    [sys.executable, "-c", BASELINE, str(data), start.isoformat(),
                     (end + dt.timedelta(days=1)).isoformat(), "10", args.memory_limit, spill],
                    env,
                )  # fmt: skip
            best["pinsights"] = min(best["pinsights"], ours)
            best["baseline"] = min(best["baseline"], theirs)
        ours_s, ours_cpu, ours_rss = best["pinsights"]
        base_s, base_cpu, base_rss = best["baseline"]
        load_after = os.getloadavg()[0]
        row = {
            "events": events,
            "users": users,
            "pinsights_s": round(ours_s, 2),
            "baseline_s": round(base_s, 2),
            "ratio": round(ours_s / base_s, 2),
            "pinsights_cpu_s": round(ours_cpu, 2),
            "baseline_cpu_s": round(base_cpu, 2),
            "cpu_ratio": round(ours_cpu / base_cpu, 2),
            "events_per_s": round(events / ours_s),
            "ns_per_event": round(ours_s / events * 1e9),
            "pinsights_rss_mib": ours_rss,
            "baseline_rss_mib": base_rss,
            "memory_limit": args.memory_limit or None,
            "load_before": load_before,
            "load_after": load_after,
        }
        results.append(row)
        print(f"{events:>11,} {users:>10,} {ours_s:>12.2f} {base_s:>11.2f} {row['ratio']:>6.2f} "
              f"{row['cpu_ratio']:>9.2f} {row['events_per_s']:>11,} {row['ns_per_event']:>9} "
              f"{ours_rss:>8} {base_rss:>9} {load_before:>8.1f}/{load_after:<8.1f}",
              flush=True)  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))


# --- DuckDB beside Spark -----------------------------------------------------------------------


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants (KiB), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_tree(command: list[str]) -> tuple[float, int, dict]:
    """Wall seconds, peak RSS of the whole process tree (MiB, sampled every 0.2 s) and the build
    report of one ``pinsights build --json``."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss_kib(child.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"{command[:6]} failed:\n{err.decode()[-3000:]}")
    return elapsed, peak // 1024, json.loads(out)


def compare_engines(
    data_dir: Path, sizes: list[int], users_per_event: float, repeat: int, as_json: bool
) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at start")  # fmt: skip
    print(f"{'events':>11} {'duckdb s':>9} {'spark s':>8} {'ratio':>6} {'duckdb MiB':>11} "
          f"{'spark MiB':>10}  spark: start+imports, then steps (s)")  # fmt: skip
    results = []
    for events in sizes:
        data, _end = ensure_dataset(data_dir, events, max(round(events * users_per_event), 1000))
        best: dict[str, tuple[float, int, dict]] = {}
        for _ in range(repeat):
            for engine in ("duckdb", "spark"):
                with tempfile.TemporaryDirectory() as store:
                    command = [sys.executable, "-m", "pinsights.cli", "build", "--data", str(data),
                               "--store", store, "--json", "--engine", engine]  # fmt: skip
                    if engine == "spark":
                        command += ["--spark-master", "local[2]"]
                    measured = run_tree(command)
                if engine not in best or measured[0] < best[engine][0]:
                    best[engine] = measured
        (duck_s, duck_mib, _), (spark_s, spark_mib, report) = best["duckdb"], best["spark"]
        steps = {k: v for k, v in report["timings"].items() if isinstance(v, int | float)}
        outside = spark_s - sum(steps.values())
        row = {
            "events": events,
            "duckdb_s": round(duck_s, 2),
            "spark_s": round(spark_s, 2),
            "ratio": round(spark_s / duck_s, 2),
            "duckdb_peak_mib": duck_mib,
            "spark_peak_mib": spark_mib,
            "spark_start_and_imports_s": round(outside, 2),
            "spark_steps_s": steps,
            "load_average_after": [round(x, 1) for x in os.getloadavg()],
        }
        results.append(row)
        where = " ".join(f"{k} {v:.1f}" for k, v in steps.items())
        print(f"{events:>11,} {duck_s:>9.2f} {spark_s:>8.2f} {row['ratio']:>6.2f} {duck_mib:>11} "
              f"{spark_mib:>10}  start {outside:.1f}, {where}", flush=True)  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if as_json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
