"""Benchmark: a backfill of N dates in one `pinsights build --dates` run beside N one-date runs.

One run reads and checks the input once and then computes each date; N runs read and check it N
times. Both publish the same N snapshots (byte-identical documents, asserted). The platform is
generated once (cached under ``bench-data/``); each contender runs in fresh processes, alternating,
``--repeat`` times, into a fresh store. Prints the best wall time of each and their ratio. Usage::

    python benchmarks/backfill.py [--events 2000000] [--dates 7] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
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
END = dt.date(2026, 11, 20)


def pinsights(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pinsights.cli", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def dataset(events: int) -> Path:
    out = DATA / f"backfill-{events}"
    if not (out / "events").exists():
        shutil.rmtree(out, ignore_errors=True)
        users = max(1_000, events // 50)
        pinsights(
            "generate", str(out), "--users", str(users), "--accounts", "200", "--days", "40",
            "--end-date", END.isoformat(), "--events", str(events), "--seed", "1",
        )  # fmt: skip
    return out


def documents(store: Path) -> str:
    """A digest of every served document of every date."""
    from pinsights.store import Store

    digest = hashlib.sha256()
    snapshots = sorted(Store(store).all_snapshots(), key=lambda snapshot: snapshot.date)
    for snapshot in snapshots:  # either format: the store opens each file with its reader
        rows = (
            snapshot._cursor()
            .execute("SELECT ad_account_id, insight_type, body FROM documents ORDER BY 1, 2")
            .fetchall()
        )
        for account, kind, body in rows:
            digest.update(f"{snapshot.date.isoformat()}|{account}|{kind}|".encode() + bytes(body))
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--dates", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    data = dataset(args.events)
    days = [END - dt.timedelta(days=n) for n in range(args.dates - 1, -1, -1)]
    best = {"one run": float("inf"), "one run per date": float("inf")}
    digests = {}
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(args.repeat):
            for name in best:
                store = Path(scratch) / f"{name}-{attempt}".replace(" ", "-")
                started = time.perf_counter()
                if name == "one run":
                    pinsights("build", "--data", str(data), "--store", str(store),
                              "--dates", f"{days[0]}..{days[-1]}")  # fmt: skip
                else:
                    for day in days:
                        pinsights("build", "--data", str(data), "--store", str(store),
                                  "--date", day.isoformat())  # fmt: skip
                best[name] = min(best[name], time.perf_counter() - started)
                digests[name] = documents(store)
    assert len(set(digests.values())) == 1, "both ways must publish the same documents"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    print(f"{args.events:,} events, {args.dates} dates, best of {args.repeat}")
    for name, seconds in best.items():
        print(f"  {name:<18} {seconds:8.1f} s   {seconds / args.dates:6.1f} s per date")
    ratio = best["one run per date"] / best["one run"]
    print(f"  one run is {ratio:.2f}x faster than one run per date")


if __name__ == "__main__":
    main()
