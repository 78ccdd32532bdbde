"""The compiled-query cache (engine/compiled.py): the SQL Ibis would write, never another query's,
and no build's connection kept alive by it."""

from __future__ import annotations

import gc
from pathlib import Path

import ibis
import ibis.expr.operations as ops

from pinsights.engine import compiled
from pinsights.engine.settings import BuildSettings
from pinsights.store.publish import build


def test_the_cached_sql_is_what_ibis_compiles_for_each_expression() -> None:
    """Expressions alike but for a literal, a column's type or a table's name get their own SQL;
    the same expression over another connection's table of that name and schema gets the same."""
    first, second = ibis.duckdb.connect(), ibis.duckdb.connect()
    first.con.execute("CREATE TABLE t AS SELECT 1::INTEGER AS a, 'x' AS b")
    second.con.execute("CREATE TABLE t AS SELECT 2::INTEGER AS a, 'y' AS b")
    second.con.execute("CREATE TABLE u AS SELECT 2::INTEGER AS a, 'y' AS b")
    second.con.execute("CREATE TABLE v AS SELECT 2::BIGINT AS a, 'y' AS b")
    expressions = [
        first.table("t").filter(ibis._.a > 1),
        first.table("t").filter(ibis._.a > 2),
        first.table("t").filter(ibis._.a > 2.5),
        second.table("t").filter(ibis._.a > 1),
        second.table("u").filter(ibis._.a > 1),
        second.table("v").filter(ibis._.a > 1),
        second.table("v").a.sum(),
    ]
    for _ in range(2):  # the second time from the cache
        for expr in expressions:
            [table] = expr.op().find(ops.DatabaseTable)
            backend = table.source
            assert compiled.sql_of(backend, expr) == backend.compile(expr)
    assert first.con.execute(compiled.sql_of(first, expressions[0])).fetchall() == []
    assert second.con.execute(compiled.sql_of(second, expressions[3])).fetchall() == [(2, "y")]


def test_a_finished_builds_connection_is_not_kept_alive_and_the_next_build_reuses_the_sql(
    tmp_path: Path,
) -> None:
    """The cache holds unbound tables: once a build is over, its DuckDB connection (and every
    table it materialised) can be freed; a second build of the same layout compiles nothing new."""
    from ibis.backends.duckdb import Backend as IbisDuckDB

    from pinsights.synthetic.generate import generate

    generate(tmp_path / "data", users=60, accounts=2, days=2, seed=3)

    def connections() -> int:
        gc.collect()
        return sum(isinstance(o, IbisDuckDB) for o in gc.get_objects())

    before = connections()
    build(BuildSettings(data_dir=tmp_path / "data", store_dir=tmp_path / "one"))
    assert connections() == before
    kept = set(compiled._kept)
    assert kept, "the build's queries are kept"
    build(BuildSettings(data_dir=tmp_path / "data", store_dir=tmp_path / "two"))
    assert connections() == before
    assert set(compiled._kept) == kept, "the second build compiled no query anew"
