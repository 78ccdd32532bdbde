"""Digests of what a build produced: proof that a refactoring or a speed-up changed no byte served.

For a store directory, prints one sha256 per thing a user can see, with its row count (the
digests themselves are ``pinsights.store.digest``'s, which ``pinsights store check --deep`` uses
too):

- every table of every published snapshot (documents and category bodies included), its rows in a
  canonical order (sorted by every column), the build id and timings taken out of ``meta``;
- the quarantined rows (``quarantine.duckdb``), sorted the same way;
- every build report (and with ``--report`` the build's ``--json`` output), without what differs
  between two runs of the same build (build id, timings, seconds, rates, peak memory, publish time).

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
import json
import os
import sys
from pathlib import Path

from pinsights.store.digest import (
    VOLATILE,
    Digest,
    quarantine_digest,
    rows_digest,
    snapshot_digests,
    without_volatile,
)


def store_digests(store: Path, volatile: frozenset[str] = VOLATILE) -> dict[str, Digest]:
    """``volatile``: the report keys left out (``store.deep.DEEP_VOLATILE`` also leaves out the
    engine that built it)."""
    out: dict[str, Digest] = {}
    manifest = json.loads((store / "manifest.json").read_text())
    for entry in sorted(manifest["snapshots"], key=lambda e: e["date"]):
        for table, value in snapshot_digests(store / entry["file"], volatile).items():
            out[f"snapshot {entry['date']} {table}"] = value
    quarantined = quarantine_digest(store / "quarantine.duckdb")
    if quarantined is not None:
        out["quarantine"] = quarantined
    reports = []
    for path in sorted((store / "reports").glob("*.json")):
        report = without_volatile(json.loads(path.read_text()), volatile)
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
