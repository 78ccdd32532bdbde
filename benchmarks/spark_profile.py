"""Profile: where a Spark build's time goes, by build step and by JVM thread family, in one command.

One ``pinsights build --engine spark`` runs in this process (on your checkout's code) with Spark's
event log on. It prints:

- wall seconds of the start (imports, JVM launch, session) and of each build step;
- per step: Spark jobs, SQL executions, their task CPU and the garbage collector's time inside
  tasks (from the event log's task metrics) — a step with many executions and little task CPU
  pays Spark's fixed cost per query (planning, code generation, scheduling);
- the JVM's CPU seconds by thread family (from ``/proc`` just before the session stops): task
  threads, the JIT compilers (C1 and C2 apart), the garbage collector, the py4j threads where the
  driver plans and generates code for Python's calls, and the rest;
- the JIT's compilations (``jcmd PerfCounter.print``, when the JDK's ``jcmd`` is there);
- with ``--detail``, one line per SQL execution (seconds, jobs, task CPU, GC, description).

CPU seconds are what to compare on a shared machine (wall time moves with the neighbours): run a
change and its baseline one after the other, several times, alternating. Usage::

    python benchmarks/spark_profile.py /work/bench-data/events-10000000 [--master local[2]]
        [--conf KEY=VALUE]... [--java-options=-XX:...] [--detail] [--json]

``--java-options=…`` (with ``=``: the value starts with a dash) are appended to the build's own
local-master JVM options (the collector), where ``--conf spark.driver.extraJavaOptions=…`` would
replace them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.time()

from pinsights.data.sources import input_bytes  # noqa: E402
from pinsights.engine.settings import BuildSettings  # noqa: E402
from pinsights.engine.spark.class_archive import class_archive  # noqa: E402
from pinsights.engine.spark.session import (  # noqa: E402
    JAVA_OPTIONS,
    SparkSettings,
    check_java,
    defaults,
    parse_conf,
    start_session,
    stop_session,
)
from pinsights.store.publish import build  # noqa: E402

#: JVM thread names (as /proc shows them, 15 characters) by the family they belong to.
THREAD_FAMILIES = (
    ("tasks", re.compile(r"^Executor task")),
    ("JIT C2", re.compile(r"^C2 Compiler")),
    ("JIT C1", re.compile(r"^C1 Compiler")),
    ("GC", re.compile(r"^(GC Thread|VM Thread|ParGC|G1 )")),
    ("py4j/driver", re.compile(r"^Thread-\d+$")),
    ("main", re.compile(r"^java$")),
)


def jvm_pids() -> list[int]:
    """The JVMs this process started (the py4j gateway's java is our child)."""
    me, found = str(os.getpid()), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and b"java" in command:
            found.append(int(entry))
    return found


def thread_cpu(pid: int) -> collections.Counter[str]:
    """CPU seconds (user + system) of each thread family of JVM ``pid``."""
    ticks, families = os.sysconf("SC_CLK_TCK"), collections.Counter[str]()
    for thread in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{thread}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        family = next((f for f, pattern in THREAD_FAMILIES if pattern.match(name)), "other")
        families[family] += (int(fields[11]) + int(fields[12])) / ticks
    return families


def compilations(pid: int) -> dict[str, float]:
    """The JIT's counters (compiled methods, OSR compilations, compile seconds), via jcmd."""
    jcmd = shutil.which("jcmd")
    if jcmd is None:
        return {}
    printed = subprocess.run(
        [jcmd, str(pid), "PerfCounter.print"], capture_output=True, text=True, check=False
    ).stdout
    counters = dict(re.findall(r"^(\S+)=(\S+)$", printed, flags=re.M))
    frequency = float(counters.get("sun.os.hrt.frequency", 1e9))
    wanted = {
        "compiles": "sun.ci.standardCompiles",
        "osr compiles": "sun.ci.osrCompiles",
        "compiling s (elapsed)": "java.ci.totalTime",
        "bytes compiled": "sun.ci.standardBytes",
        "nmethod KiB": "sun.ci.nmethodSize",
    }
    out = {}
    for label, key in wanted.items():
        if key in counters:
            value = float(counters[key])
            out[label] = round(value / frequency, 2) if label.startswith("compiling") else value
    if "nmethod KiB" in out:
        out["nmethod KiB"] = round(out["nmethod KiB"] / 1024)
    return out


def read_event_log(directory: Path) -> list[dict[str, Any]]:
    events = []
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith("."):  # Hadoop's .crc files
            with path.open() as lines:
                events.extend(json.loads(line) for line in lines)
    return events


def per_execution(events: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    """Jobs, time, task CPU and GC per SQL execution (None: jobs outside any, e.g. checkpoints)."""
    stage_execution: dict[int, str | None] = {}
    executions: dict[str | None, dict[str, Any]] = collections.defaultdict(
        lambda: {"jobs": 0, "tasks": 0, "task_cpu": 0.0, "gc": 0.0, "start": None, "end": None}
    )
    job_starts: dict[int, tuple[str | None, float]] = {}
    for event in events:
        kind = event["Event"]
        if kind == "SparkListenerJobStart":
            execution = event.get("Properties", {}).get("spark.sql.execution.id")
            for stage in event["Stage IDs"]:
                stage_execution[stage] = execution
            job_starts[event["Job ID"]] = (execution, event["Submission Time"] / 1000)
            executions[execution]["jobs"] += 1
            if execution is None:
                executions[None].setdefault("job_times", []).append(event["Submission Time"] / 1000)
        elif kind.endswith("SQLExecutionStart"):
            row = executions[str(event["executionId"])]
            row["start"], row["description"] = event["time"] / 1000, event["description"][:60]
        elif kind.endswith("SQLExecutionEnd"):
            executions[str(event["executionId"])]["end"] = event["time"] / 1000
        elif kind == "SparkListenerTaskEnd":
            metrics = event.get("Task Metrics") or {}
            row = executions[stage_execution.get(event["Stage ID"])]
            row["tasks"] += 1
            row["task_cpu"] += metrics.get("Executor CPU Time", 0) / 1e9
            row["gc"] += metrics.get("JVM GC Time", 0) / 1000
    return executions


def per_step(
    events: list[dict[str, Any]], steps: list[tuple[str, float, float]]
) -> list[dict[str, Any]]:
    """Each step's jobs, SQL executions, task CPU and GC, attributed by when each job started."""
    stage_step: dict[int, str] = {}
    rows = {
        name: {"step": name, "wall": round(end - start, 2), "jobs": 0, "sql": 0, "task_cpu": 0.0,
               "gc": 0.0}
        for name, start, end in steps
    }  # fmt: skip

    def step_at(moment: float) -> str | None:
        return next((name for name, start, end in steps if start <= moment <= end), None)

    for event in events:
        kind = event["Event"]
        if kind == "SparkListenerJobStart":
            name = step_at(event["Submission Time"] / 1000)
            if name is not None:
                rows[name]["jobs"] += 1
                for stage in event["Stage IDs"]:
                    stage_step[stage] = name
        elif kind.endswith("SQLExecutionStart"):
            name = step_at(event["time"] / 1000)
            if name is not None:
                rows[name]["sql"] += 1
        elif kind == "SparkListenerTaskEnd" and event["Stage ID"] in stage_step:
            metrics = event.get("Task Metrics") or {}
            row = rows[stage_step[event["Stage ID"]]]
            row["task_cpu"] += metrics.get("Executor CPU Time", 0) / 1e9
            row["gc"] += metrics.get("JVM GC Time", 0) / 1000
    for row in rows.values():
        row["task_cpu"], row["gc"] = round(row["task_cpu"], 2), round(row["gc"], 2)
    return list(rows.values())


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a dataset directory (e.g. bench-data/events-…)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--conf", action="append", default=[], help="KEY=VALUE, repeatable")
    parser.add_argument("--java-options", default="", help="appended to the JVM's options")
    parser.add_argument("--detail", action="store_true", help="one line per SQL execution")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="pinsights-evlog-"))
    conf = [
        ("spark.eventLog.enabled", "true"),
        ("spark.eventLog.dir", log_dir.as_uri()),
        ("spark.eventLog.compress", "false"),
        *parse_conf(args.conf),
    ]
    if args.java_options:
        base = defaults(args.master, input_bytes(args.data)).get(JAVA_OPTIONS, "")
        conf.append((JAVA_OPTIONS, f"{base} {args.java_options}".strip()))
    load_before = os.getloadavg()
    # The class archive as a build uses it (PINSIGHTS_SPARK_CLASS_ARCHIVE=off: without).
    classes = class_archive(check_java()) if args.master.startswith("local") else None
    settings = SparkSettings(master=args.master, conf=tuple(conf))
    session, spark_log = start_session(
        settings, classes=classes, input_bytes=input_bytes(args.data)
    )
    marks: list[tuple[str, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="pinsights-profile-store-") as store:
            options = BuildSettings(data_dir=args.data, store_dir=Path(store), engine="spark")
            report = build(options, on_step=lambda name: marks.append((name, time.time())))
        finished = time.time()
        pid = jvm_pids()[0]
        threads = thread_cpu(pid)
        compiled = compilations(pid)
    finally:
        stop_session(session, classes)
        if spark_log is not None:
            spark_log.unlink(missing_ok=True)
    events = read_event_log(log_dir)
    shutil.rmtree(log_dir, ignore_errors=True)
    first_step = marks[0][1]
    steps = [
        (name, moment, marks[i + 1][1] if i + 1 < len(marks) else finished)
        for i, (name, moment) in enumerate(marks)
    ]
    executions = per_execution(events)
    result = {
        "data": str(args.data),
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "wall_s": round(finished - STARTED, 2),
        "start_s": round(first_step - STARTED, 2),
        "python_cpu_s": round(process_cpu(), 1),
        "jvm_cpu_s": round(sum(threads.values()), 1),
        "jvm_threads_cpu_s": {k: round(v, 1) for k, v in threads.most_common()},
        "jit": compiled,
        "class_archive": "off" if classes is None else "recorded" if classes.recording else "used",
        "steps": per_step(events, steps),
        "sql_executions": sum(1 for k in executions if k is not None),
        "jobs": sum(row["jobs"] for row in executions.values()),
        "task_cpu_s": round(sum(row["task_cpu"] for row in executions.values()), 1),
        "task_gc_s": round(sum(row["gc"] for row in executions.values()), 1),
        "report_timings": report.get("timings", {}),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.data}: wall {result['wall_s']} s (start {result['start_s']}), python CPU "
          f"{result['python_cpu_s']} s, JVM CPU {result['jvm_cpu_s']} s; load average "
          f"{' '.join(map(str, result['load_average'][:3]))} -> "
          f"{' '.join(map(str, result['load_average'][3:]))}")  # fmt: skip
    print("class archive:", result["class_archive"], end="; ")
    print("JVM CPU by thread family:",
          ", ".join(f"{k} {v}" for k, v in result["jvm_threads_cpu_s"].items()))  # fmt: skip
    if compiled:
        print("JIT:", ", ".join(f"{k} {v:g}" for k, v in compiled.items()))
    print(f"SQL executions {result['sql_executions']}, jobs {result['jobs']}, task CPU "
          f"{result['task_cpu_s']} s of which GC {result['task_gc_s']} s")  # fmt: skip
    print(f"{'step':12} {'wall s':>7} {'jobs':>5} {'sql':>4} {'task CPU s':>10} {'GC s':>6}")
    for row in result["steps"]:
        print(f"{row['step']:12} {row['wall']:>7} {row['jobs']:>5} {row['sql']:>4} "
              f"{row['task_cpu']:>10} {row['gc']:>6}")  # fmt: skip
    if args.detail:
        print(f"{'execution':>9} {'s':>6} {'jobs':>4} {'task CPU':>8} {'GC':>5}  description")
        for key, row in sorted(
            executions.items(), key=lambda item: -1 if item[0] is None else int(item[0])
        ):
            seconds = row["end"] - row["start"] if row.get("end") and row.get("start") else 0.0
            label = "none" if key is None else key
            what = row.get("description", "jobs outside SQL (checkpoints, RDD counts)")
            print(f"{label:>9} {seconds:>6.2f} {row['jobs']:>4} {row['task_cpu']:>8.2f} "
                  f"{row['gc']:>5.2f}  {what}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
