"""Digests of what a build produced: proof that a refactoring or a speed-up changed no byte served.

For a store directory, prints one sha256 per thing a user can see, with its row count:

- every table of every published snapshot (documents and category bodies included), its rows in a
  canonical order (sorted by every column), the build id and timings taken out of ``meta``;
- the quarantined rows (``quarantine.duckdb``), sorted the same way;
- every build report (and with ``--report`` the build's ``--json`` output), without what differs between two runs of the same build (build id,
  timings, seconds, rates, peak memory, publish time).

Two stores built from the same data with the same options print the same lines whatever the
code that built them, so comparing two outputs (``diff``) shows whether behaviour changed::

    python benchmarks/digests.py STORE [--json]

A generated platform is all Parquet and all valid, so it exercises neither the text readers nor
the quarantine. ``--messy SRC DST`` makes a companion dataset: SRC's files linked (not copied)
into DST plus, among the events, a gzipped CSV file and a JSON Lines file of a few thousand rows
copied from SRC's first events file, with bad values, unknown references and malformed lines
mixed in (deterministically: the same SRC gives the same bytes)::

    python benchmarks/digests.py --messy bench-data/events-2000000 bench-data/messy-2000000
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import duckdb

#: Report keys that differ between two runs of one build (ids, clocks, memory, how it read).
#: ``refresh`` says how the input was read (incremental or full, and why), not what was built.
VOLATILE = {"build_id", "timings", "seconds", "events_per_second", "peak_rss_bytes", "refresh"}


def canonical(value: Any) -> Any:
    """A value as JSON can hold it, bytes as hex: the same value always serialises alike."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def rows_digest(rows: list[tuple[Any, ...]]) -> tuple[str, int]:
    lines = sorted(json.dumps(canonical(list(row)), sort_keys=True) for row in rows)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest(), len(lines)


def without_volatile(report: Any) -> Any:
    if isinstance(report, dict):
        return {k: without_volatile(v) for k, v in report.items() if k not in VOLATILE}
    if isinstance(report, list):
        return [without_volatile(v) for v in report]
    return report


def snapshot_digests(path: Path) -> dict[str, tuple[str, int]]:
    """Digests of a snapshot file of either format (format 2, SQLite, keeps booleans as 0/1:
    read back as booleans, so that the same snapshot digests alike in both formats)."""
    from pinsights.store.snapshot import SnapshotFile

    out: dict[str, tuple[str, int]] = {}
    sqlite = path.suffix == ".sqlite"
    opened = (
        SnapshotFile(path).connection() if sqlite else duckdb.connect(str(path), read_only=True)
    )
    with contextlib.closing(opened) as con:
        listing = "SELECT name FROM sqlite_master WHERE type = 'table'" if sqlite else "SHOW TABLES"
        tables = sorted(row[0] for row in con.execute(listing).fetchall())
        for table in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            if sqlite and table == "audiences":
                rows = [(*row[:3], bool(row[3]), *row[4:]) for row in rows]
            if table == "meta":
                rows = [
                    (key, json.dumps(without_volatile(json.loads(value)), sort_keys=True))
                    if key == "report"
                    else (key, value)
                    for key, value in rows
                    if key != "build_id"
                ]
            out[table] = rows_digest(rows)
    return out


def store_digests(store: Path) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    manifest = json.loads((store / "manifest.json").read_text())
    for entry in sorted(manifest["snapshots"], key=lambda e: e["date"]):
        for table, value in snapshot_digests(store / entry["file"]).items():
            out[f"snapshot {entry['date']} {table}"] = value
    quarantine = store / "quarantine.duckdb"
    if quarantine.exists():
        with contextlib.closing(duckdb.connect(str(quarantine), read_only=True)) as con:
            out["quarantine"] = rows_digest(con.execute("SELECT * FROM quarantine").fetchall())
    reports = []
    for path in sorted((store / "reports").glob("*.json")):
        report = without_volatile(json.loads(path.read_text()))
        reports.append((json.dumps(report, sort_keys=True),))
    out["reports"] = rows_digest(reports)
    return out


def make_messy(source: Path, target: Path, rows: int = 3000) -> None:
    """Link ``source`` into ``target`` and add text files of events, some of them bad."""
    import gzip

    import pyarrow.parquet as pq

    files = sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        linked = target / path.relative_to(source)
        linked.parent.mkdir(parents=True, exist_ok=True)
        if not linked.exists():
            os.link(path, linked)
    first = next(p for p in files if p.relative_to(source).parts[0] == "events")
    events = pq.read_table(first).slice(0, rows).to_pylist()
    lines = ["event_time,user_id,pin_id,event_type"]
    jsonl = []
    for i, event in enumerate(events):
        when = event["event_time"].isoformat()
        user, pin, kind = event["user_id"], event["pin_id"], event["event_type"]
        if i % 97 == 1:
            kind = "LIKE"  # bad_value
        elif i % 89 == 2:
            pin = 7  # unknown_reference
        elif i % 83 == 3:
            when = "yesterday"  # bad_value
        if i % 2:
            lines.append(f"{when},{user},{pin},{kind}")
        else:
            record = {"event_time": when, "user_id": user, "pin_id": str(pin), "event_type": kind}
            jsonl.append(json.dumps(record))
        if i % 211 == 4:
            lines.append(f"{when},{user},only three fields")  # malformed
            jsonl.append("[1, 2, 3]")  # malformed: not an object
    extra = target / "events" / "extra"
    extra.mkdir(parents=True, exist_ok=True)
    (extra / "late.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    (extra / "late.jsonl").write_text("\n".join(jsonl) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, nargs="?")
    parser.add_argument("--json", action="store_true", help="One JSON object instead of lines.")
    parser.add_argument("--messy", nargs=2, type=Path, metavar=("SRC", "DST"))
    parser.add_argument(
        "--report", type=Path, help="Also digest this file: `pinsights build --json`'s output."
    )
    args = parser.parse_args()
    if args.messy:
        make_messy(*args.messy)
        return
    if args.store is None:
        parser.error("the store to digest is required")
    digests = store_digests(args.store)
    if args.report is not None:
        printed = without_volatile(json.loads(args.report.read_text()))
        digests["build --json"] = rows_digest([(json.dumps(printed, sort_keys=True),)])
    if args.json:
        json.dump({k: {"sha256": d, "rows": n} for k, (d, n) in digests.items()}, sys.stdout)
        print()
        return
    for name, (digest, rows) in digests.items():
        print(f"{name:<40} {digest} rows={rows}")


if __name__ == "__main__":
    main()
