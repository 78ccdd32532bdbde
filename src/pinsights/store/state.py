"""Where the store keeps the refresh state, and how a build publishes it atomically.

::

    state/CURRENT          the name of the published state directory (replaced atomically)
    state/<build id>/      one state (engine/refresh/state.py: state.json, segments/)

A build writes its state into a temporary directory of the store (``.tmp-build-…``, removed by the
next build if this one is killed), renames it into ``state/`` and only then replaces ``CURRENT``
in one ``os.replace``; the previous state directory is removed after. Killed at any point, the
store names the previous state or the new one, both complete. Directories ``CURRENT`` does not
name are leftovers, removed by the next publish and by ``pinsights store check``.

The state describes the input files (fingerprints, checked events), not the snapshots: it stays
right whatever snapshots are retained or dropped, so retention and ``store drop`` leave it alone.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from pinsights.store import PRIVATE_FILE, _atomic_write, _fsync_dir, pause_point, temporary_name

STATE_DIR = "state"
CURRENT = "CURRENT"
#: The steps of publishing a state where a test may pause a build (store.PAUSE_ENV), in order.
STATE_PUBLISH_STEPS = ("state-before-rename", "state-after-rename", "state-after-current")


def current_state(root: Path) -> Path | None:
    """The published state's directory, or None (no state, or a pointer naming nothing)."""
    try:
        name = (root / STATE_DIR / CURRENT).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    directory = root / STATE_DIR / name
    if not name or "/" in name or not directory.is_dir():
        return None
    return directory


def staging_directory(root: Path, build_id: str) -> Path:
    """A fresh temporary directory for a build's state (a build temporary: see store/__init__)."""
    staged = root / temporary_name("build", f"state-{build_id}")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(mode=0o700)
    return staged


def publish_state(root: Path, staged: Path) -> Path:
    """Make ``staged`` the published state; remove every other state directory. Under the
    build lock only."""
    directory = root / STATE_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    for path in staged.rglob("*"):  # owner-only, as every file of the store
        path.chmod(0o700 if path.is_dir() else PRIVATE_FILE)
    name = staged.name.rsplit("state-", 1)[1]
    target = directory / name
    shutil.rmtree(target, ignore_errors=True)
    pause_point(STATE_PUBLISH_STEPS[0])
    staged.rename(target)
    _fsync_dir(directory)
    pause_point(STATE_PUBLISH_STEPS[1])
    _atomic_write(directory / CURRENT, name.encode() + b"\n")
    pause_point(STATE_PUBLISH_STEPS[2])
    remove_stale_states(root)
    return target


def remove_stale_states(root: Path) -> list[str]:
    """Remove state directories ``CURRENT`` does not name; what was removed (store-relative)."""
    directory = root / STATE_DIR
    if not directory.is_dir():
        return []
    current = current_state(root)
    removed = []
    for path in sorted(directory.iterdir()):
        if path.is_dir() and path != current:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path.relative_to(root)))
    return removed


def drop_state(root: Path) -> bool:
    """Forget the state (the next build is full); whether there was one."""
    directory = root / STATE_DIR
    existed = directory.exists()
    with contextlib.suppress(FileNotFoundError):
        (directory / CURRENT).unlink()
    remove_stale_states(root)
    return existed
