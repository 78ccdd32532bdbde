"""Profile: where a DuckDB build's CPU and memory go, statement by statement, in one command.

One ``pinsights build`` runs in this process (on your checkout's code). Every statement the
DuckDB backend runs (each materialised intermediate table, each result handed to Python) is
timed by wall and by process CPU seconds (all threads), and the process's resident memory is
sampled every 20 ms: each line shows the peak while the statement ran and the memory after it.
The build's steps are marked where they start. Interpreter start and imports are not part of the
figures (printed apart), so this answers "which query costs what", and ``benchmarks/build.py``
"how does the whole process compare".

CPU seconds are what to compare on a shared machine (wall time moves with the neighbours): run a
change and its baseline one after the other, several times, alternating. ``--refresh off`` builds
without reading or writing the incremental refresh's state (a plain full build); ``--store S``
builds on a copy of the store S (with its refresh state, so the build is incremental: make one with
``benchmarks/refresh.py``, whose scratch directory keeps ``data`` and ``store-previous``). Usage::

    python benchmarks/duckdb_profile.py /work/bench-data/events-20000000 [--refresh off] [--json]
    python benchmarks/duckdb_profile.py DIR/data --store DIR/store-previous

``--expert`` profiles the expert anchor of ``benchmarks/build.py`` instead (its SQL, the same
counts; for a generated dataset, all Parquet), each of its statements timed the same way in this
process, over the build's window (the latest event's UTC day and ``--window-days`` before it):
its pieces beside the build's, statement by statement (run the two one after the other)::

    python benchmarks/duckdb_profile.py /work/bench-data/events-20000000 --expert

``--split`` also divides the build's CPU into the statements (all threads), compiling Ibis
expressions to SQL (``sql_of``, the CPU of the thread that compiles), and the Python of the main
thread outside both, by function (the CPU of that thread alone, so the engine's threads are not
counted in it): where the fixed costs of a build go.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

started_cpu = time.process_time()
from pinsights.engine.duckdb import backend as duckdb_backend  # noqa: E402
from pinsights.engine.settings import BuildSettings  # noqa: E402
from pinsights.store.publish import build  # noqa: E402

IMPORTS_CPU = time.process_time() - started_cpu


class Memory:
    """The process's resident memory, sampled on a thread: the peak since the last reading."""

    def __init__(self) -> None:
        self.peak = 0
        threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def now() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) // 1024
        return 0

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            time.sleep(0.02)

    def reading(self) -> tuple[int, int]:
        """(peak since the last reading, now) in MiB."""
        peak, self.peak = max(self.peak, self.now()), 0
        return peak, self.now()


def recorded(
    memory: Memory, lines: list[dict[str, Any]], what: Callable[[], Any], name: Callable[[Any], str]
) -> Any:
    """Run ``what``; a line of its wall and CPU seconds and memory, named by ``name(result)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = what()
    peak, now = memory.reading()
    lines.append(
        {
            "what": name(result),
            "wall_s": round(time.perf_counter() - wall, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
            "peak_mib": peak,
            "rss_mib": now,
        }
    )
    return result


def profiled(memory: Memory, lines: list[dict[str, Any]]) -> None:
    """Wrap the DuckDB backend's two ways of running a query to record each one."""
    backend = duckdb_backend.DuckDBBackend

    def timed(what: Callable[[], Any], name: Callable[[Any], str]) -> Any:
        return recorded(memory, lines, what, name)

    execute_all, to_arrow, execute = backend._execute_all, backend.to_arrow, backend.execute

    def _execute_all(self: Any, statements: list[str]) -> None:
        tables = [re.match(r'CREATE OR REPLACE TABLE "([^"]+)"', s) for s in statements]
        names = "+".join(m.group(1) if m else "?" for m in tables)
        timed(lambda: execute_all(self, statements), lambda _: f"table {names}")

    def _to_arrow(self: Any, expr: Any) -> Any:
        return timed(
            lambda: to_arrow(self, expr),
            lambda result: (
                f"result {result.num_rows:,} rows ({', '.join(result.column_names[:4])})"
            ),
        )

    def _execute(self: Any, sql: str) -> None:
        target = re.search(r"\) TO '([^']+)'", sql)
        where = Path(target.group(1)).name if target else sql[:40]
        timed(lambda: execute(self, sql), lambda _: f"statement {sql.split()[0]} {where}")

    backend._execute_all = _execute_all  # type: ignore[method-assign]
    backend.execute = _execute  # type: ignore[method-assign]
    backend.to_arrow = _to_arrow  # type: ignore[method-assign]


#: The main thread's Python that ``--split`` times by function: (module, owner, function).
SPLIT_FUNCTIONS = (
    ("pinsights.engine.build", None, "start_backend"),
    ("pinsights.engine.steps.counts", "Counting", "__init__"),
    ("pinsights.engine.steps.counts", "Counting", "finish"),
    ("pinsights.engine.steps.documents", None, "prepare"),
    ("pinsights.engine.steps.documents", None, "write"),
    ("pinsights.engine.refresh.state", None, "digest_file"),
    ("pinsights.store.publish", "StorePublisher", "publish_snapshot"),
)


class Split:
    """``--split``: statements, compiling and the main thread's Python of one build, CPU s."""

    def __init__(self) -> None:
        self.compile = self.main_compile = self.main_statements = 0.0
        self.functions: dict[str, float] = {}
        self.local = threading.local()
        self.main = threading.main_thread()
        backend = duckdb_backend.DuckDBBackend
        for name in ("_execute_all", "execute", "to_arrow", "scalar", "release", "raw_table"):
            setattr(backend, name, self._statement(getattr(backend, name)))
        compile_ = duckdb_backend.sql_of
        duckdb_backend.sql_of = self._compiling(compile_)
        for module_name, owner_name, name in SPLIT_FUNCTIONS:
            module = importlib.import_module(module_name)
            owner = getattr(module, owner_name) if owner_name else module
            original = getattr(owner, name)
            timed = self._function(f"{owner_name + '.' if owner_name else ''}{name}", original)
            setattr(owner, name, timed)
            if owner_name is None:  # and where it was imported by name
                for other in list(sys.modules.values()):
                    ours = getattr(other, "__name__", "").startswith("pinsights")
                    if ours and getattr(other, name, None) is original:
                        setattr(other, name, timed)

    def _compiling(self, original: Callable[..., str]) -> Callable[..., str]:
        def compiled(*args: Any) -> str:
            started = time.thread_time()
            try:
                return original(*args)
            finally:
                spent = time.thread_time() - started
                self.local.compiled = getattr(self.local, "compiled", 0.0) + spent
                self.compile += spent
                if threading.current_thread() is self.main:
                    self.main_compile += spent

        return compiled

    def _statement(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def statement(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self.local, "depth", 0)
            compiled = getattr(self.local, "compiled", 0.0)
            self.local.depth, started = depth + 1, time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.local.depth = depth
                if depth == 0 and threading.current_thread() is self.main:
                    spent = time.thread_time() - started
                    self.main_statements += spent - (
                        getattr(self.local, "compiled", 0.0) - compiled
                    )

        return statement

    def _function(self, label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def function(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not self.main:
                return original(*args, **kwargs)
            started, before = time.thread_time(), self.main_statements + self.main_compile
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                spent -= self.main_statements + self.main_compile - before
                self.functions[label] = self.functions.get(label, 0.0) + spent

        return function

    def print(self, cpu: float, main_thread: float) -> None:
        python = main_thread - self.main_statements - self.main_compile
        print(f"statements (all threads) {cpu - python - self.compile:7.2f} CPU s")
        print(f"compiling to SQL         {self.compile:7.2f}")
        print(f"Python, main thread      {python:7.2f}, of which (nested ones apart):")
        for label, spent in sorted(self.functions.items(), key=lambda item: -item[1]):
            print(f"  {label:34} {spent:5.2f}")


def expert(data: Path, window_days: int, memory: Memory, lines: list[dict[str, Any]]) -> None:
    """Run the expert anchor's script here, every statement timed as the build's are."""
    import duckdb

    spec = importlib.util.spec_from_file_location("anchors", Path(__file__).with_name("build.py"))
    assert spec is not None and spec.loader is not None
    anchors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anchors)
    files = f"{data}/events/**/*.parquet"
    last = duckdb.sql(f"SELECT max(event_time)::DATE FROM read_parquet('{files}')").fetchall()[0][0]
    start, end = last - dt.timedelta(days=window_days - 1), last + dt.timedelta(days=1)

    def statement(con: Any) -> Callable[..., Any]:
        def timed(sql: str, *parameters: Any) -> Any:
            what = " ".join(sql.split())[:60]
            return recorded(memory, lines, lambda: con.execute(sql, *parameters), lambda _: what)

        return timed

    script = anchors.EXPERT.replace("q = con.execute", "q = statement(con)")
    with tempfile.TemporaryDirectory(prefix="duckdb-profile-expert-") as out:
        sys.argv = ["expert", str(data), start.isoformat(), end.isoformat(), "10", "", out, out]
        exec(script, {"statement": statement, "__name__": "expert"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--refresh", default="auto", help="auto (the default), full or off")
    parser.add_argument("--json", action="store_true", help="Print the lines as JSON too.")
    parser.add_argument(
        "--store",
        type=Path,
        help="build on a copy of this store (with its refresh state: an incremental build)",
    )
    parser.add_argument(
        "--window-days",
        type=int,
        default=30,
        help="the build's window (a store's own, for --store)",
    )
    parser.add_argument(
        "--cprofile", type=int, default=0, help="also print the N costliest Python functions"
    )
    parser.add_argument(
        "--expert", action="store_true", help="profile benchmarks/build.py's expert SQL instead"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="also split the build's CPU: statements, compiling, the main thread's Python",
    )
    args = parser.parse_args()
    memory = Memory()
    lines: list[dict[str, Any]] = []
    wall, cpu = time.perf_counter(), time.process_time()
    if args.expert:
        expert(args.data, args.window_days, memory, lines)
        print_lines(lines)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(
            f"expert: {time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f}"
            f" CPU s, peak RSS {peak} MiB (this process: the build's modules are imported too)"
        )
        return
    profiled(memory, lines)
    split = Split() if args.split else None
    main_thread = time.thread_time()

    def on_step(name: str) -> None:
        peak, now = memory.reading()
        lines.append({"what": f"-- step {name}", "peak_mib": peak, "rss_mib": now})

    store = Path(tempfile.mkdtemp(prefix="duckdb-profile-"))
    if args.store is not None:  # a copy: the profiled build publishes into it
        shutil.copytree(args.store, store, dirs_exist_ok=True)
    try:
        settings = BuildSettings(
            data_dir=args.data,
            store_dir=store,
            refresh=args.refresh,
            window_days=args.window_days,
        )
        if args.cprofile:
            import cProfile
            import pstats

            with cProfile.Profile() as python_profile:
                report = build(settings, on_step=on_step)
            stats = pstats.Stats(python_profile, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(args.cprofile)
        else:
            report = build(settings, on_step=on_step)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    build_cpu, main_thread = time.process_time() - cpu, time.thread_time() - main_thread
    print(f"imports: {IMPORTS_CPU:.2f} CPU s before the build")
    print_lines(lines)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"build: {time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} CPU s,"
        f" peak RSS {peak} MiB; steps (wall s): {json.dumps(report.get('timings', {}))}"
    )
    if split is not None:
        split.print(build_cpu, main_thread)
    if args.json:
        json.dump(lines, sys.stdout, indent=2)


def print_lines(lines: list[dict[str, Any]]) -> None:
    print(f"{'wall s':>8} {'CPU s':>7} {'peak MiB':>9} {'RSS MiB':>8}  what")
    for line in lines:
        timing = f"{line['wall_s']:>8.2f} {line['cpu_s']:>7.2f}" if "cpu_s" in line else " " * 16
        print(f"{timing} {line['peak_mib']:>9} {line['rss_mib']:>8}  {line['what']}")


if __name__ == "__main__":
    main()
