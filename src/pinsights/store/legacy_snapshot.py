"""Snapshot format 1: a DuckDB file, as builds wrote them before format 2 (store/snapshot.py).

Stores built by older versions are served as they are (``LegacySnapshot``) and converted by
``pinsights store check`` (``read_tables``); tests and benchmarks of old stores write such files
(``write_legacy_snapshot_file``). Kept apart so that the format a build writes reads alone.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from pinsights.data.tables import ACCOUNT_DETAILS
from pinsights.engine.documents import SHARED_ACCOUNT
from pinsights.store.snapshot import (
    EMPTY_ITEMS,
    LEGACY_FORMAT,
    PINTEREST_TOTAL_AUDIENCE,
    TABLE_KEYS,
    AccountRecord,
    Snapshot,
    SnapshotFileGone,
)

if TYPE_CHECKING:
    from pinsights.store import SnapshotInfo

#: Format 1's tables (a DuckDB file). Kept as the definition of what older stores hold: the legacy
#: reader (store.LegacySnapshot), ``store check``'s conversion and the tests of old stores use it.
LEGACY_SCHEMA = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE accounts (ad_account_id VARCHAR PRIMARY KEY);
CREATE TABLE level1_interests (interest_id VARCHAR PRIMARY KEY);
CREATE TABLE audiences (
    ad_account_id VARCHAR NOT NULL, insight_type VARCHAR NOT NULL, size BIGINT NOT NULL,
    qualifies BOOLEAN NOT NULL, PRIMARY KEY (ad_account_id, insight_type));
CREATE TABLE documents (
    ad_account_id VARCHAR NOT NULL, insight_type VARCHAR NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (ad_account_id, insight_type));
CREATE TABLE category_items (
    ad_account_id VARCHAR NOT NULL, insight_type VARCHAR NOT NULL, category_id VARCHAR NOT NULL,
    body BLOB NOT NULL, PRIMARY KEY (ad_account_id, insight_type, category_id));
"""


def write_legacy_snapshot_file(path: Path, tables: dict[str, pa.Table]) -> None:
    """A format-1 (DuckDB) snapshot file, as builds wrote them before format 2: for tests and
    benchmarks of old stores only (a build writes :func:`write_snapshot_file`)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(LEGACY_SCHEMA)
        for name in TABLE_KEYS:
            columns = [field.name for field in tables[name].schema][: _LEGACY_WIDTH[name]]
            con.register("incoming", tables[name].select(columns))
            con.execute(f"INSERT INTO {name} SELECT * FROM incoming")
            con.unregister("incoming")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()


#: How many (leading) columns each table had in format 1.
_LEGACY_WIDTH = {
    "meta": 2,
    "accounts": 1,
    "level1_interests": 1,
    "audiences": 4,
    "documents": 3,
    "category_items": 4,
}


def read_tables(path: Path, format: int) -> dict[str, pa.Table]:
    """Every table of a format-1 snapshot file, as Arrow (``store check`` converts it to format 2)."""
    if format == LEGACY_FORMAT:
        with duckdb.connect(str(path), read_only=True) as con:
            return {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in TABLE_KEYS}
    raise ValueError(f"read_tables reads format {LEGACY_FORMAT} files")


class LegacySnapshot(Snapshot):
    """A snapshot of format 1 (a DuckDB file), written by pinsights before format 2.

    Served as it is, with the same answers, but a document costs a column scan (milliseconds,
    growing with the snapshot): the next build writes format 2, and ``pinsights store check``
    converts a store's format-1 snapshots. DuckDB connections are not shared between threads, so
    each thread gets its own cursor on the one read-only connection.
    """

    def __init__(self, info: SnapshotInfo, path: Path) -> None:
        self.info = info
        self.date = info.date
        self.path = path
        try:
            self._connection = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as error:
            if not path.exists():
                raise SnapshotFileGone(f"snapshot file {path} is gone") from error
            raise
        self._local = threading.local()
        self.own_document = self._own_document

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._connection.cursor()
            self._local.cursor = cursor
        return cursor

    def _one(self, sql: str, params: list[Any]) -> Any:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses the next query.
        rows = self._cursor().execute(sql, params).fetchall()
        return rows[0][0] if rows else None

    def has_account(self, ad_account_id: str) -> bool:
        return (
            self._one("SELECT 1 FROM accounts WHERE ad_account_id = ?", [ad_account_id]) is not None
        )

    def accounts(self) -> list[AccountRecord]:
        """Every account of the snapshot with what it says of each (in no particular order).

        The one read of the account list (the server's ``ad_accounts/list`` and ``ad_accounts/get``
        both go through it), so a different snapshot format changes this function only.
        """
        cursor = self._cursor()
        present = {row[0] for row in cursor.execute("DESCRIBE accounts").fetchall()}
        details = ", ".join(f'"{c}"' if c in present else "NULL" for c in ACCOUNT_DETAILS)
        rows = cursor.execute(f"SELECT ad_account_id, {details} FROM accounts").fetchall()
        return [AccountRecord(*row) for row in rows]

    def account(self, ad_account_id: str) -> AccountRecord | None:
        return next((a for a in self.accounts() if a.ad_account_id == ad_account_id), None)

    def accounts_after(self, after: str | None, limit: int) -> list[AccountRecord]:
        listed = sorted(self.accounts(), key=lambda a: (len(a.ad_account_id), a.ad_account_id))
        if after is not None:
            listed = [
                a for a in listed if (len(a.ad_account_id), a.ad_account_id) > (len(after), after)
            ]
        return listed[:limit]

    def _own_document(self, ad_account_id: str, insight_type: str) -> bytes | None:
        return self.account_document(ad_account_id, insight_type)[1]

    def account_document(self, ad_account_id: str, insight_type: str) -> tuple[bool, bytes | None]:
        if not self.has_account(ad_account_id):
            return False, None
        return True, self.document(ad_account_id, insight_type)

    def document(self, ad_account_id: str, insight_type: str) -> bytes | None:
        if not self.has_account(ad_account_id):
            return None
        owner = SHARED_ACCOUNT if insight_type == PINTEREST_TOTAL_AUDIENCE else ad_account_id
        body = self._one(
            "SELECT body FROM documents WHERE ad_account_id = ? AND insight_type = ?",
            [owner, insight_type],
        )
        return None if body is None else bytes(body)

    def category_items(
        self, ad_account_id: str, insight_type: str, category_id: str
    ) -> bytes | None:
        if not self.has_account(ad_account_id):
            return None
        known = self._one("SELECT 1 FROM level1_interests WHERE interest_id = ?", [category_id])
        if known is None:
            return None
        owner = SHARED_ACCOUNT if insight_type == PINTEREST_TOTAL_AUDIENCE else ad_account_id
        body = self._one(
            "SELECT body FROM category_items"
            " WHERE ad_account_id = ? AND insight_type = ? AND category_id = ?",
            [owner, insight_type, category_id],
        )
        return EMPTY_ITEMS if body is None else bytes(body)

    def qualifying_audiences(self, ad_account_id: str) -> list[str]:
        if not self.has_account(ad_account_id):
            return []
        rows = (
            self._cursor()
            .execute(
                "SELECT insight_type FROM audiences WHERE qualifies"
                " AND (ad_account_id = ? OR (ad_account_id = ? AND insight_type = ?))",
                [ad_account_id, SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE],
            )
            .fetchall()
        )
        return [row[0] for row in rows]
