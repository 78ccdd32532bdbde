"""Benchmark: the interest counts' join, plain against heavy users counted by what they lack.

From a generated platform's Parquet files, the audience members (T(a) with E(a) marked, P under
the shared key) and the interests of users are made once in DuckDB as the build makes them
(dense keys, engagements only, pairs deduplicated before the hierarchy). Then, alternating,
``--repeat`` times, in one process:

- **plain**: every member of an account joined with every interest the user holds, counted per
  (account, interest) — the build's query before heavy users were split off;
- **split**: ``semantics.heavy_users`` then ``semantics.interest_member_counts`` as the build
  runs them (light users joined with what they hold, heavy users with what they lack).

``--heavy N`` first adds N users who hold every interest but three and sit in 550 accounts each
(engaged in half): what a few bots or power users do to the plain join. The two results are
checked equal, row for row. Figures are process CPU seconds (all threads) and wall seconds; the
machine may be shared, so compare the two in the same run. Usage::

    python benchmarks/interest_join.py /work/bench-data/events-20000000 [--heavy 2000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import ibis

from pinsights.engine import semantics

MAKE_INPUTS = """
CREATE TEMP TABLE accounts AS SELECT ad_account_id AS id,
  (row_number() OVER (ORDER BY ad_account_id))::INTEGER AS k FROM read_parquet('{data}/ad_accounts.parquet');
CREATE TEMP TABLE interests AS SELECT interest_id AS id, parent_id,
  (row_number() OVER (ORDER BY interest_id))::INTEGER AS k FROM read_parquet('{data}/interests.parquet');
CREATE TEMP TABLE levels AS WITH RECURSIVE tree AS (
  SELECT k, k AS l1, NULL::INTEGER AS l2, id FROM interests WHERE parent_id IS NULL
  UNION ALL SELECT i.k, t.l1, coalesce(t.l2, i.k), i.id FROM interests i JOIN tree t ON i.parent_id = t.id)
  SELECT k, l1, l2 FROM tree;
CREATE TEMP TABLE pins AS SELECT p.pin_id, a.k AS account, i.k AS interest
  FROM read_parquet('{data}/pins.parquet') p LEFT JOIN accounts a ON p.ad_account_id = a.id
  LEFT JOIN interests i ON p.interest_id = i.id;
CREATE TEMP TABLE events AS SELECT e.user_id, p.account, p.interest, e.event_type <> 'IMPRESSION' AS engaged
  FROM read_parquet('{data}/events/**/*.parquet') e JOIN pins p USING (pin_id);
CREATE TEMP TABLE members AS
  SELECT account AS account_key, user_id, bool_or(engaged) AS engaged FROM events
  WHERE account IS NOT NULL GROUP BY ALL
  UNION ALL SELECT DISTINCT 0::INTEGER, user_id, false FROM events;
CREATE TEMP TABLE user_interests AS SELECT DISTINCT user_id, interest AS interest_key FROM (
  SELECT user_id, unnest([l.l1, l.l2]) AS interest
  FROM (SELECT DISTINCT user_id, interest FROM events WHERE engaged AND interest IS NOT NULL) pairs
  JOIN levels l ON pairs.interest = l.k) WHERE interest IS NOT NULL;
DROP TABLE events;
"""

ADD_HEAVY = """
INSERT INTO user_interests SELECT 10000000000 + u, k FROM range({n}) r(u),
  (SELECT DISTINCT interest_key AS k FROM user_interests) WHERE k > 3;
INSERT INTO members SELECT a::INTEGER, 10000000000 + u, a % 2 = 0 FROM range({n}) r(u), range(1, 551) s(a);
INSERT INTO members SELECT 0, 10000000000 + u, false FROM range({n}) r(u);
"""


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--heavy", type=int, default=0, help="bot-like heavy users to add")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    con = ibis.duckdb.connect()
    raw = con.con
    for setting in ("TimeZone = 'UTC'", "preserve_insertion_order = false"):
        raw.execute(f"SET {setting}")
    raw.execute("SET perfect_ht_threshold = 24")  # as the build's DuckDB backend sets it
    for statement in MAKE_INPUTS.format(data=args.data).split(";"):
        if statement.strip():
            raw.execute(statement)
    if args.heavy:
        for statement in ADD_HEAVY.format(n=args.heavy).split(";"):
            if statement.strip():
                raw.execute(statement)
    members = con.table("members")
    interests = con.table("user_interests")
    sizes = raw.execute(
        "SELECT (SELECT count(*) FROM members WHERE account_key <> 0),"
        " (SELECT count(*) FROM user_interests)"
    ).fetchone()
    print(f"{args.data.name}, {args.heavy} heavy users added: {sizes} (account members, interests)")

    advertised = members.filter(members.account_key != semantics.SHARED_ACCOUNT_KEY)
    joined = advertised.join(interests, advertised.user_id == interests.user_id)
    plain = joined.group_by(
        account_key=joined.account_key, interest_key=joined.interest_key
    ).aggregate(total=joined.count(), engaged=joined.count(where=joined.engaged))

    def split() -> ibis.Table:
        raw.execute(
            "CREATE OR REPLACE TEMP TABLE heavy AS "
            + str(ibis.to_sql(semantics.heavy_users(interests), dialect="duckdb"))
        )
        heavy = con.table("heavy")
        counted = semantics.interest_member_counts(members, interests, heavy)
        return counted.filter(counted.account_key != semantics.SHARED_ACCOUNT_KEY)

    for attempt in range(1, args.repeat + 1):
        for name in ("plain", "split"):
            started, wall = cpu(), time.perf_counter()
            expression = plain if name == "plain" else split()
            sql = str(ibis.to_sql(expression, dialect="duckdb"))
            raw.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
            used, seconds = cpu() - started, time.perf_counter() - wall
            rows = raw.execute(f"SELECT count(*) FROM {name}").fetchone()
            print(f"run {attempt} {name:5}: {used:6.2f} CPU s {seconds:6.2f} s, {rows[0]:,} cells")
    heavy_users = raw.execute("SELECT count(*) FROM heavy").fetchone()
    different = raw.execute(
        "SELECT count(*) FROM ((SELECT * FROM plain EXCEPT ALL SELECT account_key, interest_key,"
        " total, engaged FROM split) UNION ALL (SELECT account_key, interest_key, total, engaged"
        " FROM split EXCEPT ALL SELECT * FROM plain))"
    ).fetchone()
    print(f"heavy users: {heavy_users[0]:,}; cells that differ: {different[0]}")
    if different[0]:
        raise SystemExit("the split's counts differ from the plain join's")


if __name__ == "__main__":
    main()
