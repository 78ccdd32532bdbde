"""`pinsights store check`: verify a store the way a reader will use it, and repair what is safe.

What is verified: the manifest (readable, one entry per date, newest first); every snapshot file it
names (present, opens read-only, has every table, its recorded date and build are the manifest's,
every account has both of its documents and the shared one exists, every document is JSON of its
own type and date); the quarantine (opens, its table reads); the refresh state (every file
present with the digest its ``state.json`` records); and leftovers of killed builds.

What is repaired (only while holding the build lock, so never under a running build; never with
``--no-repair``): a sound snapshot of format 1 (DuckDB, written before format 2) is converted to
format 2 and published in its place, so that its reads are keyed too; leftovers of killed builds are removed (temporary files, snapshot files no
manifest names); a manifest entry whose file is missing or damaged is dropped from the manifest and
a damaged file (or quarantine) is moved to ``damaged/`` for inspection rather than deleted; an
unreadable manifest is rebuilt from the snapshot files themselves (each records its date and build).
A damaged refresh state is dropped (the next build is full and writes a new one), and state
directories no longer published are removed.
Everything repaired is reported; damage that remains makes the command exit with status 6.

With ``--deep`` (``deep_data``), the newest build's snapshots and the quarantine are also compared
with a full build of the data directory (:mod:`.deep`); a difference is damage too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pinsights.contract import AudienceInsightType
from pinsights.data.sources import DataPath
from pinsights.engine.documents import SHARED_ACCOUNT
from pinsights.engine.refresh.state import NO_WINDOW, StateError, load_state, write_meta
from pinsights.engine.semantics import PINTEREST_TOTAL_AUDIENCE
from pinsights.store import (
    SNAPSHOT_DIR,
    TMP_PREFIX,
    SnapshotInfo,
    Store,
    StoreError,
    StoreLockedError,
)
from pinsights.store.deep import deep_check
from pinsights.store.legacy_snapshot import read_tables
from pinsights.store.quarantine import QUARANTINE
from pinsights.store.snapshot import (
    FORMAT,
    KEYED_FORMATS,
    LEGACY_FORMAT,
    OFFSETS_TABLE,
    REGION_FORMATS,
    SUFFIXES,
    TABLE_KEYS,
    SnapshotFile,
    SnapshotFileError,
    write_snapshot_file,
)
from pinsights.store.state import STATE_DIR, current_state, drop_state, remove_stale_states

DAMAGED_DIR = "damaged"
SNAPSHOT_TABLES = tuple(TABLE_KEYS)
ACCOUNT_TYPES = (
    AudienceInsightType.YOUR_TOTAL_AUDIENCE.value,
    AudienceInsightType.YOUR_ENGAGED_AUDIENCE.value,
)


@dataclass
class CheckResult:
    store: Path
    build_running: bool = False
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    quarantine: dict[str, Any] = field(default_factory=dict)
    #: The refresh state (store/state.py): present, ok, files, bytes.
    refresh_state: dict[str, Any] = field(default_factory=dict)
    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: ``--deep``: what was recounted and compared (store/deep.py); None without ``--deep``.
    deep: dict[str, Any] | None = None
    #: Temporary files of other writers (the client registry, …): never touched here.
    other_temporaries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "store": str(self.store),
            "ok": self.ok,
            "build_running": self.build_running,
            "snapshots": self.snapshots,
            "quarantine": self.quarantine,
            "refresh_state": self.refresh_state,
            "repaired": self.repaired,
            "problems": self.problems,
            "other_temporaries": self.other_temporaries,
            **({"deep": self.deep} if self.deep is not None else {}),
        }

    def lines(self) -> list[str]:
        out = [f"store {self.store}"]
        if self.build_running:
            out.append("a build is running: checked without repairing anything")
        for snap in self.snapshots:
            state = "ok" if snap["ok"] else "DAMAGED: " + "; ".join(snap["problems"])
            out.append(f"  snapshot {snap['date']}  {snap['documents']:>7} documents  {state}")
        if not self.snapshots:
            out.append("  no published snapshot")
        quarantine = self.quarantine
        if quarantine.get("present"):
            state = "ok" if quarantine["ok"] else "DAMAGED"
            out.append(f"  quarantine  {quarantine.get('rows', '?')} rows  {state}")
        refresh = self.refresh_state
        if refresh.get("present"):
            state = "ok" if refresh["ok"] else "DAMAGED (the next build is full)"
            out.append(f"  refresh state  {refresh.get('files', '?')} event files  {state}")
        deep = self.deep
        if deep is not None and deep.get("compared"):
            found = f"{len(deep['differences'])} differ" if deep["differences"] else "all equal"
            out.append(
                f"  deep: build {deep['build_id']} ({', '.join(deep['dates'])}) against a full"
                f" build of its inputs: {deep['compared']} digests compared, {found}"
                f" (event files: {deep['inputs']})"
            )
        out += [f"  deep: {note}" for note in (deep or {}).get("notes", [])]
        out += [f"repaired: {line}" for line in self.repaired]
        out += [f"problem: {line}" for line in self.problems]
        out.append("store is sound" if self.ok else "store has problems (see above)")
        return out


def check_store(
    root: Path, *, repair: bool = True, deep_data: DataPath | None = None
) -> CheckResult:
    """Check (and unless ``repair`` is false, repair) the store at ``root``; with ``deep_data``,
    also recount its newest build from that data directory in full and compare."""
    if not root.exists():
        raise StoreError(f"no store at {root}")
    if not root.is_dir():
        raise StoreError(f"the store {root} is a file, not a store directory")
    store = Store(root)
    result = CheckResult(store=root)
    result.other_temporaries = _other_temporaries(store)
    if not (root / SNAPSHOT_DIR).is_dir() and not (root / "manifest.json").exists():
        raise StoreError(f"{root} is not a pinsights store (no manifest, no snapshots/)")
    try:
        with store.build_lock(clean=repair) as cleaned:
            result.repaired += [f"removed a leftover of a killed build: {p}" for p in cleaned]
            _check_locked(store, result, repair)
            if deep_data is not None:
                _check_deep(store, result, deep_data)
    except StoreLockedError:
        result.build_running = True
        _check_manifest_and_snapshots(store, result, repair=False, locked_out=True)
        _check_quarantine(store, result, repair=False)
        if deep_data is not None:
            result.problems.append(
                "--deep needs the store to itself and a build is running: run it again when the"
                " build has finished"
            )
    return result


def _check_deep(store: Store, result: CheckResult, data: DataPath) -> None:
    """``--deep``, under the build lock; only on a store found sound (damage comes first)."""
    if result.problems:
        result.deep = {"compared": 0, "notes": ["not recounted: the store has damage (above)"]}
        return
    found = deep_check(store, data)
    result.deep = found.to_json()
    result.problems += found.problems


def _check_locked(store: Store, result: CheckResult, repair: bool) -> None:
    _check_manifest_and_snapshots(store, result, repair=repair, locked_out=False)
    if not repair:
        leftovers = store.build_temporaries()
        with contextlib.suppress(StoreError):
            leftovers += store.orphan_snapshot_files()
        result.problems += [
            f"leftover of a killed build: {path.relative_to(store.root)}" for path in leftovers
        ]
    _check_quarantine(store, result, repair=repair)
    _check_refresh_state(store, result, repair=repair)


def _check_refresh_state(store: Store, result: CheckResult, *, repair: bool) -> None:
    """The published refresh state: every file present with its recorded digest. A damaged one
    is dropped (the next build is full and writes a new one); directories no build publishes
    any more are removed. Under the build lock only."""
    directory = current_state(store.root)
    result.refresh_state = {"present": directory is not None, "ok": True}
    stale = [
        str(path.relative_to(store.root))
        for path in sorted((store.root / STATE_DIR).glob("*"))
        if path.is_dir() and path != directory
    ]
    if stale and not repair:
        result.problems += [f"leftover refresh state of an earlier build: {path}" for path in stale]
    elif stale:
        removed = remove_stale_states(store.root)
        result.repaired += [f"removed a leftover refresh state: {path}" for path in removed]
    if directory is None:
        return
    try:
        state = load_state(directory)
    except StateError as error:
        result.refresh_state["ok"] = False
        message = f"refresh state {directory.relative_to(store.root)} unusable: {error}"
        if not repair:
            result.problems.append(message)
            return
        drop_state(store.root)
        result.repaired.append(f"{message}; dropped it (the next build is full and writes one)")
        return
    result.refresh_state.update(files=len(state.files), bytes=state.size_bytes())
    # The window part (counts carried by deltas) is never used unless whole: a damaged one costs
    # the next build a recount (which writes a new one), not a wrong count. Reported, kept.
    result.refresh_state["window"] = (
        {"date": state.window.date, "window_days": state.window.window_days}
        if state.window is not None
        else {"problem": state.window_problem}
    )
    if state.window is None and state.window_problem != NO_WINDOW:
        message = f"refresh state {directory.relative_to(store.root)}: {state.window_problem}"
        if not repair:
            result.problems.append(message)
            return
        write_meta(state)  # without the window part: the next build recounts, writes a new one
        result.repaired.append(f"{message}; dropped the window part (the next build recounts)")


def _check_manifest_and_snapshots(
    store: Store, result: CheckResult, *, repair: bool, locked_out: bool
) -> None:
    try:
        infos = store._read_manifest()
    except StoreError as error:
        if not repair:
            result.problems.append(str(error))
            return
        infos = _rebuild_manifest(store, result)
    kept: list[SnapshotInfo] = []
    dates_seen: set[Any] = set()
    changed = False
    for info in infos:
        if info.date in dates_seen:
            changed = True
            if repair:
                result.repaired.append(f"dropped a second manifest entry for {info.date}")
            else:
                result.problems.append(f"manifest names {info.date} twice")
            continue
        dates_seen.add(info.date)
        verdict = verify_snapshot(store.root / info.file, info)
        result.snapshots.append(verdict)
        if verdict["ok"] and info.format == LEGACY_FORMAT and repair and not locked_out:
            converted = _convert(store, info, retain=len(infos))
            result.repaired.append(
                f"converted snapshot {info.date} to format {FORMAT} ({converted.file}), whose"
                " reads are keyed: the same documents, byte for byte"
            )
            kept.append(converted)
            changed = True
            continue
        if verdict["ok"]:
            kept.append(info)
            continue
        changed = True
        if not repair:
            result.problems += [f"snapshot {info.date}: {p}" for p in verdict["problems"]]
            continue
        moved = _move_aside(store, store.root / info.file)
        what = f"; moved {info.file} to {moved}" if moved else ""
        result.repaired.append(
            f"dropped snapshot {info.date} from the manifest ({'; '.join(verdict['problems'])}){what}"
        )
    in_order = sorted(kept, key=lambda info: info.date, reverse=True)
    if in_order != kept:
        changed = True
        if not repair:
            result.problems.append("manifest is not in newest-first order")
    if repair and changed and not locked_out:
        store.write_manifest(in_order)
        if kept != in_order:
            result.repaired.append("rewrote the manifest newest first")
        # Snapshot files the new manifest does not name (a duplicate entry's) are leftovers.
        result.repaired += [f"removed unlisted snapshot file {p}" for p in store.remove_leftovers()]


def verify_snapshot(path: Path, info: SnapshotInfo) -> dict[str, Any]:
    """What a reader of this snapshot would trip over (an empty ``problems`` list: nothing)."""
    verdict: dict[str, Any] = {
        "date": info.date.isoformat(),
        "file": info.file,
        "format": info.format,
        "documents": 0,
        "ok": False,
        "problems": [],
    }
    problems: list[str] = verdict["problems"]
    if not path.is_file():
        problems.append(f"file {info.file} is missing")
        return verdict
    try:
        with _open_file(path, info.format) as con:
            problems += _file_problems(con, info, verdict)
    except (duckdb.Error, sqlite3.Error, SnapshotFileError, StoreError) as error:
        problems.append(f"unreadable: {str(error).splitlines()[0]}")
    verdict["ok"] = not problems
    return verdict


@contextlib.contextmanager
def _open_file(path: Path, format: int) -> Iterator[Any]:
    """A connection to a snapshot file of ``format`` (both speak ``execute(sql, params)``)."""
    if format == LEGACY_FORMAT:
        with contextlib.closing(duckdb.connect(str(path), read_only=True)) as legacy:
            yield legacy
    elif format in KEYED_FORMATS:
        snapshot_file = SnapshotFile(path)
        con = snapshot_file.connection()
        try:
            # Every page read once: a truncated or scribbled-on file fails here, not on a request.
            verdict = con.execute("PRAGMA quick_check").fetchall()
            if verdict != [("ok",)]:
                raise SnapshotFileError("; ".join(str(row[0]) for row in verdict[:3]))
            if snapshot_file.format != format:
                raise SnapshotFileError(
                    f"is a file of format {snapshot_file.format}, the manifest says {format}"
                )
            _check_body_region(snapshot_file, con)
            yield con
        finally:
            con.close()
    else:
        raise StoreError(f"format {format} is not one this pinsights reads")


def _check_body_region(snapshot_file: SnapshotFile, con: Any) -> None:
    """Formats 3 and 4: the body region ends where the last body does (a truncated file, or bytes
    appended to it, is found here: the database's own pages pass ``quick_check``); format 4's
    hash table locates every document its locator does, and no other."""
    if snapshot_file.format not in REGION_FORMATS:
        return
    start, size = snapshot_file.body_region()
    end = con.execute(
        f"SELECT coalesce(max(body_start + body_length), 0) FROM {OFFSETS_TABLE}"
    ).fetchone()[0]
    if start + end != size:
        raise SnapshotFileError(
            f"its bodies end at byte {start + end:,}, the file has {size:,}"
            + (" (truncated)" if size < start + end else "")
        )
    problem = snapshot_file.table_problem()
    if problem is not None:
        raise SnapshotFileError(problem)


def _tables(con: Any, format: int) -> set[str]:
    if format == LEGACY_FORMAT:
        return {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    names = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return (names - {OFFSETS_TABLE}) | {"documents"} if OFFSETS_TABLE in names else names


def _file_problems(con: Any, info: SnapshotInfo, verdict: dict[str, Any]) -> list[str]:
    problems = []
    tables = _tables(con, info.format)
    missing = [name for name in SNAPSHOT_TABLES if name not in tables]
    if missing:
        return [f"missing table(s) {', '.join(missing)}"]
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("date") != info.date.isoformat():
        problems.append(f"records date {meta.get('date')}, the manifest {info.date}")
    if meta.get("build_id") not in (None, info.build_id):
        problems.append(f"records build {meta.get('build_id')}, the manifest {info.build_id}")
    problems += _document_problems(con, info)
    verdict["documents"] = con.execute("SELECT count(*) FROM documents").fetchall()[0][0]
    return problems


def _document_problems(con: Any, info: SnapshotInfo) -> list[str]:
    """What is wrong with the documents; the SQL is the same for either format's connection."""
    problems = []
    missing = con.execute(
        "SELECT a.ad_account_id, t.insight_type FROM accounts a"
        " CROSS JOIN (SELECT ? AS insight_type UNION ALL SELECT ?) t"
        " WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.ad_account_id = a.ad_account_id"
        " AND d.insight_type = t.insight_type) ORDER BY 1, 2 LIMIT 3",
        list(ACCOUNT_TYPES),
    ).fetchall()
    if missing:
        problems.append("no document for " + ", ".join(f"{a} {t}" for a, t in missing))
    shared = con.execute(
        "SELECT count(*) FROM documents WHERE ad_account_id = ? AND insight_type = ?",
        [SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE],
    ).fetchall()[0][0]
    if shared != 1:
        problems.append("no PINTEREST_TOTAL_AUDIENCE document")
    bad = 0
    example = ""
    cursor = con.execute("SELECT ad_account_id, insight_type, body FROM documents")
    while batch := cursor.fetchmany(1024):  # a batch at a time: a snapshot may not fit in memory
        for account, insight_type, body in batch:
            try:
                document = json.loads(bytes(body))
                sound = document.get("type") == insight_type and document.get("date") == str(
                    info.date
                )
            except (ValueError, AttributeError):
                sound = False
            if not sound:
                bad += 1
                example = example or f"{account or '(shared)'} {insight_type}"
    if bad:
        problems.append(f"{bad} document(s) not JSON of their type and date, e.g. {example}")
    return problems


def _convert(store: Store, info: SnapshotInfo, *, retain: int) -> SnapshotInfo:
    """Rewrite a sound format-1 snapshot in format 2 and publish it in its place (same date and
    build, atomically: the manifest names the old file or the new one; the old is unlinked)."""
    tables = read_tables(store.root / info.file, info.format)
    written = store.temporary_path(f"convert-{info.build_id}{SUFFIXES[FORMAT]}")
    write_snapshot_file(written, tables)
    return store.publish(written, date=info.date, build_id=info.build_id, retain=retain)


def _rebuild_manifest(store: Store, result: CheckResult) -> list[SnapshotInfo]:
    """A manifest from the snapshot files: per date, the newest sound build's file."""
    best: dict[Any, SnapshotInfo] = {}
    directory = store.root / SNAPSHOT_DIR
    formats = {suffix: format for format, suffix in SUFFIXES.items()}  # .sqlite: 2 or 3
    found = sorted(directory.iterdir()) if directory.is_dir() else []
    for path in found:
        format = formats.get(path.suffix)
        if format is None or path.name.startswith("."):
            continue
        try:
            if format in KEYED_FORMATS:  # the file says which (its user_version)
                format = SnapshotFile(path).format
            with _open_file(path, format) as con:
                meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            info = SnapshotInfo.from_json(
                {
                    "date": meta["date"],
                    "file": f"{SNAPSHOT_DIR}/{path.name}",
                    "build_id": meta["build_id"],
                    "published_at": _mtime(path),
                    "format": format,
                }
            )
        except (duckdb.Error, sqlite3.Error, SnapshotFileError, StoreError, KeyError, ValueError):
            continue
        if not verify_snapshot(path, info)["ok"]:
            continue
        if info.date not in best or info.build_id > best[info.date].build_id:
            best[info.date] = info
    infos = sorted(best.values(), key=lambda info: info.date, reverse=True)
    moved = _move_aside(store, store.root / "manifest.json")
    store.write_manifest(infos)
    result.repaired.append(
        f"rebuilt the unreadable manifest (kept as {moved}) from {len(infos)} snapshot file(s)"
    )
    return infos


def _check_quarantine(store: Store, result: CheckResult, *, repair: bool) -> None:
    path = store.root / QUARANTINE
    result.quarantine = {"present": path.exists(), "ok": True}
    if not path.exists():
        return
    try:
        with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
            rows = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
        result.quarantine["rows"] = rows
        store.quarantine_rows(limit=1)
        return
    except (duckdb.Error, ValueError) as error:
        message = f"quarantine unreadable: {str(error).splitlines()[0]}"
    result.quarantine["ok"] = False
    if not repair:
        result.problems.append(message)
        return
    moved = _move_aside(store, path)
    result.repaired.append(f"{message}; moved it to {moved} (the next build writes a new one)")


def _other_temporaries(store: Store) -> list[str]:
    found = []
    for directory in (store.root, store.root / SNAPSHOT_DIR):
        if directory.is_dir():
            found += [
                str(path.relative_to(store.root))
                for path in sorted(directory.glob(TMP_PREFIX + "*"))
                if not path.name.startswith(TMP_PREFIX + "build-")
            ]
    return found


def _move_aside(store: Store, path: Path) -> str | None:
    """Move a damaged file to damaged/ (never delete evidence); its new relative path."""
    if not path.exists():
        return None
    target_dir = store.root / DAMAGED_DIR
    target_dir.mkdir(mode=0o700, exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        n += 1
        target = target_dir / f"{path.name}.{n}"
    os.replace(path, target)
    return str(target.relative_to(store.root))


def _mtime(path: Path) -> str:
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return stamp.isoformat(timespec="seconds")
