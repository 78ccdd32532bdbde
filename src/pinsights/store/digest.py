"""Digests of what a build published: one sha256 per thing a user can see, with its row count.

Two stores built from the same input with the same options digest alike whatever the code (or the
engine) that built them, so comparing digests shows whether anything served changed. Used by
``pinsights store check --deep`` (a store against a full build of its inputs) and by
``benchmarks/digests.py`` (a store before and after a change to the code).

- every table of a snapshot file (documents and category bodies included), its rows in a
  canonical order (sorted), the build id and what differs between two runs taken out of ``meta``;
- the quarantined rows (``quarantine.duckdb``), sorted the same way;
- build reports, without what differs between two runs of the same build (:data:`VOLATILE`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from pinsights.store.snapshot import SnapshotFile

#: Report keys that differ between two runs of one build (ids, clocks, memory, how it read).
#: ``refresh`` says how the input was read (incremental or full, and why), not what was built.
VOLATILE = frozenset(
    {"build_id", "timings", "seconds", "events_per_second", "peak_rss_bytes", "refresh"}
)
#: A digest and the number of rows it covers.
Digest = tuple[str, int]


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


def rows_digest(rows: Iterable[tuple[Any, ...]]) -> Digest:
    lines = sorted(json.dumps(canonical(list(row)), sort_keys=True) for row in rows)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest(), len(lines)


def without_volatile(report: Any, volatile: frozenset[str] = VOLATILE) -> Any:
    if isinstance(report, dict):
        return {k: without_volatile(v, volatile) for k, v in report.items() if k not in volatile}
    if isinstance(report, list):
        return [without_volatile(v, volatile) for v in report]
    return report


def snapshot_digests(path: Path, volatile: frozenset[str] = VOLATILE) -> dict[str, Digest]:
    """Digests of a snapshot file of any format, by table (formats 2 and 3, SQLite, keep booleans
    as 0/1: read back as booleans, so that a snapshot digests alike in every format)."""
    out: dict[str, Digest] = {}
    sqlite = path.suffix == ".sqlite"
    snapshot_file = SnapshotFile(path) if sqlite else None
    opened = (
        snapshot_file.connection()
        if snapshot_file is not None
        else duckdb.connect(str(path), read_only=True)
    )
    with contextlib.closing(opened) as con:
        if snapshot_file is not None:  # format 3's documents are a view of the locator + bodies
            tables = sorted(snapshot_file.table_names())
        else:
            tables = sorted(row[0] for row in con.execute("SHOW TABLES").fetchall())
        for table in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            if sqlite and table == "audiences":
                rows = [(*row[:3], bool(row[3]), *row[4:]) for row in rows]
            if table == "meta":
                rows = [
                    (key, json.dumps(without_volatile(json.loads(value), volatile), sort_keys=True))
                    if key == "report"
                    else (key, value)
                    for key, value in rows
                    if key != "build_id"
                ]
            out[table] = rows_digest(rows)
    return out


def quarantine_digest(path: Path) -> Digest | None:
    """The quarantined rows of a quarantine file; None when there is none."""
    if not path.exists():
        return None
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        return rows_digest(con.execute("SELECT * FROM quarantine").fetchall())
