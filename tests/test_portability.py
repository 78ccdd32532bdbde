"""The one definition of the semantics compiles for Spark SQL too: nothing DuckDB-only slips in.

Every expression the build runs — the input rules of every table (for text and for typed sources),
the interest hierarchy walk, facts, memberships, interests of users and all counts — is built over
unbound tables and compiled for the ``pyspark`` dialect, then parsed back by sqlglot's Spark parser.
"""

from __future__ import annotations

import datetime as dt
import functools

import ibis
import ibis.expr.types as ir
import pytest
import sqlglot

from pinsights.data import validate
from pinsights.data.tables import TABLES, Kind, Table
from pinsights.engine import semantics
from pinsights.engine.dp import bounding
from pinsights.engine.dp.parameters import Caps
from pinsights.engine.privacy import PrivacyRules

NATIVE = {Kind.DIGITS: "string", Kind.STRING: "string", Kind.INT64: "int64"}


def raw_table(table: Table, *, as_text: bool) -> ir.Table:
    """A raw table as a loader exposes it: text columns (CSV/JSONL) or Parquet's own types."""
    schema = {}
    for column in table.columns:
        if as_text:
            schema[column.name] = "string"
        elif column.kind is Kind.TIMESTAMP:
            schema[column.name] = "timestamp('UTC')"
        else:
            schema[column.name] = NATIVE[column.kind]
    schema[validate.SOURCE_FILE] = "string"
    return ibis.table(schema, name=f"raw_{table.name}")


def stand_in(expression: ir.Table, name: str) -> ir.Table:
    """An unbound table of ``expression``'s schema, for the steps that read it: a build
    materialises each table's checked rows before the next step reads them, so each step's SQL
    holds its own operations only (compiling every step with all the steps before it inlined
    took ~30 s of this file's time for nothing the steps' own SQL does not show)."""
    return ibis.table(expression.schema(), name=name)


def definition(as_text: bool) -> dict[str, ir.Expr]:
    """Every expression of a build, keyed by step, over unbound tables."""
    expressions: dict[str, ir.Expr] = {}
    used_keys: dict[str, ir.Column] = {}
    used: dict[str, ir.Table] = {}
    levels: ir.Table | None = None
    for table in TABLES:
        skip = frozenset({"interests"}) if table.name == "interests" else frozenset()
        lookups = None
        if table.name == "events":
            assert levels is not None
            account_keys = semantics.dense_keys(used["ad_accounts"], "ad_account_id", "account_key")
            interest_keys = semantics.dense_keys(levels, "interest_id", "interest_key")
            expressions["keyed levels"] = semantics.keyed_levels(levels, interest_keys)
            expressions["keyed pins"] = semantics.keyed_pins(
                used["pins"], account_keys, interest_keys
            )
            lookups = {"pin_id": expressions["keyed pins"]}
        checked = validate.check_table(
            raw_table(table, as_text=as_text),
            table,
            used_keys=used_keys,
            skip_references=skip,
            lookups=lookups,
        )
        keep = semantics.event_columns if table.name == "events" else None
        finished = validate.finish(checked, table, keep=keep)
        expressions[f"check {table.name}"] = finished
        expressions[f"quarantine {table.name}"] = validate.quarantine_rows(finished, table)
        expressions[f"rule counts {table.name}"] = validate.rule_counts(finished)
        used[table.name] = stand_in(validate.used_rows(finished), f"used_{table.name}")
        if table.primary_key:
            used_keys[table.name] = used[table.name][table.primary_key]
        if table.name == "interests":
            roots = semantics.interest_roots(used["interests"])
            level2 = semantics.interest_children(used["interests"], roots)
            levels = roots.union(level2, semantics.interest_children(used["interests"], level2))
            expressions["interest levels"] = levels
            levels = stand_in(levels, "interest_levels")
            expressions["unknown parents"] = validate.mark_unknown_references(
                checked, ~checked.interest_id.isin(levels.interest_id)
            )
    start, end = semantics.window_bounds(dt.date(2026, 11, 27), 30)
    expressions["event span"] = semantics.event_span(used["events"], [(start, end)])
    facts = semantics.engagement_facts(used["events"], start, end)
    members = semantics.memberships(facts)
    interests_of_users = semantics.user_interests(
        semantics.events_in_window(used["events"], start, end), expressions["keyed levels"]
    )
    value_keys = semantics.demographic_value_keys(used["users"])
    member_values = semantics.member_demographics(members, used["users"], value_keys)
    rules = PrivacyRules()
    expressions["facts"] = facts
    expressions["memberships"] = members
    expressions["user interests"] = interests_of_users
    expressions["sizes"] = semantics.audience_sizes(members)
    expressions["interest counts"] = rules.suppress_small_cells(
        semantics.interest_counts(members, interests_of_users)
    )
    expressions["demographic value keys"] = value_keys
    expressions["member demographics"] = member_values
    expressions["demographic counts"] = rules.suppress_small_cells(
        semantics.demographic_counts(member_values, value_keys)
    )
    # The exact counts: T and E counted together over the audience members.
    audience = semantics.audience_members(facts)
    audience_values = semantics.member_demographics(audience, used["users"], value_keys)
    expressions["audience members"] = audience
    expressions["audience sizes"] = semantics.sizes_of_audiences(audience)
    expressions["audience interest counts"] = rules.suppress_small_cells(
        semantics.interest_counts_of_audiences(audience, interests_of_users)
    )
    expressions["audience member demographics"] = audience_values
    expressions["audience demographic counts"] = rules.suppress_small_cells(
        semantics.demographic_counts_of_audiences(audience_values, value_keys)
    )
    # The DP mode's bounding (engine/dp/bounding.py) runs on every engine too.
    dp_members = bounding.part_memberships(facts)
    dp_interests = bounding.bounded_user_interests(
        interests_of_users, expressions["keyed levels"], Caps()
    )
    expressions["dp memberships"] = dp_members
    expressions["dp bounded interests"] = dp_interests
    expressions["dp interest counts"] = semantics.interest_counts(dp_members, dp_interests)
    return expressions


@functools.cache
def spark_sql(as_text: bool) -> dict[str, str]:
    """Every step of the definition as Spark SQL, compiled once a session (two tests read it)."""
    return {
        step: str(ibis.to_sql(expression, dialect="pyspark"))
        for step, expression in definition(as_text).items()
    }


@pytest.mark.parametrize("as_text", [True, False], ids=["text sources", "typed sources"])
def test_whole_definition_compiles_for_spark_sql(as_text: bool) -> None:
    for step, sql in spark_sql(as_text).items():
        assert sql.strip(), step
        sqlglot.parse_one(sql, read="spark")  # raises on anything Spark SQL cannot parse


def test_spark_sql_uses_spark_functions_not_duckdb_ones() -> None:
    sql = " ".join(spark_sql(True).values())
    assert "TO_JSON(STRUCT(" in sql, "rows are serialised with Spark's to_json(struct(...))"
    assert "RLIKE" in sql, "patterns use Spark's RLIKE"
    for duckdb_only in ("REGEXP_MATCHES", "LIST_CONTAINS", "STRUCT_PACK", "::"):
        assert duckdb_only not in sql, duckdb_only
