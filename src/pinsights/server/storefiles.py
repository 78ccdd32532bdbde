"""The small files of the store that the CLI edits while servers run: the client registry, the keyring.

Both are written the same way — read-modify-write under an exclusive lock, into a new owner-only
file that is fsynced and renamed into place — so a reader sees the old file or the new one, and
nobody else can read the secrets (hashes, keys) in them.

A server re-reads them when their stat (inode, ctime, size) changes — ctime, so that a ``chmod``
counts too — so a revocation or a retired key takes effect on the next request without a restart.
Under load even one ``stat`` per request shows up, so a stat is trusted for ``RECHECK_AFTER`` (a
millisecond): an edit, which fsyncs, takes longer than that.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Seconds during which a manifest (or client registry) stat is trusted without repeating it.
#: Defined here, the lowest of the server's modules, so that the CLI's ``clients`` and ``keys``
#: commands (which use the registry files) do not import the web stack with the documents.
RECHECK_AFTER = 0.001

Stamp = tuple[int, int, int]
#: A stamp no file has: what a watch starts from, so the first look always counts as a change.
UNSEEN: Stamp = (-1, -1, -1)


class WatchedFile:
    """One file's stat, re-taken at most every ``RECHECK_AFTER`` seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._path = str(path)  # stat()ed often: skip the Path conversion
        self.stamp: Stamp | None = UNSEEN  # None: the file does not exist
        self._checked = -1.0

    def changed(self) -> bool:
        """Whether the file differs from when this was last asked (True the first time)."""
        now = time.monotonic()
        if now - self._checked < RECHECK_AFTER:
            return False
        self._checked = now
        try:
            st = os.stat(self._path)
            stamp: Stamp | None = (st.st_ino, st.st_ctime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        return True


@contextlib.contextmanager
def locked(store: Path, lock_name: str) -> Iterator[None]:
    """Hold an exclusive lock of the store (creating the store owner-only if it is new)."""
    store.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(store / lock_name, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_owner_only(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a new 0600 file, fsync it, and rename it over ``path``."""
    tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def now_iso() -> str:
    """The time an edit is recorded with (UTC, seconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
