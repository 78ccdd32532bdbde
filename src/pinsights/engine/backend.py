"""The backend protocol: what the build asks of an engine, whichever runs the expressions.

A backend knows how to expose input files as raw tables, materialise intermediate results and hand
results back as Arrow. The semantics (``engine/semantics.py``) and the rules
(``data/validate.py``) never see which backend they run on. Each engine is a package beside this
module that implements it: :mod:`pinsights.engine.duckdb` (the default, in-process) and
:mod:`pinsights.engine.spark` (an optional extra, imported only when asked for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data.sources import DataPath, TableSource


class BackendError(Exception):
    """The engine cannot run here or failed on the input; the message says what to do.

    Each backend turns its engine's failures it can explain into this error (a file it cannot
    read, too little memory), so the build handles every engine's failures alike."""


class Backend(Protocol):
    name: str
    #: The engine tests a value against a long list of constants (``IN (…)``) by a hash set
    #: lookup (Spark's ``InSet``), not one comparison per constant: the rules then test a long value
    #: set directly instead of joining the distinct values present (data/validate.py).
    hashes_value_lists: bool

    def discover(self, data_dir: DataPath) -> dict[str, TableSource]:
        """The dataset's tables (SPEC §2), listed with the file system the engine reads."""
        ...

    def raw_table(self, source: TableSource) -> ir.Table: ...

    def materialize(self, name: str, expr: ir.Table) -> ir.Table: ...

    def materialize_all(self, exprs: Mapping[str, ir.Table]) -> dict[str, ir.Table]:
        """Materialise independent results, at the same time where the engine can."""
        ...

    def release(self, *names: str) -> None:
        """Forget materialised results no later step reads, so their memory serves the next."""
        ...

    def to_arrow(self, expr: ir.Expr) -> pa.Table: ...

    def scalar(self, expr: ir.Scalar) -> object: ...

    def rows(self, table: ir.Table) -> int:
        """How many rows ``table`` has (known without a query for a result just materialised,
        where the engine counted it while keeping it)."""
        ...

    def write_parquet(self, expr: ir.Table, path: Path) -> None:
        """``expr``'s rows as one Parquet file at ``path`` (a refresh state's file): either
        engine writes the types the other reads back as its own — integers of their width, a
        timestamp with time zone as UTC microseconds."""
        ...

    def write_parquet_parts(self, expr: ir.Table, stem: Path) -> list[Path]:
        """``expr``'s rows as Parquet files ``<stem>-0.parquet``, ``<stem>-1.parquet``, …: one
        where the engine writes from one thread (DuckDB), one per task where it writes in
        parallel (Spark: one task per file keeps the query before the write parallel); the
        files, in order. Types as :meth:`write_parquet`'s."""
        ...

    def read_parquet(self, name: str, paths: Sequence[Path]) -> ir.Table:
        """The rows of Parquet files (a refresh state's, whichever engine wrote them) as the
        table ``name``; dropped by :meth:`release`."""
        ...

    def close(self) -> None: ...
