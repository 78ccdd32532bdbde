"""The publish step's side of the bargain: what the build hands over, and to whom.

The engine does not write files of the store itself: the store sits above the engine in the
layers (cli → server/client → store → engine → data), so a build is handed a :class:`Publisher`
— :class:`pinsights.store.publish.StorePublisher` is the one — and gives it the quarantined rows,
each date's snapshot contents and the reports. The publisher owns their formats and the atomic
publish; the build owns the order.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from pinsights.engine.documents import Document


class PublishError(Exception):
    """The publisher refused (locked by another build, a date it would not keep, unusable)."""


@dataclass(frozen=True)
class SnapshotContents:
    """Everything one date's snapshot holds: the documents, every account (its id and what the
    input says of it: ``name``, ``country``, ``currency``), the level-1 interests (the categories
    the deprecated category operation knows) and the build report."""

    date: dt.date
    documents: list[Document]
    accounts: list[dict[str, str | None]]
    categories: set[str]
    report: dict[str, Any]


def report_name(build_id: str, date: dt.date) -> str:
    """The name a build's report of one date is written under (the store reads it back by it)."""
    return f"{build_id}--{date.isoformat()}"


class Publisher(Protocol):
    def lock(self) -> AbstractContextManager[list[str]]:
        """Held for the whole build, so no other build publishes meanwhile; yields what was
        cleaned up after builds that were killed."""
        ...

    def check_retention(self, dates: list[dt.date], retain: int) -> None:
        """Refuse (PublishError) dates that publishing would drop at once."""
        ...

    def spill_directory(self, build_id: str) -> Path:
        """Where the engine may spill what does not fit in memory (removed after the build)."""
        ...

    def publish_quarantine(self, build_id: str, rows: pa.Table) -> None:
        """Make the quarantined rows (see pinsights.data.validate.quarantine_rows) the current
        quarantine."""
        ...

    def publish_snapshot(self, contents: SnapshotContents, *, build_id: str, retain: int) -> None:
        """Atomically make ``contents`` the served snapshot of its date."""
        ...

    def write_report(self, name: str, report: dict[str, Any]) -> None: ...

    def state_directory(self) -> Path:
        """Where builds keep state from one to the next (the DP mode's privacy ledger)."""
        ...

    def refresh_state(self) -> Path | None:
        """The published refresh state's directory (engine/refresh/state.py), None when none."""
        ...

    def refresh_staging(self, build_id: str) -> Path:
        """An empty directory to write the build's refresh state in (removed if not published)."""
        ...

    def publish_refresh_state(self, staged: Path) -> None:
        """Atomically make the state written in ``staged`` the published one."""
        ...

    def drop_refresh_state(self) -> None:
        """Forget the published refresh state: the next build that keeps state is full."""
        ...
