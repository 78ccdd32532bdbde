"""``pinsights build`` into a store: the engine's build, handed the store as its publisher.

The engine builds; the store owns the files (:mod:`.snapshot`, :mod:`.quarantine`, the manifest,
the lock). This module is where the two meet, at the store's layer, so imports run one way
(store → engine): :class:`StorePublisher` implements the engine's
:class:`~pinsights.engine.steps.publish.Publisher` with a :class:`~pinsights.store.Store`, and
:func:`build` is what the command line, the demo and the tests call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from pinsights.engine import build as engine_build
from pinsights.engine.settings import BuildSettings
from pinsights.engine.steps.publish import SnapshotContents
from pinsights.store import BUILD_KIND, Store, temporary_name
from pinsights.store.quarantine import write_quarantine
from pinsights.store.snapshot import FORMAT, SUFFIXES, write_snapshot
from pinsights.store.state import current_state, drop_state, publish_state, staging_directory


def build(
    settings: BuildSettings, *, on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Build and publish into the store at ``settings.store_dir``; the build report (see
    :func:`pinsights.engine.build.build`)."""
    return engine_build.build(settings, StorePublisher(Store(settings.store_dir)), on_step=on_step)


class StorePublisher:
    """A store as the place a build publishes to (see the engine's Publisher protocol)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def lock(self) -> Iterator[list[str]]:
        with self.store.build_lock() as cleaned:
            yield cleaned

    def check_retention(self, dates: list[dt.date], retain: int) -> None:
        self.store.check_retention(dates, retain)

    def spill_directory(self, build_id: str) -> Path:
        """Inside the store, named as a build temporary: the next build removes what a killed
        one left."""
        return self.store.root / temporary_name(BUILD_KIND, f"spill-{build_id}")

    def publish_quarantine(self, build_id: str, rows: pa.Table) -> None:
        written = self.store.temporary_path(f"quarantine-{build_id}.duckdb")
        write_quarantine(written, rows)
        self.store.publish_quarantine(written)

    def publish_snapshot(self, contents: SnapshotContents, *, build_id: str, retain: int) -> None:
        day = contents.date.isoformat()
        written = self.store.temporary_path(f"{build_id}--{day}{SUFFIXES[FORMAT]}")
        write_snapshot(
            written, contents.documents, contents.accounts, contents.categories, contents.report
        )
        self.store.publish(written, date=contents.date, build_id=build_id, retain=retain)

    def write_report(self, name: str, report: dict[str, Any]) -> None:
        self.store.write_report(name, report)

    def state_directory(self) -> Path:
        return self.store.root

    def refresh_state(self) -> Path | None:
        return current_state(self.store.root)

    def refresh_staging(self, build_id: str) -> Path:
        return staging_directory(self.store.root, build_id)

    def publish_refresh_state(self, staged: Path) -> None:
        publish_state(self.store.root, staged)

    def drop_refresh_state(self) -> None:
        drop_state(self.store.root)
