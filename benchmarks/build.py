"""Benchmark: `pinsights build` beside two hand-written DuckDB SQL computations of the same counts.

For each size (events), a synthetic platform is generated once (cached under ``--data-dir``,
default ``bench-data/``), then three contenders run in fresh processes, alternating, ``--repeat``
times each, under the same DuckDB memory limit when ``--memory-limit`` is given:

- **pinsights**: ``pinsights build --data … --store …`` — checks every row of every table, writes
  the quarantine, computes the counts, assembles every document, publishes a snapshot;
- **simple** SQL (the baseline): the same audience, interest and demographic counts written by hand
  as straightforward DuckDB SQL straight over the Parquet files, trusting the input (no checks, no
  documents, no store);
- **expert** SQL: the same counts as a DuckDB expert would tune them (small integer keys, files
  chosen by their ``event_time`` statistics, only pins with an account joined, ``event_type``
  filtered while reading, pairs deduplicated before the hierarchy, T and E in one pass with
  ``FILTER``, heavy users kept as the interests they lack, a perfect hash table for the interest
  counts only, demographics with ``GROUPING SETS``, ids back only on the small results). Both SQL
  anchors write their counts; the benchmark stops unless the expert's equal the simple one's, count
  for count, in every run.

It prints the best wall time of each, the build's ratios to both anchors (wall and CPU), the
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
memory_limit, temp_directory, out = sys.argv[5], sys.argv[6], sys.argv[7]
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
for name, result in (("sizes", sizes), ("interests", interests), ("demographics", demographics)):
    con.execute(f"COPY (SELECT * FROM result) TO '{out}/{name}.parquet'")
"""


EXPERT = r"""
import sys, duckdb
data, start, end, min_cell = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
memory_limit, temp_directory, out = sys.argv[5], sys.argv[6], sys.argv[7]
con = duckdb.connect()
settings = ["TimeZone = 'UTC'", "preserve_insertion_order = false", f"temp_directory = '{temp_directory}'"]
for setting in settings + ([f"memory_limit = '{memory_limit}'"] if memory_limit else []):
    con.execute(f"SET {setting}")
q = con.execute
# Accounts and interests as small integer keys; the hierarchy as (interest, level 1, level 2) keys.
q(f'''CREATE TEMP TABLE accounts AS SELECT ad_account_id AS id,
      (row_number() OVER (ORDER BY ad_account_id))::INTEGER AS k FROM read_parquet('{data}/ad_accounts.parquet')''')
q(f'''CREATE TEMP TABLE interests AS SELECT interest_id AS id, parent_id,
      (row_number() OVER (ORDER BY interest_id))::INTEGER AS k FROM read_parquet('{data}/interests.parquet')''')
q('''CREATE TEMP TABLE levels AS WITH RECURSIVE tree AS (
       SELECT k, k AS l1, NULL::INTEGER AS l2, id FROM interests WHERE parent_id IS NULL
       UNION ALL SELECT i.k, t.l1, coalesce(t.l2, i.k), i.id FROM interests i JOIN tree t ON i.parent_id = t.id)
     SELECT k, l1, l2 FROM tree''')
# Only pins with an account take part in the audiences' join, only pins with an interest in the interests'.
q(f'''CREATE TEMP TABLE pin_accounts AS SELECT p.pin_id, a.k AS account
      FROM read_parquet('{data}/pins.parquet') p JOIN accounts a ON p.ad_account_id = a.id''')
q(f'''CREATE TEMP TABLE pin_interests AS SELECT p.pin_id, i.k AS interest
      FROM read_parquet('{data}/pins.parquet') p JOIN interests i ON p.interest_id = i.id''')
# Event files by their event_time statistics: read whole when inside the window, skipped when
# outside it, read with the time filter when they straddle it (exact whatever a folder's name says).
since, until = f"TIMESTAMPTZ '{start} 00:00:00+00'", f"TIMESTAMPTZ '{end} 00:00:00+00'"
files = q(f'''SELECT file_name,
                     min(stats_min_value::TIMESTAMPTZ) >= {since} AND max(stats_max_value::TIMESTAMPTZ) < {until},
                     max(stats_max_value::TIMESTAMPTZ) < {since} OR min(stats_min_value::TIMESTAMPTZ) >= {until}
              FROM parquet_metadata('{data}/events/**/*.parquet') WHERE path_in_schema = 'event_time'
              GROUP BY file_name''').fetchall()
inside = [name for name, whole, _ in files if whole]
straddling = [name for name, whole, skipped in files if not whole and not skipped]
def events(columns, condition="true"):
    in_window = f"event_time >= {since} AND event_time < {until}"
    parts = [f"SELECT {columns} FROM read_parquet({inside!r}) WHERE {condition}"] if inside else []
    if straddling:
        parts.append(f"SELECT {columns} FROM read_parquet({straddling!r}) WHERE {in_window} AND {condition}")
    none = "SELECT NULL::BIGINT AS user_id, NULL::BIGINT AS pin_id, NULL::VARCHAR AS event_type LIMIT 0"
    return "(" + (" UNION ALL ".join(parts) or none) + ")"
# Three passes over the events: everyone (P); (user, account) facts with T and E in one pass;
# engagements only (event_type filtered while reading) to distinct (user, interest) pairs.
q(f"CREATE TEMP TABLE everyone AS SELECT DISTINCT user_id FROM {events('user_id')}")
q(f'''CREATE TEMP TABLE facts AS SELECT e.user_id, p.account, bool_or(e.event_type <> 'IMPRESSION') AS engaged
      FROM {events('user_id, pin_id, event_type')} e JOIN pin_accounts p USING (pin_id) GROUP BY ALL''')
q(f'''CREATE TEMP TABLE pairs AS SELECT DISTINCT e.user_id, p.interest
      FROM {events('user_id, pin_id', "event_type <> 'IMPRESSION'")} e JOIN pin_interests p USING (pin_id)''')
# The pairs, deduplicated, expanded to their level-1 and level-2 ancestors.
q('''CREATE TEMP TABLE user_interests AS SELECT DISTINCT user_id, interest FROM (
       SELECT user_id, unnest([l.l1, l.l2]) AS interest FROM pairs JOIN levels l ON pairs.interest = l.k)
     WHERE interest IS NOT NULL''')
# Heavy users (more interests than they lack) are kept as the interests they lack:
# n(a, i) = light members with i + heavy members - heavy members lacking i.
q('CREATE TEMP TABLE universe AS SELECT DISTINCT interest FROM user_interests')
q('''CREATE TEMP TABLE heavy AS SELECT user_id FROM user_interests GROUP BY user_id
     HAVING 2 * count(*) > (SELECT count(*) FROM universe)''')
q('''CREATE TEMP TABLE lacking AS SELECT h.user_id, u.interest FROM heavy h, universe u
     ANTI JOIN user_interests ui ON ui.user_id = h.user_id AND ui.interest = u.interest''')
q('CREATE TEMP TABLE light AS SELECT * FROM user_interests ANTI JOIN heavy USING (user_id)')
q('SET perfect_ht_threshold = 24')  # (account, interest) keys: a perfect hash table, for these two only
q('''CREATE TEMP TABLE light_counts AS SELECT f.account, l.interest, count(*) AS t, count(*) FILTER (f.engaged) AS e
     FROM facts f JOIN light l USING (user_id) GROUP BY ALL''')
q('''CREATE TEMP TABLE lacking_counts AS SELECT f.account, l.interest, count(*) AS t, count(*) FILTER (f.engaged) AS e
     FROM facts f JOIN lacking l USING (user_id) GROUP BY ALL''')
q('RESET perfect_ht_threshold')
q('''CREATE TEMP TABLE heavy_members AS SELECT account, count(*) AS t, count(*) FILTER (engaged) AS e
     FROM facts SEMI JOIN heavy USING (user_id) GROUP BY account''')
q(f'''CREATE TEMP TABLE interest_counts AS
     WITH cells AS (SELECT account, interest FROM light_counts UNION SELECT account, interest FROM heavy_members, universe),
     n AS (SELECT c.account, c.interest,
                  coalesce(l.t, 0) + coalesce(h.t, 0) - coalesce(x.t, 0) AS t,
                  coalesce(l.e, 0) + coalesce(h.e, 0) - coalesce(x.e, 0) AS e
           FROM cells c LEFT JOIN light_counts l USING (account, interest) LEFT JOIN heavy_members h USING (account)
           LEFT JOIN lacking_counts x USING (account, interest))
     SELECT account, 'T' AS kind, interest, t AS n FROM n WHERE t >= {min_cell}
     UNION ALL SELECT account, 'E', interest, e FROM n WHERE e >= {min_cell}
     UNION ALL SELECT 0, 'P', interest, count(*) FROM user_interests GROUP BY interest HAVING count(*) >= {min_cell}''')
# Demographics: members (P as account 0) with their users' values, five dimensions in one GROUPING SETS pass.
q(f'''CREATE TEMP TABLE demographic_counts AS
     WITH u AS (SELECT user_id, coalesce(age_bucket, 'unknown') AS ages, coalesce(gender, 'unspecified') AS genders,
                       coalesce(lower(country), 'unknown') AS countries, coalesce(metro, 'unknown') AS metros,
                       coalesce(device, 'unknown') AS devices FROM read_parquet('{data}/users.parquet')),
     m AS (SELECT user_id, account, engaged FROM facts UNION ALL SELECT user_id, 0, true FROM everyone),
     g AS (SELECT account, ages, genders, countries, metros, devices,
                  GROUPING(ages, genders, countries, metros, devices) AS g, count(*) AS t, count(*) FILTER (engaged) AS e
           FROM m JOIN u USING (user_id)
           GROUP BY GROUPING SETS ((account, ages), (account, genders), (account, countries), (account, metros),
                                   (account, devices))),
     cells AS (SELECT account, CASE g WHEN 15 THEN 'ages' WHEN 23 THEN 'genders' WHEN 27 THEN 'countries'
                                      WHEN 29 THEN 'metros' ELSE 'devices' END AS dim,
                      coalesce(ages, genders, countries, metros, devices) AS key, t, e FROM g)
     SELECT account, CASE WHEN account = 0 THEN 'P' ELSE 'T' END AS kind, dim, key, t AS n FROM cells WHERE t >= {min_cell}
     UNION ALL SELECT account, 'E', dim, key, e FROM cells WHERE account <> 0 AND e >= {min_cell}''')
# Ids back only on the final, small results.
q(f'''COPY (SELECT '' AS acct, 'P' AS kind, count(*) AS n FROM everyone
      UNION ALL SELECT a.id, 'T', count(*) FROM facts f JOIN accounts a ON f.account = a.k GROUP BY a.id
      UNION ALL SELECT a.id, 'E', count(*) FILTER (f.engaged) FROM facts f JOIN accounts a ON f.account = a.k
        GROUP BY a.id HAVING count(*) FILTER (f.engaged) > 0) TO '{out}/sizes.parquet' ''')
q(f'''COPY (SELECT coalesce(a.id, '') AS acct, c.kind, i.id AS interest_id, c.n FROM interest_counts c
      LEFT JOIN accounts a ON c.account = a.k JOIN interests i ON c.interest = i.k) TO '{out}/interests.parquet' ''')
q(f'''COPY (SELECT coalesce(a.id, '') AS acct, c.kind, c.dim, c.key, c.n FROM demographic_counts c
      LEFT JOIN accounts a ON c.account = a.k) TO '{out}/demographics.parquet' ''')
"""

#: The hand-written anchors: each is run as ``python -c SCRIPT data start end min_cell
#: memory_limit spill_dir out_dir`` and writes sizes, interests and demographics to ``out_dir``.
CONTENDERS = {"pinsights": "", "simple": BASELINE, "expert": EXPERT}


def same_counts(simple: Path, expert: Path) -> None:
    """The expert SQL computes exactly the simple SQL's counts, count for count (or the benchmark
    stops): every audience size, interest cell and demographic cell, compared as rows."""
    import duckdb  # the benchmark's own process; the contenders import it themselves

    con = duckdb.connect()
    for name in ("sizes", "interests", "demographics"):
        ours, theirs = (
            f"(SELECT * FROM read_parquet('{d}/{name}.parquet'))" for d in (simple, expert)
        )
        rows = con.execute(f"SELECT count(*) FROM {ours}").fetchall()[0][0]
        differ = con.execute(
            f"SELECT count(*) FROM (({ours} EXCEPT ALL {theirs}) UNION ALL ({theirs} EXCEPT ALL {ours}))"
        ).fetchall()[0][0]
        assert differ == 0 and rows > 0, (
            f"expert SQL {name}: {differ} of {rows} rows differ from the simple SQL's"
        )
    con.close()


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
    print(f"{'events':>11} {'users':>10} {'pinsights s':>12} {'simple s':>9} {'expert s':>9} "
          f"{'/simple':>8} {'/expert':>8} {'cpu /simple':>11} {'cpu /expert':>11} "
          f"{'RSS MiB':>8} {'simple':>7} {'expert':>7} {'load before/after':>17}")  # fmt: skip
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    results = []
    for events in [int(s) for s in args.sizes.split(",")]:
        users = max(round(events * args.users_per_event), 1000)
        data, end = ensure_dataset(args.data_dir, events, users)
        window = [
            (end - dt.timedelta(days=29)).isoformat(),
            (end + dt.timedelta(days=1)).isoformat(),
        ]
        best = {name: (float("inf"), 0.0, 0) for name in CONTENDERS}
        load_before = os.getloadavg()[0]
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.data_dir) as store:
                ours = run_measured(
                    [sys.executable, "-m", "pinsights.cli", "build", "--data", str(data),
                     "--store", store, "--json", *limit],
                    env,
                )  # fmt: skip
            best["pinsights"] = min(best["pinsights"], ours)
            with tempfile.TemporaryDirectory(dir=args.data_dir) as work:
                for name in ("simple", "expert"):
                    spill, out = Path(work, f"{name}-spill"), Path(work, name)
                    out.mkdir()
                    best[name] = min(best[name], run_measured(
                        [sys.executable, "-c", CONTENDERS[name], str(data), *window, "10",
                         args.memory_limit, str(spill), str(out)],
                        env,
                    ))  # fmt: skip
                same_counts(Path(work, "simple"), Path(work, "expert"))
        (ours_s, ours_cpu, ours_rss), (base_s, base_cpu, base_rss), (expert_s, expert_cpu, expert_rss) = (
            best["pinsights"], best["simple"], best["expert"]
        )  # fmt: skip
        load_after = os.getloadavg()[0]
        row = {
            "events": events,
            "users": users,
            "pinsights_s": round(ours_s, 2),
            "baseline_s": round(base_s, 2),
            "expert_s": round(expert_s, 2),
            "ratio": round(ours_s / base_s, 2),
            "expert_ratio": round(ours_s / expert_s, 2),
            "pinsights_cpu_s": round(ours_cpu, 2),
            "baseline_cpu_s": round(base_cpu, 2),
            "expert_cpu_s": round(expert_cpu, 2),
            "cpu_ratio": round(ours_cpu / base_cpu, 2),
            "expert_cpu_ratio": round(ours_cpu / expert_cpu, 2),
            "events_per_s": round(events / ours_s),
            "ns_per_event": round(ours_s / events * 1e9),
            "pinsights_rss_mib": ours_rss,
            "baseline_rss_mib": base_rss,
            "expert_rss_mib": expert_rss,
            "memory_limit": args.memory_limit or None,
            "load_before": load_before,
            "load_after": load_after,
        }
        results.append(row)
        print(f"{events:>11,} {users:>10,} {ours_s:>12.2f} {base_s:>9.2f} {expert_s:>9.2f} "
              f"{row['ratio']:>8.2f} {row['expert_ratio']:>8.2f} {row['cpu_ratio']:>11.2f} "
              f"{row['expert_cpu_ratio']:>11.2f} {ours_rss:>8} {base_rss:>7} {expert_rss:>7} "
              f"{load_before:>8.1f}/{load_after:<8.1f}",
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
