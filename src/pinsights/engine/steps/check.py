"""The check step: read → validate → quarantine (SPEC §2).

Every table is read as a raw table by the engine's reader and judged by the portable rules
(:mod:`pinsights.data.validate`), each after the tables it references (:mod:`.schedule`). Before
the events are judged, accounts and interests get dense integer keys and pins are re-keyed with
them, so the check of each event also looks up its pin's advertiser and interest: the later steps
join on those keys. Then the rules' counts give each table's read/used/quarantined figures, the
quarantined rows are handed over to be written, and a table with too many bad rows stops the build.

What it makes (the :class:`Checked` input holds them): the checked tables, the interest levels,
the keys. The pins (checked and keyed) are freed as soon as the events were judged; the events and
the users when the last date no longer needs them (:meth:`Checked.free_events`,
:meth:`Checked.free_users`); the rest with the build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data import validate
from pinsights.data.sources import DataPath, InputError, TableSource
from pinsights.data.tables import TABLES, TABLES_BY_NAME, Rule, Table
from pinsights.engine import semantics
from pinsights.engine.backend import Backend
from pinsights.engine.steps import BuildError
from pinsights.engine.steps.schedule import check_waves
from pinsights.engine.steps.scope import Scope

#: The quarantined rows' columns, as :func:`quarantine` hands them over.
QUARANTINE = pa.schema(
    [
        ("table", pa.string()),
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("rule", pa.string()),
        ("row", pa.string()),
    ]
)

#: Levels of the interest hierarchy walked by one query (categories, subcategories and a level
#: below them: the depth of the usual taxonomies, then one more to see that nothing is deeper).
WALK_LEVELS = 4


@dataclass
class Keys:
    """Dense integer keys of accounts and interests, and the tables re-keyed with them."""

    accounts: dict[int, str]
    interests: dict[int, str]
    pins: ir.Table
    levels: ir.Table
    named_levels: ir.Table  # the hierarchy with interest ids, for names


@dataclass
class Checked:
    """The checked input: each table's materialised check (rows with their rule), its used rows,
    the keys, and the scope that owns them."""

    scope: Scope
    tables: dict[str, ir.Table]  # in contract order
    keys: Keys
    #: The used rows of tables not checked here (the refresh state's check of the same files).
    reused: dict[str, ir.Table] = field(default_factory=dict)
    used: dict[str, ir.Table] = field(init=False)

    def __post_init__(self) -> None:
        self.used = {name: validate.used_rows(table) for name, table in self.tables.items()}
        self.used.update(self.reused)

    def free_pins(self) -> None:
        """The pins served the events' check; nothing after reads them."""
        # A build that reused the refresh state's keyed pins has no checked pins table.
        self.scope.free(*[t for t in (self.tables.get("pins"), self.keys.pins) if t is not None])

    def free_events(self) -> None:
        self.scope.free(self.tables["events"])

    def free_users(self) -> None:
        self.scope.free(*[t for t in (self.tables.get("users"),) if t is not None])


def read(
    backend: Backend, data_dir: DataPath
) -> tuple[dict[str, TableSource], dict[str, ir.Table]]:
    """The dataset's tables, found and opened as raw tables by the engine's reader."""
    try:
        sources = backend.discover(data_dir)
        raw = {name: backend.raw_table(source) for name, source in sources.items()}
    except InputError as error:
        raise BuildError(str(error)) from error
    return sources, raw


def check_tables(
    backend: Backend,
    raw: dict[str, ir.Table],
    *,
    keyed_pins: ir.Table | None = None,
    reused: dict[str, ir.Table] | None = None,
    levels: ir.Table | None = None,
) -> Checked:
    """Judge every table, each after the tables it references; the checked input.

    Tables that do not depend on each other are judged at the same time (see
    :func:`~pinsights.engine.steps.schedule.check_waves`). ``keyed_pins``: the keyed used pins
    of an earlier check of the same pins, ad accounts and interests (the incremental refresh's
    state; ``raw`` has no pins then): materialised as they are, not judged again. ``reused``:
    the used rows of tables an earlier check judged from the same files (``raw`` has none of
    them), and ``levels`` the interests' hierarchy when the interests are among them.
    """
    scope = Scope(backend)
    reused = reused or {}
    checked: dict[str, ir.Table] = {}
    used_keys = {
        name: used[table.primary_key]
        for name, used in reused.items()
        if (table := TABLES_BY_NAME[name]).primary_key is not None
    }
    keys: Keys | None = None
    if "interests" not in reused:
        result, levels = _check_interests(scope, raw["interests"], TABLES_BY_NAME["interests"])
        checked["interests"] = result
        used_keys["interests"] = validate.used_rows(result)["interest_id"]
    assert levels is not None
    for wave in check_waves([table for table in TABLES if table.name in raw]):
        exprs: dict[str, ir.Table] = {}
        for table in wave:
            lookups, keep, by_value = None, None, frozenset[str]()
            if table.name == "events":
                used = {name: validate.used_rows(done) for name, done in checked.items()}
                keys = _keys(scope, used | reused, levels, keyed_pins)
                lookups, keep = {"pin_id": keys.pins}, semantics.event_columns
                by_value = events_by_value(backend)
            expr = validate.check_table(
                raw[table.name],
                table,
                used_keys=used_keys,
                lookups=lookups,
                hashed_sets=scope.backend.hashes_value_lists,
                by_value=by_value,
                sorted_keys=sorted_keys(backend),
            )
            exprs[f"checked_{table.name}"] = validate.finish(expr, table, keep=keep)
        results = scope.materialize_all(exprs)
        for table in wave:
            checked[table.name] = results[f"checked_{table.name}"]
            if table.primary_key is not None:
                used_keys[table.name] = validate.used_rows(checked[table.name])[table.primary_key]
    if keys is None:  # no events among ``raw``: the incremental refresh judges them itself
        used = {name: validate.used_rows(done) for name, done in checked.items()}
        keys = _keys(scope, used | reused, levels, keyed_pins)
    ordered = {table.name: checked[table.name] for table in TABLES if table.name in checked}
    return Checked(scope=scope, tables=ordered, keys=keys, reused=reused)


def events_by_value(backend: Backend) -> frozenset[str]:
    """The events' references checked per distinct value (``validate.check_table``'s
    ``by_value``): the users' on DuckDB, where a left join of 20M events with every used user
    cost ~2 CPU s more than one with the few unknown ones found from the users present
    (BENCHMARKS.md, "Ninth round"). Spark keeps the join with every used user (not measured)."""
    return frozenset({"user_id"}) if backend.name == "duckdb" else frozenset()


def sorted_keys(backend: Backend) -> bool:
    """The duplicate keys looked for among the keys seen twice in sorted order first
    (``validate.check_table``'s ``sorted_keys``): DuckDB, where the users' and pins' check at
    100M events spent ~3 CPU s each grouping its keys (BENCHMARKS.md, "Tenth round")."""
    return backend.name == "duckdb"


def _check_interests(scope: Scope, raw: ir.Table, table: Table) -> tuple[ir.Table, ir.Table]:
    """Interests reference each other: the hierarchy is judged by walking down from the categories.

    An interest is used when its chain of parents reaches a level-1 interest through used interests;
    one in a cycle or below a quarantined interest never does and is an ``unknown_reference``.
    """
    first = scope.materialize(
        "checked_interests_first",
        validate.check_table(
            raw,
            table,
            used_keys={},
            skip_references=frozenset({"interests"}),
            hashed_sets=scope.backend.hashes_value_lists,
            sorted_keys=sorted_keys(scope.backend),
        ),
    )
    candidates = validate.used_rows(first)
    # WALK_LEVELS levels per query, kept with their deepest level: the walk goes on only while
    # that one is not empty (on Spark each query is a job with its fixed cost).
    level = semantics.interest_roots(candidates)
    reached: list[ir.Table] = []
    while True:
        batch = [level]
        for _ in range(WALK_LEVELS - 1):
            batch.append(semantics.interest_children(candidates, batch[-1]))
        walked, deepest = f"interest_levels_{len(reached)}", f"interest_frontier_{len(reached)}"
        kept = scope.materialize_all({walked: batch[0].union(*batch[1:]), deepest: batch[-1]})
        reached.append(kept[walked])
        if not scope.backend.rows(kept[deepest]):
            break
        level = semantics.interest_children(candidates, kept[deepest])
    levels = (
        scope.materialize("interest_levels", reached[0].union(*reached[1:]))
        if len(reached) > 1
        else reached[0]
    )
    checked = validate.mark_unknown_references(first, ~first.interest_id.isin(levels.interest_id))
    result = scope.materialize("checked_interests", validate.finish(checked, table))
    return result, levels


def _keys(
    scope: Scope, used: dict[str, ir.Table], levels: ir.Table, pins: ir.Table | None = None
) -> Keys:
    backend = scope.backend
    dense = scope.materialize_all(
        {
            "account_keys": semantics.dense_keys(
                used["ad_accounts"], "ad_account_id", "account_key"
            ),
            "interest_keys": semantics.dense_keys(levels, "interest_id", "interest_key"),
        }
    )
    account_keys, interest_keys = dense["account_keys"], dense["interest_keys"]
    accounts = backend.to_arrow(account_keys).to_pydict()
    interests = backend.to_arrow(interest_keys).to_pydict()
    keyed = scope.materialize_all(
        {
            "keyed_pins": (
                semantics.keyed_pins(used["pins"], account_keys, interest_keys)
                if pins is None
                else pins
            ),
            "keyed_levels": semantics.keyed_levels(levels, interest_keys),
        }
    )
    return Keys(
        accounts=dict(zip(accounts["account_key"], accounts["ad_account_id"], strict=True)),
        interests=dict(zip(interests["interest_key"], interests["interest_id"], strict=True)),
        pins=keyed["keyed_pins"],
        levels=keyed["keyed_levels"],
        named_levels=levels,
    )


def quarantine(
    backend: Backend, checked: Checked, max_bad_fraction: float
) -> tuple[dict[str, dict[str, Any]], pa.Table, list[str]]:
    """Count rules per table; return each table's figures for the report, the quarantined rows
    (to be written), and one line per table with too many bad rows (see :func:`too_many_bad`)."""
    failures: list[str] = []
    tables: dict[str, dict[str, Any]] = {}
    if not checked.tables:  # every table's check was the refresh state's
        return tables, pa.Table.from_batches([], schema=QUARANTINE), failures
    # One query for every table's counts: one round trip (on Spark, one job's worth of overhead).
    per_table = [
        validate.rule_counts(table_checked).mutate(table=ibis.literal(name))
        for name, table_checked in checked.tables.items()
    ]
    counted = backend.to_arrow(union_all(per_table)).to_pylist()
    for name in checked.tables:
        rows = [row for row in counted if row["table"] == name]
        by_rule = {row[validate.RULE]: int(row["rows"]) for row in rows}
        read = sum(by_rule.values())
        used = by_rule.pop(None, 0)
        quarantined = {rule.value: by_rule[rule.value] for rule in Rule if by_rule.get(rule.value)}
        tables[name] = {"read": read, "used": used, "quarantined": quarantined}
        if (failure := too_many(name, tables[name], max_bad_fraction)) is not None:
            failures.append(failure)
    parts = [
        validate.quarantine_rows(table_checked, TABLES_BY_NAME[name])
        for name, table_checked in checked.tables.items()
    ]
    rows = backend.to_arrow(union_all(parts))
    return tables, rows, failures


def union_all(parts: list[ir.Table]) -> ir.Table:
    """The rows of every table of ``parts`` (one or more), duplicates kept."""
    return parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]


def too_many(name: str, figures: dict[str, Any], max_bad_fraction: float) -> str | None:
    """The line saying that table ``name`` (its report ``figures``) has too many bad rows."""
    read, bad = figures["read"], figures["read"] - figures["used"]
    if not read or bad / read <= max_bad_fraction:
        return None
    summary = ", ".join(f"{rule}: {n}" for rule, n in figures["quarantined"].items())
    return f"{name}: {bad} of {read} rows quarantined ({bad / read:.2%}; {summary})"


def too_many_bad(failures: list[str], max_bad_fraction: float) -> BuildError:
    return BuildError(
        f"too many bad rows (more than --max-bad-fraction={max_bad_fraction}):\n  "
        + "\n  ".join(failures)
        + "\nnothing was published; see `pinsights quarantine` for the rows"
    )
