"""The users' check diffed by key against the state's, when the users' files changed.

A daily export of the users rewrites their file for a few edited rows (the benchmark edits
0.5 % of them a day); checking a million users again cost ~0.7 CPU s at 20M events, and
diffing every user's demographic values with the window part's another ~0.3. The users' check
is a function of their files' rows (row rules read the row alone, the duplicate-key rule the
passing rows of the same typed ``user_id``; no column references another table), so only the
rows of the keys whose rows changed can be judged otherwise:

- the users' part keeps a copy of the users' Parquet files it was checked from
  (``tables/users-raw-<k>.parquet``, digests in the part's ``digests``);
- a build whose users' files changed reads that copy with the reader that reads the users
  (the same columns and types, or the users are checked in full), its ``__source_file`` put
  back to the path it was read from, and pairs its rows with the new files' rows
  (``POSITIONAL JOIN``: the same order, the same row, in the usual export). A row in a pair
  whose every column is equal is the same row; the keys of the other rows (both sides, and
  rows without a pair) are the changed keys A (a null key: the rows without a typed key);
- for a key outside A the rows with that key are the same multiset in both reads (each such row
  is paired with an equal row), so their judgements — used row, rule, quarantined row — are
  the state's; the rows with a key in A are judged again, old and new apart, each as a table of
  its own (every row of those keys is there: the duplicate-key rule sees what a full check
  sees). The used users are the state's less A's, plus the new judgement's; the figures the
  state's less the old judgement's, plus the new's; the quarantined rows the state's less the
  old judgement's (a multiset difference: they are among them, once each), plus the new's.

DuckDB only (the positional join); Spark checks the users in full and keeps the same copy.
docs/engine.md ("What a build with a state does") gives the argument whole.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data import validate
from pinsights.data.sources import TableSource, input_file
from pinsights.data.tables import SOURCE_FILE, USERS, Kind, Rule
from pinsights.engine.backend import Backend
from pinsights.engine.compiled import sql_of
from pinsights.engine.refresh.state import CheckPart, raw_names, table_path
from pinsights.engine.steps.check import union_all

#: Above this share of the users' keys changed, the full check costs less (the tests raise it).
MAX_CHANGED = 0.25


def copy_raw(staging: Path, inputs: list[list[str]]) -> dict[str, str]:
    """A copy of each users file the check read (never a link: the file may be rewritten in
    place); the digests, the inputs' (taken before the check read them)."""
    digests = {}
    for name, (path, digest) in zip(raw_names(inputs), inputs, strict=False):
        target = table_path(staging, "users", name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        digests[name] = digest
    return digests


@dataclass(frozen=True)
class _StateSource(TableSource):
    """The state's copies of the users files, read by the users' reader under another view."""

    @property
    def view(self) -> str:
        return "refresh_users_raw"


@dataclass
class Diffed:
    """The users judged by key: the used rows, the figures, the quarantined rows' change."""

    used: ir.Table
    changed: ir.Table  # the changed keys (``user_id``; a null one: the rows of no typed key)
    old: ir.Table  # the old rows of those keys, judged
    new: ir.Table  # ... and the new ones
    old_figures: dict[str, Any]
    quarantined: Path  # the state's quarantined users

    def figures(self, backend: Backend) -> dict[str, Any]:
        """The state's figures less the old judgement's, plus the new's."""
        sides = [
            validate.rule_counts(t).mutate(side=ibis.literal(s))
            for s, t in ((-1, self.old), (1, self.new))
        ]
        figures = {
            "read": self.old_figures["read"],
            "used": self.old_figures["used"],
            "quarantined": dict(self.old_figures["quarantined"]),
        }
        for row in backend.to_arrow(union_all(sides)).to_pylist():
            n, rule = int(row["side"]) * int(row["rows"]), row[validate.RULE]
            figures["read"] += n
            if rule is None:
                figures["used"] += n
            else:
                quarantined = figures["quarantined"]
                quarantined[rule] = quarantined.get(rule, 0) + n
        # In the rules' order, none at 0: as check.quarantine gives them.
        order = [rule.value for rule in Rule]
        rules = figures["quarantined"]
        figures["quarantined"] = {rule: rules[rule] for rule in order if rules.get(rule)}
        return figures

    def rows(self, backend: Backend, schema: pa.Schema) -> pa.Table:
        """The state's quarantined users less the old judgement's rows, plus the new's."""
        kept = backend.read_parquet("refresh_users_quarantined", [self.quarantined])
        kept = kept.select(*schema.names)
        old, new = (validate.quarantine_rows(t, USERS) for t in (self.old, self.new))
        rows = kept.difference(old.cast(kept.schema()), distinct=False)
        return backend.to_arrow(union_all([rows, new.cast(kept.schema())])).cast(schema)


def diff(
    backend: Backend, root: Path, part: CheckPart, raw: ir.Table, used: ir.Table
) -> tuple[Diffed | None, str]:
    """The users judged by key against the state's ``part`` (its used rows ``used``), or None
    and why not (then they are checked in full)."""
    names = raw_names(part.inputs)
    if backend.name != "duckdb":
        return None, "users checked in full (diffed by key on DuckDB only)"
    if not names or set(names) - set(part.digests):
        return None, "users checked in full (the state has no copy of Parquet users files)"
    copies = [table_path(root, "users", name) for name in names]
    source = _StateSource(USERS, tuple(input_file(path) for path in copies))  # type: ignore[misc]
    old = backend.raw_table(source)
    if old.schema() != raw.schema():
        return None, "users checked in full (their columns differ from the state's)"
    # The copies' rows as read from where the part read them.
    origin = old[SOURCE_FILE]
    cases = [(origin == str(c), path) for c, (path, _) in zip(copies, part.inputs, strict=True)]
    old = old.mutate(**{SOURCE_FILE: ibis.cases(*cases, else_=origin)})
    every = _changed_keys(backend, old, raw)
    counted = backend.to_arrow(
        every.aggregate(keys=every.count(), null=every.user_id.isnull().any())
    ).to_pylist()[0]
    changed = every.filter(every.user_id.notnull())  # a null in an IN list: no row is NOT IN
    if counted["keys"] > MAX_CHANGED * max(part.figures["read"], 1):
        return None, f"users checked in full ({counted['keys']} keys changed)"
    has_null = bool(counted["null"])

    def judged(table: ir.Table, name: str) -> ir.Table:
        key = _key(table)
        mine = key.isin(changed.user_id) | (key.isnull() & ibis.literal(has_null))
        checked = validate.check_table(
            table.filter(mine), USERS, used_keys={}, hashed_sets=backend.hashes_value_lists
        )
        return backend.materialize(name, validate.finish(checked, USERS))

    old_judged, new_judged = judged(old, "refresh_users_old"), judged(raw, "refresh_users_new")
    fresh = validate.used_rows(new_judged)
    kept = used.filter(~used.user_id.isin(changed.user_id))
    # Not materialised: read where it is used (the events' users, the users' part written).
    used_now = union_all([kept, fresh.select(*used.columns).cast(used.schema())])
    quarantined = table_path(root, "users", "quarantined")
    diffed = Diffed(used_now, changed, old_judged, new_judged, part.figures, quarantined)
    return diffed, f"users diffed by key ({counted['keys']} keys changed)"


def _key(raw: ir.Table) -> ir.Value:
    """A row's typed ``user_id``, as the duplicate-key rule groups the passing rows by it."""
    return validate.typed_column(raw["user_id"], Kind.INT64)[0]


def _changed_keys(backend: Backend, old: ir.Table, new: ir.Table) -> ir.Table:
    """The typed keys of the rows of ``old`` and ``new`` not paired with an equal row."""
    columns = old.columns
    o = sql_of(backend.ibis, old.mutate(__refresh_key=_key(old)))  # type: ignore[attr-defined]
    n = sql_of(backend.ibis, new.mutate(__refresh_key=_key(new)))  # type: ignore[attr-defined]
    quoted = ['"' + c.replace('"', '""') + '"' for c in columns]  # any name a file gives
    differ = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in quoted)
    con = backend.con  # type: ignore[attr-defined]
    # The pairs by position need the rows in the files' order.
    con.execute("SET preserve_insertion_order = true")
    try:  # as the backend's statements: timed by the profile, failures explained
        backend.execute(  # type: ignore[attr-defined]
            'CREATE OR REPLACE TABLE "refresh_users_changed" AS'
            " SELECT DISTINCT unnest([o.__refresh_key, n.__refresh_key]) AS user_id"
            f" FROM ({o}) o POSITIONAL JOIN ({n}) n WHERE {differ}"
        )
    finally:
        con.execute("SET preserve_insertion_order = false")
    return backend.ibis.table("refresh_users_changed")  # type: ignore[attr-defined]
