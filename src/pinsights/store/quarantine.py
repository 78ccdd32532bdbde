"""The quarantine file: the rows of the most recent build that broke a rule, with where they came from.

One home for its format: the schema, the one writer both engines use (each hands its quarantined
rows over as Arrow, in the shape of :func:`pinsights.data.validate.quarantine_rows`), and the
reader behind ``pinsights quarantine``. The store publishes the file (:mod:`pinsights.store`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

#: The file's name in the store.
QUARANTINE = "quarantine.duckdb"

#: ``line`` is the line number of a malformed line (null otherwise); ``row`` is the raw line (of a
#: malformed line or a JSON line) or the row as a JSON object.
QUARANTINE_SCHEMA = """
CREATE TABLE quarantine (
    "table" VARCHAR NOT NULL, source_file VARCHAR, line BIGINT, rule VARCHAR NOT NULL, row VARCHAR);
"""


@dataclass(frozen=True)
class QuarantinedRow:
    """A row that broke a rule of the input contract, kept whole with where it came from."""

    table: str
    source_file: str
    rule: str
    #: The row's values; None for a ``malformed`` line, which has only its text.
    row: dict[str, Any] | None
    #: The line number of a ``malformed`` line in its file (1-based, a CSV header is line 1).
    line: int | None = None
    #: As stored: the raw line (malformed lines, JSON Lines rows) or the row as a JSON object.
    text: str = ""


def write_quarantine(path: Path, rows: pa.Table) -> None:
    """Write the quarantined rows (``table, source_file, line, rule, row``) to a new file."""
    con = duckdb.connect(str(path))
    try:
        con.execute(QUARANTINE_SCHEMA)
        con.register("incoming", rows)
        con.execute(
            'INSERT INTO quarantine SELECT "table", source_file, line, rule, row FROM incoming'
        )
        con.unregister("incoming")
    finally:
        con.close()


def read_quarantine(path: Path, limit: int | None = None) -> list[QuarantinedRow]:
    """The rows of a quarantine file, in the order they were written."""
    if not path.exists():
        return []
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        columns = {c[0] for c in con.execute("DESCRIBE quarantine").fetchall()}
        line = "line" if "line" in columns else "NULL"  # a file written before lines were kept
        sql = f'SELECT "table", source_file, rule, row, {line} FROM quarantine'
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = con.execute(sql).fetchall()
    return [
        QuarantinedRow(t, f, r, None if r == "malformed" else json.loads(text), n, text)
        for t, f, r, text, n in rows
    ]
