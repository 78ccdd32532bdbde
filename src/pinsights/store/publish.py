"""``pinsights build`` into a store: the engine's build, handed the store as its publisher.

The engine builds; the store owns the files (:mod:`.snapshot`, :mod:`.quarantine`, the manifest,
the lock). This module is where the two meet, at the store's layer, so imports run one way
(store → engine): :class:`StorePublisher` implements the engine's
:class:`~pinsights.engine.steps.publish.Publisher` with a :class:`~pinsights.store.Store`, and
:func:`build` is what the command line, the demo and the tests call.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from pinsights.data.tables import ACCOUNT_DETAILS
from pinsights.engine import arrow_columns as columns
from pinsights.engine import build as engine_build
from pinsights.engine.documents import Document
from pinsights.engine.settings import BuildSettings
from pinsights.engine.steps.publish import SnapshotContents
from pinsights.store import BUILD_KIND, Store, pause_point, temporary_name
from pinsights.store.quarantine import write_quarantine
from pinsights.store.snapshot import FORMAT, SUFFIXES, write_snapshot_file
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
            written,
            contents.documents,
            contents.accounts,
            contents.categories,
            contents.report,
            on_step=pause_point,  # the test hook: a test may kill the writer at its steps
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


def write_snapshot(
    path: Path,
    documents: Sequence[Document],
    accounts: Sequence[Mapping[str, str | None]],
    categories: Iterable[str],
    report: dict[str, Any],
    *,
    on_step: Callable[[str], None] | None = None,
) -> None:
    """Write a complete snapshot file; it becomes visible only when the store publishes it
    (``on_step``: see ``write_snapshot_file``)."""
    document_rows = sorted(documents, key=lambda d: (d.ad_account_id, d.insight_type))
    tables = {
        # each account with what the input says of it, so what the ad accounts' operations list
        # agrees with these documents (a snapshot without these columns is served with ids alone)
        "accounts": columns.table(
            {
                "ad_account_id": columns.string_column([str(a["ad_account_id"]) for a in accounts]),
                **{
                    detail: columns.optional_string_column([a.get(detail) for a in accounts])
                    for detail in ACCOUNT_DETAILS
                },
            }
        ),
        "level1_interests": columns.table(
            {"interest_id": columns.string_column(sorted(categories))}
        ),
        "audiences": columns.table(
            {
                "ad_account_id": columns.string_column([d.ad_account_id for d in document_rows]),
                "insight_type": columns.string_column([d.insight_type for d in document_rows]),
                "size": columns.int64_column([d.size for d in document_rows]),
                "qualifies": columns.bool_column([d.reportable for d in document_rows]),
            }
        ),
        "documents": columns.table(
            {
                "ad_account_id": columns.string_column([d.ad_account_id for d in document_rows]),
                "insight_type": columns.string_column([d.insight_type for d in document_rows]),
                "body": columns.binary_column([d.body for d in document_rows]),
            }
        ),
        "category_items": _category_items_table(document_rows),
        "meta": columns.table(
            {
                "key": columns.string_column(["date", "build_id", "report"]),
                "value": columns.string_column(
                    [report["date"], report["build_id"], json.dumps(report, sort_keys=True)]
                ),
            }
        ),
    }
    write_snapshot_file(path, tables, on_step=on_step)


def _category_items_table(documents: list[Document]) -> pa.Table:
    accounts, kinds, categories, bodies = [], [], [], []
    for document in documents:
        for category_id, body in sorted(document.category_items.items()):
            accounts.append(document.ad_account_id)
            kinds.append(document.insight_type)
            categories.append(category_id)
            bodies.append(body)
    return columns.table(
        {
            "ad_account_id": columns.string_column(accounts),
            "insight_type": columns.string_column(kinds),
            "category_id": columns.string_column(categories),
            "body": columns.binary_column(bodies),
        }
    )
