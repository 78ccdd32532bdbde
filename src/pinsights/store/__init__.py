"""The snapshot store: where built insight documents live and how they are published and read.

A store is a plain directory, embedded, no server::

    manifest.json                 the published snapshots, newest first (replaced atomically)
    snapshots/<date>--<id>.sqlite one immutable file per published snapshot (store/snapshot.py)
    quarantine.duckdb             the bad rows of the most recent build (also of a failed one)
    reports/<build id>.json       one build report per build (and date)
    .build.lock                   held (flock) by the running build
    .tmp-<kind>-<host>-<pid>-…    files being written, named after their owner (see below)

Why one file per snapshot and a manifest: a snapshot is written once and then only read, by any
number of processes, without locks. A build therefore writes a brand-new file under a temporary name, closes
it, renames it into ``snapshots/`` and only then swaps ``manifest.json`` with an atomic ``os.replace``.
Readers (the server, any number of processes) follow the manifest, open snapshot files read-only and
never see a half-written snapshot: a build that fails or is killed leaves the previous manifest, and so
the previous snapshot, in place. Superseded files are unlinked; a reader that still has one open keeps
reading it (POSIX semantics) until it lets go.

Temporary files carry their owner in their name: ``.tmp-build-…`` files are written only by a build,
and only while it holds ``.build.lock``; so a build that has the lock knows that every ``.tmp-build-``
file is a leftover of a build that was killed, and removes it. Temporaries of other kinds (the client
registry's, say) are never touched by a build. A snapshot file that the manifest does not name is a
leftover too (a build killed between renaming its file and swapping the manifest, or after the swap
but before unlinking what it superseded); the next build removes it and says so in its report.

Inside a snapshot file the documents are stored as the exact JSON bytes served, so a request is a
keyed lookup, never a recomputation or a scan (store/snapshot.py says why the file is SQLite). The PINTEREST_TOTAL_AUDIENCE document is the same for every account and
is stored once, under the empty account id.

Each file format has its own module: :mod:`.snapshot` (a snapshot file: schema, writer, reader) and
:mod:`.quarantine`; :mod:`.publish` runs a build into a store, :mod:`.check` repairs one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinsights.engine.documents import SHARED_ACCOUNT as SHARED_ACCOUNT
from pinsights.engine.steps.publish import PublishError
from pinsights.store.legacy_snapshot import LegacySnapshot
from pinsights.store.quarantine import QUARANTINE, QuarantinedRow, read_quarantine
from pinsights.store.snapshot import EMPTY_ITEMS as EMPTY_ITEMS
from pinsights.store.snapshot import (
    FORMAT,
    KEYED_FORMATS,
    LEGACY_FORMAT,
    SUFFIXES,
    Snapshot,
    SnapshotFileGone,
)
from pinsights.store.snapshot import PINTEREST_TOTAL_AUDIENCE as PINTEREST_TOTAL_AUDIENCE
from pinsights.store.snapshot import AccountRecord as AccountRecord

MANIFEST = "manifest.json"
SNAPSHOT_DIR = "snapshots"
REPORT_DIR = "reports"
BUILD_LOCK = ".build.lock"
TMP_PREFIX = ".tmp-"
#: Temporaries written by builds (under the build lock): every build may remove those it finds.
BUILD_KIND = "build"
#: Test hook: ``PINSIGHTS_TEST_PAUSE=<step>:<fd>`` makes a build announce ``<step>`` on the socket
#: ``fd`` when publishing reaches it, then wait for a byte, so a test can kill it exactly there;
#: ``*:<fd>`` (``EVERY_STEP``) announces and waits at every step, so a test can walk them in order.
PAUSE_ENV = "PINSIGHTS_TEST_PAUSE"
EVERY_STEP = "*"
#: The steps of publishing where a test may pause a build (in order), after the snapshot file's
#: writer's own (``store.snapshot.WRITE_STEPS``).
PUBLISH_STEPS = ("before-rename", "after-rename", "after-manifest")

#: Version of manifest.json: 2 names each snapshot's file format (entries without one are format 1).
MANIFEST_FORMAT = 2


class StoreError(PublishError):
    """A store that cannot be used as asked (not a directory, unreadable manifest, …)."""


class StoreLockedError(StoreError):
    """Another build holds the store's build lock."""


class NotRetainedError(StoreError):
    """A date would fall outside the retained snapshots at once: building it would publish nothing."""


def owner_tag() -> str:
    """``<host>-<pid>`` of this process, for the names of the temporary files it writes."""
    host = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def temporary_name(kind: str, name: str) -> str:
    """The name of a temporary file of ``kind`` written by this process."""
    return f"{TMP_PREFIX}{kind}-{owner_tag()}-{name}"


def pause_point(step: str) -> None:
    """Announce ``step`` and wait, when a test asked for it (see ``PAUSE_ENV``); else nothing."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    wanted, _, descriptor = spec.rpartition(":")
    if wanted in (step, EVERY_STEP):
        fd = int(descriptor)
        os.write(fd, step.encode() + b"\n")
        os.read(fd, 1)


def retained_dates(existing: list[dt.date], wanted: list[dt.date], retain: int) -> list[dt.date]:
    """The dates a store keeps once ``wanted`` are published: the newest ``retain`` of all."""
    return sorted(set(existing) | set(wanted), reverse=True)[:retain]


@dataclass(frozen=True)
class SnapshotInfo:
    """One entry of the manifest."""

    date: dt.date
    file: str
    build_id: str
    published_at: str
    #: The snapshot file's format (store.snapshot.FORMAT; entries without one are format 1).
    format: int = LEGACY_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "file": self.file,
            "build_id": self.build_id,
            "published_at": self.published_at,
            "format": self.format,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotInfo:
        return cls(
            date=dt.date.fromisoformat(data["date"]),
            file=data["file"],
            build_id=data["build_id"],
            published_at=data["published_at"],
            format=int(data.get("format", LEGACY_FORMAT)),
        )


def open_snapshot(info: SnapshotInfo, path: Path) -> Snapshot:
    """The reader of ``info``'s format (SnapshotFileGone when the file is not there)."""
    if info.format in KEYED_FORMATS:
        return Snapshot(info, path)
    if info.format == LEGACY_FORMAT:
        return LegacySnapshot(info, path)
    raise StoreError(
        f"the snapshot {info.file} has format {info.format}, which this pinsights cannot read"
        f" (it reads formats {LEGACY_FORMAT} to {FORMAT}): upgrade pinsights"
    )


class Store:
    """A store directory. Cheap to create; reading follows the manifest as it changes."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._manifest = str(self.root / MANIFEST)
        self._lock = threading.Lock()
        self._manifest_stamp: tuple[int, int, int] | None = None
        self._infos: list[SnapshotInfo] = []
        self._open: dict[str, Snapshot] = {}

    # --- reading ---------------------------------------------------------------------------------

    def _manifest_path(self) -> Path:
        return self.root / MANIFEST

    def _read_manifest(self) -> list[SnapshotInfo]:
        try:
            data = json.loads(self._manifest_path().read_text())
            return [SnapshotInfo.from_json(entry) for entry in data["snapshots"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StoreError(
                f"unreadable manifest {self._manifest_path()} ({type(error).__name__}: {error});"
                " `pinsights store check` can rebuild it"
            ) from error

    def _refresh(self, *, force: bool = False) -> list[SnapshotInfo]:
        """Reload the manifest only when it changed on disk (one stat per call, no lock if not)."""
        try:
            st = os.stat(self._manifest)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._manifest_stamp and not force:
            return self._infos
        with self._lock:
            if stamp != self._manifest_stamp or force:
                self._infos = self._read_manifest() if stamp is not None else []
                live = {info.file for info in self._infos}
                self._open = {f: snap for f, snap in self._open.items() if f in live}
                self._manifest_stamp = stamp
            return self._infos

    def snapshots(self) -> list[SnapshotInfo]:
        """Published snapshots, newest date first."""
        return list(self._refresh())

    def _snapshot(self, info: SnapshotInfo) -> Snapshot:
        with self._lock:
            snap = self._open.get(info.file)
            if snap is None:
                snap = open_snapshot(info, self.root / info.file)
                self._open[info.file] = snap
            return snap

    def _open_following_manifest(
        self, pick: Callable[[list[SnapshotInfo]], SnapshotInfo | None]
    ) -> Snapshot | None:
        """Open the snapshot ``pick`` chooses; if a concurrent publish just unlinked its file,
        re-read the manifest (which already names the new file) and choose again."""
        for attempt in range(3):
            info = pick(self._refresh(force=attempt > 0))
            if info is None:
                return None
            with contextlib.suppress(SnapshotFileGone):
                snapshot = self._snapshot(info)
                snapshot.open_here()  # another thread may have opened it before the unlink
                return snapshot
        raise StoreError(f"snapshots of {self.root} keep changing under the reader")

    def latest(self) -> Snapshot | None:
        return self._open_following_manifest(lambda infos: infos[0] if infos else None)

    def snapshot(self, date: dt.date) -> Snapshot | None:
        return self._open_following_manifest(
            lambda infos: next((info for info in infos if info.date == date), None)
        )

    def all_snapshots(self) -> list[Snapshot]:
        """Every retained snapshot, newest first."""
        return [self._snapshot(info) for info in self._refresh()]

    def quarantine_rows(self, limit: int | None = None) -> list[QuarantinedRow]:
        """Quarantined rows of the most recent build, in input order per table."""
        return read_quarantine(self.root / QUARANTINE, limit)

    def reports(self) -> list[dict[str, Any]]:
        """Build reports, oldest first."""
        directory = self.root / REPORT_DIR
        if not directory.exists():
            return []
        paths = sorted(directory.glob("*.json"))
        return [json.loads(p.read_text()) for p in paths]

    # --- writing (used by the engine's build) -----------------------------------------------------

    def ensure(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"the store {self.root} is a file, not a store directory")
        try:  # owner-only: insights, quarantined rows and reports are not for other users
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            for directory in (self.root / SNAPSHOT_DIR, self.root / REPORT_DIR):
                directory.mkdir(mode=0o700, exist_ok=True)
                # The store's own directories are 0700 even if they were made (or copied) open:
                # a build's temporaries, DuckDB's files and their WAL are written in snapshots/.
                owner_only(directory)
        except OSError as error:
            raise StoreError(f"cannot use {self.root} as a store: {error.strerror}") from error

    @contextlib.contextmanager
    def build_lock(self, *, clean: bool = True) -> Iterator[list[str]]:
        """Serialise builds on one store; a second concurrent build fails fast with a clear error.

        Yields what was cleaned up after killed builds (see :meth:`remove_leftovers`; nothing
        when ``clean`` is false).
        """
        self.ensure()
        fd = os.open(self.root / BUILD_LOCK, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        with os.fdopen(fd, "r+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise StoreLockedError(
                    f"another build is running on the store {self.root}; "
                    "run this one when it has finished"
                ) from error
            try:
                yield self.remove_leftovers() if clean else []
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def build_temporaries(self) -> list[Path]:
        """Files (or directories) that builds write under a temporary name; only builds do."""
        prefix = f"{TMP_PREFIX}{BUILD_KIND}-"
        found: list[Path] = []
        for directory in (self.root, self.root / SNAPSHOT_DIR, self.root / REPORT_DIR):
            if directory.is_dir():
                found += sorted(directory.glob(prefix + "*"))
        return found

    def orphan_snapshot_files(self) -> list[Path]:
        """Snapshot files the manifest does not name (raises StoreError if it is unreadable)."""
        named = {info.file for info in self._read_manifest()}
        directory = self.root / SNAPSHOT_DIR
        if not directory.is_dir():
            return []
        return sorted(
            path
            for path in directory.iterdir()
            if not path.name.startswith(".")
            and f"{SNAPSHOT_DIR}/{path.name.removesuffix('.wal')}" not in named
        )

    def remove_leftovers(self) -> list[str]:
        """Remove what killed builds left: build temporaries and snapshot files no manifest names.

        Only safe while holding the build lock (no build is writing); returns what was removed,
        relative to the store. Snapshot files are left alone when the manifest cannot be read.
        """
        leftovers = self.build_temporaries()
        with contextlib.suppress(StoreError):
            leftovers += self.orphan_snapshot_files()
        removed = []
        for path in leftovers:
            _remove(path)
            removed.append(str(path.relative_to(self.root)))
        return removed

    def temporary_path(self, name: str) -> Path:
        """A path for a file being written by a build; invisible to readers until renamed."""
        return self.root / SNAPSHOT_DIR / temporary_name(BUILD_KIND, name)

    def publish_quarantine(self, written: Path) -> None:
        """Make a finished quarantine file the current one (atomic rename), owner-only."""
        os.chmod(written, PRIVATE_FILE)
        _fsync_file(written)
        os.replace(written, self.root / QUARANTINE)
        _fsync_dir(self.root)

    def write_report(self, name: str, report: dict[str, Any]) -> None:
        path = self.root / REPORT_DIR / f"{name}.json"
        _atomic_write(path, json.dumps(report, indent=2, sort_keys=False).encode() + b"\n")

    def check_retention(self, dates: list[dt.date], retain: int) -> None:
        """Refuse dates that publishing would drop at once (NotRetainedError saying how to keep them)."""
        existing = [info.date for info in self._read_manifest()]
        kept = retained_dates(existing, dates, retain)
        refused = sorted(set(dates) - set(kept))
        if not refused:
            return
        every = sorted(set(existing) | set(dates), reverse=True)
        needed = every.index(refused[0]) + 1
        newest = ", ".join(day.isoformat() for day in kept[:3]) + (", …" if len(kept) > 3 else "")
        them = "it" if len(refused) == 1 else "them"
        raise NotRetainedError(
            f"{', '.join(day.isoformat() for day in refused)} would not be kept: the store keeps "
            f"the newest {retain} snapshot date(s) ({newest}), so nothing was built. "
            f"To keep {them}, pass --retain {needed} to this build and to the builds after it"
        )

    def publish(
        self,
        written: Path,
        *,
        date: dt.date,
        build_id: str,
        retain: int,
        format: int = FORMAT,
    ) -> SnapshotInfo:
        """Atomically make a finished snapshot file (of ``format``) the served snapshot for its date.

        The file is renamed into place, then the manifest is replaced in one ``os.replace``; the
        snapshot it supersedes (same date) and those beyond ``retain`` dates are unlinked after.
        A date that would not be retained is refused (NotRetainedError) and nothing changes.
        """
        previous = self._read_manifest()
        try:
            self.check_retention([date], retain)
        except NotRetainedError:
            _remove(written)
            raise
        os.chmod(written, PRIVATE_FILE)  # DuckDB creates its files as the umask says (0644)
        _fsync_file(written)
        pause_point("before-rename")
        relative = f"{SNAPSHOT_DIR}/{date.isoformat()}--{build_id}{SUFFIXES[format]}"
        os.replace(written, self.root / relative)
        _fsync_dir(self.root / SNAPSHOT_DIR)
        pause_point("after-rename")
        info = SnapshotInfo(
            date=date,
            file=relative,
            build_id=build_id,
            published_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            format=format,
        )
        entries = [info] + [old for old in previous if old.date != date]
        entries.sort(key=lambda entry: entry.date, reverse=True)
        kept, dropped = entries[:retain], entries[retain:]
        dropped += [old for old in previous if old.date == date]
        self.write_manifest(kept)
        pause_point("after-manifest")
        for old in dropped:
            with contextlib.suppress(FileNotFoundError):
                (self.root / old.file).unlink()
        return info

    def drop(self, date: dt.date) -> SnapshotInfo | None:
        """Stop serving ``date`` and delete its snapshot; None when the store has no such date.

        Under the build lock (a build publishing meanwhile would write a manifest without
        knowing of the drop): the manifest without the date replaces the old one in one
        ``os.replace``, then the file is unlinked, so a reader sees the date or not, never half
        of it; a server with the file open finishes its request. Killed in between, the file is
        an orphan the next build or ``store check`` removes.
        """
        with self.build_lock(clean=False):
            previous = self._read_manifest()
            dropped = [info for info in previous if info.date == date]
            if not dropped:
                return None
            self.write_manifest([info for info in previous if info.date != date])
            for info in dropped:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / info.file).unlink()
            _fsync_dir(self.root / SNAPSHOT_DIR)
            return dropped[0]

    def write_manifest(self, entries: list[SnapshotInfo]) -> None:
        """Replace the manifest atomically (newest date first); only under the build lock."""
        manifest = {"format": MANIFEST_FORMAT, "snapshots": [entry.to_json() for entry in entries]}
        _atomic_write(self._manifest_path(), json.dumps(manifest, indent=2).encode() + b"\n")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


#: Every file a build writes in the store, whatever the umask and the store directory's mode.
PRIVATE_FILE = 0o600


def owner_only(directory: Path) -> None:
    """Make a directory of the store 0700 if it is open to others and ours to change."""
    status = directory.stat()
    if status.st_mode & 0o077 and status.st_uid == os.getuid():
        directory.chmod(0o700)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write-then-rename, so a reader sees the old file or the new one, never a torn one."""
    tmp = path.with_name(temporary_name(BUILD_KIND, path.name))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # a leftover temporary of that name may have had another mode
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
