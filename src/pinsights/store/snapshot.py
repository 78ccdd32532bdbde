"""The snapshot file format: an SQLite database made for point lookups, written once from Arrow tables.

Why SQLite, not DuckDB (which builds the snapshot): a served request reads *one* document. In a
column store that costs decompressing the row group's whole ``body`` column — measured at ~16 ms a
document on 6,000 documents, growing with the snapshot — while an SQLite B-tree finds the row by
its key in a few page reads, whatever the number of accounts (tens of µs; benchmarks/serve.py,
BENCHMARKS.md). SQLite is in the standard library, and a file opened read-only and ``immutable``
needs no lock, no journal and no server.

Layout (``FORMAT`` 2; format 1 was a DuckDB file with the same tables, see store/legacy_snapshot.py):

- every table has a primary key (``TABLE_KEYS``) and its rows are written in key order;
- small rows (accounts, audiences, interests, meta) live in ``WITHOUT ROWID`` tables: the row *is*
  the key's B-tree entry, one lookup;
- tables of large bodies (documents, category items) are ordinary rowid tables with an index on
  the key: a ``WITHOUT ROWID`` B-tree holding multi-kilobyte rows keeps few keys per page and
  spills every row to overflow pages, which measured 2-3x slower per lookup than index + row;
- ``PRAGMA application_id`` marks the file as a pinsights snapshot and ``user_version`` its format,
  so ``store check`` can tell a snapshot from any other SQLite file without the manifest.

Columns come from the Arrow tables as they are (strings, binaries, integers, booleans, nullable
or not), so a column the engine adds to a table — an account's name, say — is carried without a
change here.

Writing is one transaction with the journal off and no syncs: the file is a temporary that only
becomes visible when the store publishes it (fsync, rename, manifest), and a writer killed half-way
leaves a temporary that the next build removes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pinsights.contract import AudienceInsightType
from pinsights.data.tables import ACCOUNT_DETAILS
from pinsights.engine import arrow_columns as columns
from pinsights.engine.documents import SHARED_ACCOUNT, Document

if TYPE_CHECKING:
    from pinsights.store import SnapshotInfo

#: The snapshot format a build writes, recorded in the manifest beside each file.
FORMAT = 2
#: The format of snapshots written before FORMAT 2 (DuckDB files); still served, see the store.
LEGACY_FORMAT = 1
#: File name suffix of each format's snapshot files.
SUFFIXES = {LEGACY_FORMAT: ".duckdb", FORMAT: ".sqlite"}
PINTEREST_TOTAL_AUDIENCE = AudienceInsightType.PINTEREST_TOTAL_AUDIENCE.value
#: The body of the deprecated category operation for a known category the audience leaves out.
EMPTY_ITEMS = b'{"items":[]}'
#: "pins": marks an SQLite file as a pinsights snapshot (``PRAGMA application_id``).
APPLICATION_ID = 0x70696E73

#: Every table of a snapshot and its primary key, in the order a writer creates them.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "meta": ("key",),
    "accounts": ("ad_account_id",),
    "level1_interests": ("interest_id",),
    "audiences": ("ad_account_id", "insight_type"),
    "documents": ("ad_account_id", "insight_type"),
    "category_items": ("ad_account_id", "insight_type", "category_id"),
}
#: Tables of large rows: a rowid table plus a unique index on the key (see the module docstring).
ROWID_TABLES = frozenset({"documents", "category_items"})
#: An account's own document (see ``Snapshot.account_document``).
_OWN_DOCUMENT = "SELECT body FROM documents WHERE ad_account_id = ? AND insight_type = ?"
#: Page cache per connection (KiB, negative as SQLite wants it): bounded whatever the file's size.
CACHE_KIB = 2048
#: Rows converted to Python at a time while writing.
WRITE_BATCH_ROWS = 4096
#: Bytes of a snapshot file a reader maps into memory: a read there is a memory access instead of
#: a system call (a keyed read measured 14-15 µs CPU against 18-24 µs without, 100,000 accounts).
#: Bounded, because mapped pages a process touched count in its resident memory; reads beyond it
#: go through SQLite's page cache (CACHE_KIB).
MMAP_BYTES = 256 * 1024 * 1024
#: Page cache while writing: B-tree pages being filled stay in memory (measured ~25% faster than
#: the 2 MiB default on 40,000 documents); freed when the writer closes.
WRITE_CACHE_KIB = 65536


class SnapshotFileError(Exception):
    """A snapshot file that cannot be read as one (damaged, truncated, not a snapshot)."""


class SnapshotFileGone(SnapshotFileError):
    """The file is not there (a concurrent publish unlinked it): read the manifest again."""


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "TEXT"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "BLOB"
    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return "INTEGER"
    if pa.types.is_floating(arrow_type):
        return "REAL"
    raise TypeError(f"a snapshot column cannot hold {arrow_type}")


def _create_statements(name: str, schema: pa.Schema) -> list[str]:
    key = TABLE_KEYS[name]
    missing = [column for column in key if column not in schema.names]
    if missing:
        raise ValueError(f"snapshot table {name} lacks its key column(s) {', '.join(missing)}")
    columns = ", ".join(
        f'"{field.name}" {_sql_type(field.type)}'
        + (" NOT NULL" if field.name in key or not field.nullable else "")
        for field in schema
    )
    quoted_key = ", ".join(f'"{column}"' for column in key)
    if name in ROWID_TABLES:
        return [
            f'CREATE TABLE "{name}" ({columns})',
            f'CREATE UNIQUE INDEX "{name}_key" ON "{name}" ({quoted_key})',
        ]
    statements = [f'CREATE TABLE "{name}" ({columns}, PRIMARY KEY ({quoted_key})) WITHOUT ROWID']
    if name == "accounts":
        # the account list's order (numeric for digit strings): a page is a range of this index
        statements.append(
            'CREATE INDEX "accounts_listed" ON "accounts" (length(ad_account_id), ad_account_id)'
        )
    return statements


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """The table's rows as Python values, a batch at a time (by column, which Arrow does fastest;
    a batch at a time, so that a snapshot's bodies are never all copied into Python at once)."""
    for batch in table.to_batches(max_chunksize=WRITE_BATCH_ROWS):
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def write_snapshot_file(path: Path, tables: dict[str, pa.Table]) -> None:
    """Write a complete snapshot file at ``path`` (a new, owner-only file) from Arrow tables.

    ``tables`` has every table of ``TABLE_KEYS``, best with its rows in key order (the build
    sorts them: SQLite appends sorted keys fastest; any order gives the same file contents).
    Raises on a duplicate key.
    """
    absent = [name for name in TABLE_KEYS if name not in tables]
    if absent:
        raise ValueError(f"a snapshot needs the table(s) {', '.join(absent)}")
    # Owner-only from the start (SQLite would create it with the umask's permissions).
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA locking_mode=EXCLUSIVE")
        con.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
        con.execute(f"PRAGMA application_id={APPLICATION_ID}")
        con.execute(f"PRAGMA user_version={FORMAT}")
        con.execute("BEGIN")
        for name in TABLE_KEYS:
            table = tables[name]
            for statement in _create_statements(name, table.schema):
                con.execute(statement)
            marks = ", ".join("?" * table.num_columns)
            con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', _rows(table))
        con.execute("COMMIT")
    finally:
        con.close()


class SnapshotFile:
    """Keyed reads of one snapshot file; one read-only connection per thread.

    Opened ``immutable``: snapshot files never change once published (a publish writes a new
    file), so SQLite takes no lock and checks nothing per read. A file unlinked by a publish
    stays readable through the connections already open (POSIX semantics).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._uri = path.absolute().as_uri() + "?mode=ro&immutable=1"
        self._local = threading.local()
        self.connection()  # open now: a missing or foreign file is known before any request

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on its first read)."""
        con: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if con is None:
            con = self._open()
            self._local.connection = con
            # the usual read's own cursor, kept: ``connection.execute`` makes (and the garbage
            # collector and the connection's weak references then track) a cursor per read
            self._local.own_document = con.cursor().execute
        return con

    def own_document(self, ad_account_id: str, insight_type: str) -> bytes | None:
        """An account's own document (``_OWN_DOCUMENT``), or None: the usual cold read, on this
        thread's kept cursor."""
        try:
            execute = self._local.own_document
        except AttributeError:
            self.connection()
            execute = self._local.own_document
        row = execute(_OWN_DOCUMENT, (ad_account_id, insight_type)).fetchone()
        return None if row is None else row[0]

    def _open(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self._uri, uri=True, check_same_thread=True)
        except sqlite3.OperationalError as error:
            if not self.path.exists():
                raise SnapshotFileGone(f"snapshot file {self.path} is gone") from error
            raise SnapshotFileError(f"cannot open snapshot file {self.path}: {error}") from error
        try:
            con.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            con.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            application, version = (
                con.execute("PRAGMA application_id").fetchone()[0],
                con.execute("PRAGMA user_version").fetchone()[0],
            )
        except sqlite3.DatabaseError as error:
            con.close()
            raise SnapshotFileError(f"snapshot file {self.path} is unreadable: {error}") from error
        if application != APPLICATION_ID or version != FORMAT:
            con.close()
            raise SnapshotFileError(
                f"{self.path} is not a pinsights snapshot of format {FORMAT}"
                f" (application id {application:#x}, version {version})"
            )
        return con

    def one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The first column of the first row, or None (a keyed read: one row at most)."""
        row = self.connection().execute(sql, params).fetchone()
        return None if row is None else row[0]

    def row(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.connection().execute(sql, params).fetchone()
        return row

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.connection().execute(sql, params).fetchall()


@dataclass(frozen=True)
class AccountRecord:
    """An ad account as a snapshot knows it; None where the snapshot does not say."""

    ad_account_id: str
    name: str | None = None
    country: str | None = None
    currency: str | None = None


class Snapshot:
    """Read-only view of one published snapshot file (format 2, see store/snapshot.py).

    Every read is keyed: the account check, a document, a category's items and an account's
    qualifying audiences are each one statement on the file's B-trees, so what a request costs
    does not grow with the number of accounts or the size of other documents.
    """

    def __init__(self, info: SnapshotInfo, path: Path) -> None:
        self.info = info
        self.date = info.date
        self.path = path
        self._file = SnapshotFile(path)

    def _cursor(self) -> Any:
        """This thread's connection, for ad-hoc SQL (tests, tools); the methods below are the API."""
        return self._file.connection()

    def open_here(self) -> None:
        """Open this thread's connection now (SnapshotFileGone if a publish unlinked the file).

        Once open, a connection reads the file to the end even after it is unlinked; a thread
        that first reads a snapshot another thread opened may find the file gone, so the store
        opens it for the calling thread while it can still follow the manifest to the new one.
        """
        self._cursor()

    def has_account(self, ad_account_id: str) -> bool:
        return (
            self._file.one("SELECT 1 FROM accounts WHERE ad_account_id = ?", (ad_account_id,))
            is not None
        )

    def _account_columns(self) -> str:
        """``ad_account_id`` and the details this snapshot's accounts table has (NULL for others)."""
        columns: str | None = getattr(self, "_columns", None)
        if columns is None:
            present = {row[1] for row in self._file.rows("PRAGMA table_info(accounts)")}
            details = ", ".join(f'"{c}"' if c in present else "NULL" for c in ACCOUNT_DETAILS)
            columns = self._columns = f"ad_account_id, {details}"
        return columns

    def account(self, ad_account_id: str) -> AccountRecord | None:
        """One account and what the snapshot says of it (a keyed read); None if it is not here."""
        row = self._file.row(
            f"SELECT {self._account_columns()} FROM accounts WHERE ad_account_id = ?",
            (ad_account_id,),
        )
        return None if row is None else AccountRecord(*row)

    def accounts_after(self, after: str | None, limit: int) -> list[AccountRecord]:
        """Up to ``limit`` accounts listed after ``after`` (from the first when None), in the
        list's order — by length, then as text, which is numeric order for digit strings — read
        as a range of the ``accounts_listed`` index: a page costs its own rows, not the list's."""
        columns = self._account_columns()
        order = "ORDER BY length(ad_account_id), ad_account_id"
        if after is None:
            rows = self._file.rows(f"SELECT {columns} FROM accounts {order} LIMIT ?", (limit,))
        else:
            rows = self._file.rows(  # the same length after ``after``, then longer ids
                f"SELECT * FROM (SELECT {columns} FROM accounts"
                " WHERE length(ad_account_id) = ? AND ad_account_id > ?"
                " ORDER BY ad_account_id LIMIT ?)"
                f" UNION ALL SELECT * FROM (SELECT {columns} FROM accounts"
                f" WHERE length(ad_account_id) > ? {order} LIMIT ?)",
                (len(after), after, limit, len(after), limit),
            )
        return [AccountRecord(*row) for row in rows[:limit]]

    def accounts(self) -> list[AccountRecord]:
        """Every account (a whole-table read: for tools; the server reads pages and keys)."""
        rows = self._file.rows(f"SELECT {self._account_columns()} FROM accounts")
        return [AccountRecord(*row) for row in rows]

    def document(self, ad_account_id: str, insight_type: str) -> bytes | None:
        """The served JSON bytes, or None when the account is not part of this snapshot."""
        return self.account_document(ad_account_id, insight_type)[1]

    def account_document(self, ad_account_id: str, insight_type: str) -> tuple[bool, bytes | None]:
        """Whether the account is in this snapshot, and its document.

        An account's own document is looked up first, alone: a build writes both of every
        account's documents and no other (documents follow the accounts table), so finding one
        answers the account check too, and the usual read descends one B-tree fewer (measured
        4 µs of ~19 at 100,000 accounts, 8 of ~50 at 1,000,000). Without it — an unknown
        account, or the shared PINTEREST_TOTAL_AUDIENCE document — one statement does both.
        """
        if insight_type != PINTEREST_TOTAL_AUDIENCE:
            body = self._file.own_document(ad_account_id, insight_type)
            if body is not None:
                return True, body
        owner = SHARED_ACCOUNT if insight_type == PINTEREST_TOTAL_AUDIENCE else ad_account_id
        row = self._file.row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE ad_account_id = ?),"
            " (SELECT body FROM documents WHERE ad_account_id = ? AND insight_type = ?)",
            (ad_account_id, owner, insight_type),
        )
        if row is None or not row[0]:
            return False, None
        return True, None if row[1] is None else bytes(row[1])

    def category_items(
        self, ad_account_id: str, insight_type: str, category_id: str
    ) -> bytes | None:
        """Body of the deprecated category operation; None for an unknown account or category."""
        owner = SHARED_ACCOUNT if insight_type == PINTEREST_TOTAL_AUDIENCE else ad_account_id
        row = self._file.row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE ad_account_id = ?),"
            " EXISTS (SELECT 1 FROM level1_interests WHERE interest_id = ?),"
            " (SELECT body FROM category_items"
            "  WHERE ad_account_id = ? AND insight_type = ? AND category_id = ?)",
            (ad_account_id, category_id, owner, insight_type, category_id),
        )
        if row is None or not row[0] or not row[1]:
            return None
        return EMPTY_ITEMS if row[2] is None else bytes(row[2])

    def qualifying_audiences(self, ad_account_id: str) -> list[str]:
        """Insight types of the account's audiences with n(A) >= min_audience_size."""
        if not self.has_account(ad_account_id):
            return []
        rows = self._file.rows(
            "SELECT insight_type FROM audiences WHERE ad_account_id = ? AND qualifies"
            " UNION ALL SELECT insight_type FROM audiences"
            " WHERE ad_account_id = ? AND insight_type = ? AND qualifies",
            (ad_account_id, SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE),
        )
        return [row[0] for row in rows]


# --- the writer of a build ---------------------------------------------------------------------


def write_snapshot(
    path: Path,
    documents: Sequence[Document],
    accounts: Sequence[Mapping[str, str | None]],
    categories: Iterable[str],
    report: dict[str, Any],
) -> None:
    """Write a complete snapshot file; it becomes visible only when the store publishes it."""
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
    write_snapshot_file(path, tables)


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
