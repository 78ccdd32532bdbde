"""The refresh state's dimension table parts: a table's check reused while its files are the same.

Interests, ad accounts, metros and users are each judged from their own files alone: none of
their columns references another table (an interest's parent is another interest, judged by
the walk down from the categories), and each table is read from its own files, so typed alike.
Their checks are therefore functions of their files' bytes (and paths: a quarantined row names
its file). While a table's files are the same (path and SHA-256: the part's ``inputs``), its
used rows (and, for the interests, the hierarchy the walk reached: ``levels``), its report
figures and its quarantined rows are the last check's: the state keeps them
(``tables/<table>-used.parquet``, ``-quarantined.parquet``, ``interests-levels.parquet``) and
the build reads them instead of checking the table. A table whose files changed in any way is
checked in full, as without a state, and its part written anew. On Spark a table's check is
several jobs (the interests' walk about ten), each a fixed cost whatever the rows. Users whose
files changed are diffed by key with the state's where that is exact (engine/refresh/users.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pinsights.data.sources import TableSource
from pinsights.data.tables import TABLES
from pinsights.engine.arrow_columns import string_column
from pinsights.engine.backend import Backend
from pinsights.engine.refresh import users as users_part
from pinsights.engine.refresh.state import (
    DIMENSION_TABLES,
    LEVELS,
    CheckPart,
    State,
    digest_file,
    link_or_copy,
    table_files,
    table_path,
)
from pinsights.engine.steps.check import Checked


def inputs(sources: dict[str, TableSource]) -> dict[str, list[list[str]]]:
    """(path, SHA-256) of each dimension table's files, by table."""
    return {
        name: sorted([str(f.path), digest_file(Path(str(f.path)))] for f in sources[name].files)
        for name in DIMENSION_TABLES
        if name in sources
    }


def reusable(previous: State | None, printed: dict[str, list[list[str]]]) -> dict[str, CheckPart]:
    """The state's parts of the tables whose files are the very files they were made from."""
    if previous is None:
        return {}
    return {
        name: part
        for name, part in previous.tables.items()
        if name in printed and part.inputs == printed[name]
    }


def open_used(backend: Backend, root: Path, name: str) -> ir.Table:
    """A kept table's used rows (typed columns, as ``validate.used_rows`` gives them)."""
    return backend.read_parquet(f"refresh_{name}_used", [table_path(root, name, "used")])


def open_levels(backend: Backend, root: Path) -> ir.Table:
    """The kept interests' hierarchy (interest_id, level, level1_id, level2_id)."""
    return backend.read_parquet("refresh_interest_levels", [table_path(root, "interests", LEVELS)])


def link(previous: Path, staging: Path, name: str, part: CheckPart) -> None:
    """A kept table's part into the new state (hard links)."""
    for file in table_files(name, part.inputs):
        link_or_copy(table_path(previous, name, file), table_path(staging, name, file))


def save(backend: Backend, staging: Path, name: str, tables: dict[str, ir.Table]) -> dict[str, str]:
    """A checked table's used rows (and the interests' ``levels``), written by the engine."""
    digests = {}
    for file, table in tables.items():
        path = table_path(staging, name, file)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend.write_parquet(table, path)
        digests[file] = digest_file(path)
    return digests


def save_rows(path: Path, rows: pa.Table, table: str) -> str:
    """``table``'s quarantined rows, taken from the quarantine's Arrow ``rows`` (on the driver
    already: written here, not by a query of the engine); their digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The table's name as an Arrow scalar: with a Python one, pyarrow imports pandas
    # (engine/arrow_columns.py says why a build must not).
    pq.write_table(rows.filter(pc.equal(rows["table"], string_column([table])[0])), path)
    return digest_file(path)


def read_rows(path: Path, schema: pa.Schema) -> pa.Table:
    """Kept quarantined rows, in the quarantine's shape (verified with the state)."""
    # One file's reader: pq.read_table goes through pyarrow.dataset, which imports pandas.
    with pq.ParquetFile(path) as kept:
        return kept.read().cast(schema)


@dataclass
class Parts:
    """One build's dimension table parts: the state's that stand (``kept``), this build's files
    (``inputs``), and the digests of the parts this build's checks write."""

    inputs: dict[str, list[list[str]]] = field(default_factory=dict)
    kept: dict[str, CheckPart] = field(default_factory=dict)
    _digests: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The state's users' part when the users' files changed; the users diffed with it.
    _users: CheckPart | None = None
    diffed: users_part.Diffed | None = None
    users_reason: str = ""

    def plan(self, previous: State | None, sources: dict[str, TableSource]) -> None:
        self.inputs = inputs(sources)
        self.kept = reusable(previous, self.inputs)
        if previous is not None and "users" in self.inputs and "users" not in self.kept:
            self._users = previous.tables.get("users")

    def opened(
        self, backend: Backend, root: Path | None, raw: dict[str, ir.Table]
    ) -> tuple[dict[str, ir.Table], Any]:
        """The kept tables' used rows, and the kept interests' hierarchy (or None); the users
        diffed by key (taken out of ``raw``: not checked) where they can be."""
        if root is None:
            return {}, None
        used = {name: open_used(backend, root, name) for name in self.kept}
        if self._users is not None and "users" in raw:
            old = open_used(backend, root, "users")
            self.diffed, self.users_reason = users_part.diff(
                backend, root, self._users, raw["users"], old
            )
            if self.diffed is not None:
                used["users"] = self.diffed.used
                del raw["users"]
        return used, open_levels(backend, root) if "interests" in self.kept else None

    @property
    def reused(self) -> list[str]:
        """The tables not checked here: kept, or (the users) diffed by key."""
        return [*self.kept, *(["users"] if self.diffed is not None else [])]

    @property
    def changed_users(self) -> ir.Table | None:
        """The users' keys whose rows changed (the others' rows are the state's), or None."""
        return self.diffed.changed if self.diffed is not None else None

    def keep(
        self, backend: Backend, previous: Path | None, staging: Path, checked: Checked
    ) -> None:
        """The kept parts linked into the new state; the checked tables' used rows written."""
        for name, part in self.kept.items():
            assert previous is not None
            link(previous, staging, name, part)
        for name in self.inputs.keys() - self.kept.keys():
            files = {"used": checked.used[name]}
            if name == "interests":
                files[LEVELS] = checked.keys.named_levels
            self._digests[name] = save(backend, staging, name, files)
            if name == "users":  # on either engine: the next DuckDB build diffs with them
                self._digests[name].update(users_part.copy_raw(staging, self.inputs[name]))

    def quarantine(
        self,
        backend: Backend,
        previous: Path | None,
        staging: Path | None,
        tables: dict[str, dict[str, Any]],
        rows: pa.Table,
    ) -> tuple[dict[str, CheckPart], pa.Table]:
        """The kept tables' figures (into ``tables``) and quarantined rows (added to ``rows``);
        the checked tables' rows written to their parts. Every table's part, for the new state."""
        parts = dict(self.kept)
        kept_rows = [rows]
        for name, part in self.kept.items():
            assert previous is not None
            tables[name] = dict(part.figures)
            kept_rows.append(read_rows(table_path(previous, name, "quarantined"), rows.schema))
        if self.diffed is not None:
            tables["users"] = self.diffed.figures(backend)
            rows = pa.concat_tables([rows, self.diffed.rows(backend, rows.schema)])
            kept_rows[0] = rows
        if staging is not None:
            for name, digests in self._digests.items():
                digests["quarantined"] = save_rows(
                    table_path(staging, name, "quarantined"), rows, name
                )
                parts[name] = CheckPart([*self.inputs[name]], tables[name], digests)
        order = [table.name for table in TABLES]
        ordered = sorted(tables.items(), key=lambda item: order.index(item[0]))
        tables.clear()
        tables.update(ordered)
        return parts, pa.concat_tables(kept_rows)

    def summary(self) -> dict[str, str]:
        diffed = ["users"] if self.diffed is not None else []
        return {
            name: "kept" if name in self.kept else "diffed" if name in diffed else "checked"
            for name in self.inputs
        }
