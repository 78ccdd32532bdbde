"""The intermediate tables one step makes, and the moment they are freed.

A step materialises its results through a :class:`Scope`; whoever holds the scope frees them when
their last reader ran, by the table (never by a name spelled again elsewhere), so the memory they
held serves the steps after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

import ibis.expr.types as ir
import pyarrow as pa

from pinsights.engine.backend import Backend


class Scope:
    """Tables materialised on ``backend`` for one step (or one date), freed together or one by one."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._made: dict[str, ir.Table] = {}

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        return self.materialize_all({name: expr})[name]

    def materialize_all(self, exprs: Mapping[str, ir.Table]) -> dict[str, ir.Table]:
        """Independent results at once, where the engine can (see Backend.materialize_all)."""
        made = self.backend.materialize_all(exprs)
        self._made.update(made)
        return made

    def to_arrow(self, expr: ir.Expr) -> pa.Table:
        """A result of this scope's tables, in Python (as Backend.to_arrow)."""
        return self.backend.to_arrow(expr)

    def free(self, *tables: ir.Table) -> None:
        """Free tables of this scope no later step reads."""
        names = [table.get_name() for table in tables]
        self.backend.release(*names)
        for name in names:
            self._made.pop(name, None)

    def close(self) -> None:
        """Free every table of the scope still held."""
        if self._made:
            self.free(*self._made.values())

    def __enter__(self) -> Scope:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # After a failure the backend is closed as a whole: freeing table by table could fail
        # again (a JVM gone) and hide the first error.
        if error is None:
            self.close()
