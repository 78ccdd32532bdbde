"""The refresh state's window part: the counts of the last build and what they were made of,
reduced, so that a daily build recounts only what changed (signed deltas).

Every published figure is a number of distinct users, so a build's counts can be carried to
the next day by set arithmetic: with M the audiences' member rows (account, user, engaged), I
the (user, interest) pairs and U the users' demographic values of a window,

    counts(M', I') − counts(M, I) = ΔM ⋈ I + M' ⋈ ΔI        (interest counts)
    counts(M', U') − counts(M, U) = ΔM ⋈ U + M' ⋈ ΔU        (demographic counts)
    sizes(M') − sizes(M) = Σ ΔM

(signed rows: +1 a row that enters, −1 one that leaves; the join rule of DBSP,
Δ(L⋈R) = ΔL⋈R + L⋈ΔR + ΔL⋈ΔR, with L⋈ΔR + ΔL⋈ΔR = L'⋈ΔR). Integer sums, so exact.

What the state keeps of a window ``[start, date]`` (``window/`` in the state directory):

- ``facts.parquet`` (user_id, account_key, last_day, last_engaged): per (user, advertiser) of
  the window (account_key 0: content no account owns) the latest day with an event, and the
  latest with an engagement (null: none in the window);
- ``interests.parquet`` (user_id, interest_key, last_day): I(u) (level-1 and level-2 keys), with
  the latest day of an engagement that gave it;
- ``users.parquet``: every used user's demographic values (as counted: nulls as the SPEC says);
- ``sizes``, ``interest_counts``, ``demographic_counts``: the unsuppressed counts
  (:class:`~pinsights.engine.steps.counts.Counted`).

A later window ``[start', date']`` (date' ≥ date, same length) over the same kept events plus
new files is then: a (user, advertiser) is a member iff max(last_day, its new events' latest
day) ≥ start' (every kept event is at most ``date``: the state is written only by a build of
the latest valid day, and its rows hold every kept event of ``[start, date]``; one before
``start`` is before ``start'`` too). So ΔM and ΔI follow from the state and the new files'
events alone, without reading a kept event. docs/engine.md ("Counting by deltas") says when
the state cannot answer (another window length, changed pins or accounts or interests, users
that came or went, a kept file changed or gone, a requested date): then the build recounts from
the kept events and writes a new window part.

The writers are Ibis (both engines write the window part); the delta path is DuckDB SQL (Spark
writes the state but reads none yet).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis.expr.types as ir

from pinsights.data import validate
from pinsights.engine import semantics
from pinsights.engine.backend import Backend
from pinsights.engine.refresh.state import (
    WINDOW_FILES,
    State,
    Window,
    digest_file,
    pins_path,
    sql_quoted,
    window_path,
)
from pinsights.engine.steps.check import Keys
from pinsights.engine.steps.counts import Counted
from pinsights.engine.steps.dates import as_date

DIMENSIONS = tuple((name, column) for name, column, _ in semantics.DEMOGRAPHICS)


def dimensions(backend: Backend, keys: Keys, pins: list[list[str]]) -> dict[str, Any]:
    """What the window's counts were made under, as this build has it (equal to the state's:
    the same keyed pins and hierarchy, so the kept events' facts and interests are the same)."""
    levels = backend.to_arrow(keys.levels).to_pylist()
    return {
        "accounts": {str(k): v for k, v in sorted(keys.accounts.items())},
        "interests": {str(k): v for k, v in sorted(keys.interests.items())},
        "levels": sorted(
            ([row["interest_key"], row["level1_key"], row["level2_key"]] for row in levels),
            key=lambda row: [-1 if value is None else value for value in row],
        ),
        "pins": pins,
    }


def decide(
    backend: Backend,
    previous: State | None,
    *,
    kept: int,
    window_days: int | None,
    dimensions: dict[str, Any] | None,
    users: ir.Table,
    pins: ir.Table,
) -> tuple[bool, str, int]:
    """Whether the state's window part answers this build's counts by deltas; why (not); how
    many users and pins came (their kept unknown events are judged again: ``rw_came_users``,
    ``rw_came_pins``)."""
    window = previous.window if previous is not None else None
    if previous is None or not kept:
        return False, "", 0
    if window is None:
        return False, previous.window_problem, 0
    if window.window_days != window_days:
        return False, "the state's window part is of another --window-days", 0
    if kept != len(previous.files):
        return False, "an event file of the state changed or is gone", 0
    assert dimensions is not None
    if _but_pins(window.dimensions) != _but_pins(dimensions):
        return False, "the ad accounts or interests changed", 0
    _run(backend, "CREATE OR REPLACE TEMP TABLE rw_came_pins (pin_id BIGINT)")
    late_pins = 0
    if window.dimensions["pins"] != dimensions["pins"]:
        if previous.pins is None:
            return False, "the pins changed", 0
        late_pins, moved = changed_pins(backend, pins_path(previous.root, "keyed"), pins)
        if moved:  # a kept event's advertiser or interest moves, or it turns unknown
            return False, f"pins re-pointed or gone ({moved})", 0
    open_previous(backend, previous.root)
    came, went = changed_users(backend, users)
    if went:  # their valid events turn unknown: their files are read again (whole rows)
        return False, f"users went ({went})", 0
    late = "".join(
        f"; {n} late {what}' kept events judged again"
        for n, what in ((came, "users"), (late_pins, "pins"))
        if n
    )
    return True, f"deltas of the state's window part{late}", came + late_pins


def _but_pins(dimensions: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in dimensions.items() if name != "pins"}


def changed_pins(backend: Backend, kept: Path, pins: ir.Table) -> tuple[int, int]:
    """This build's keyed pins against the state's (``kept``: those the window was made
    under): how many came (``rw_came_pins``), and how many were re-pointed or are gone."""
    con = backend.con  # type: ignore[attr-defined]
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_pins_diff AS SELECT o.pin_id AS old_id, n.pin_id AS"
        f" new_id FROM read_parquet('{sql_quoted(str(kept))}') o FULL OUTER JOIN"
        f" ({_compiled(backend, pins)}) n ON o.pin_id = n.pin_id WHERE o.pin_id IS NULL OR"
        " n.pin_id IS NULL OR o.account_key IS DISTINCT FROM n.account_key OR o.interest_key IS"
        " DISTINCT FROM n.interest_key",
    )
    came, moved = con.execute(
        "SELECT count(*) FILTER (WHERE old_id IS NULL), count(*) FILTER (WHERE old_id IS NOT"
        " NULL) FROM rw_pins_diff"
    ).fetchone()
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_came_pins AS SELECT new_id AS pin_id FROM rw_pins_diff"
        " WHERE old_id IS NULL",
    )
    return int(came), int(moved)


def latest_day(backend: Backend, events: ir.Table, window: Window) -> dt.date:
    """The latest valid day: the window part's date (the latest of the files it holds) or the
    new files' latest."""
    span = backend.to_arrow(semantics.event_span(events, [])).to_pylist()[0]
    held = dt.date.fromisoformat(window.date)
    last = as_date(span["last"])
    return held if last is None else max(held, last)


# --- kept events judged again (engine/refresh/check.py) --------------------------------------


def used_events(rows: ir.Table) -> ir.Table:
    """Used events in the shape of :func:`pinsights.engine.semantics.event_columns`, from kept
    or segment rows: a day stands for its instants (later steps read events by whole days)."""
    return rows.select(
        event_time=rows.day.cast(validate.TIMESTAMP_UTC),
        user_id=rows.user_id,
        account_key=rows.account_key,
        interest_key=rows.interest_key,
        engaged=rows.engaged,
    )


def judged_pairs(pairs: ir.Table, users: ir.Table, pins: ir.Table) -> ir.Table:
    """Kept pairs judged by the reference rule against today's users and pins, as the events'
    check judges a row: ``known`` when both exist, with the pin's account and interest."""
    keyed = pins.rename(__pin="pin_id")
    joined = pairs.left_join(keyed, pairs.pin_id == keyed["__pin"])
    return joined.select(
        file=joined.file,
        day=joined.day,
        user_id=joined.user_id,
        engaged=joined.engaged,
        account_key=joined.account_key,
        interest_key=joined.interest_key,
        known=joined["__pin"].notnull() & joined.user_id.isin(users.user_id).fill_null(False),
    )


# --- a window from the used events (a build that recounted) -------------------------------------


def window_facts(events: ir.Table, start: dt.datetime, end: dt.datetime) -> ir.Table:
    """(user_id, account_key or 0, last_day, last_engaged) of the used events in the window;
    :func:`facts_of` gives :func:`semantics.engagement_facts` from it (the same rows)."""
    w = semantics.events_in_window(events, start, end)
    return w.group_by(user_id=w.user_id, account_key=w.account_key.fill_null(0)).aggregate(
        last_day=w.event_time.max(), last_engaged=w.event_time.max(where=w.engaged)
    )


def facts_of(window: ir.Table) -> ir.Table:
    """The facts (user_id, account_key or null, engaged) of :func:`window_facts`."""
    return window.select(
        user_id=window.user_id,
        account_key=window.account_key.nullif(0),
        engaged=window.last_engaged.notnull(),
    )


def window_interests(
    events: ir.Table, levels: ir.Table, start: dt.datetime, end: dt.datetime
) -> ir.Table:
    """(user_id, interest_key, last_day): :func:`semantics.user_interests` with the latest day
    of an engagement that gave each pair."""
    w = semantics.events_in_window(events, start, end)
    engaged = w.filter(w.engaged & w.interest_key.notnull())
    pairs = engaged.group_by("user_id", "interest_key").aggregate(last_day=engaged.event_time.max())
    joined = pairs.join(semantics.interest_ancestors(levels), "interest_key")
    expanded = joined.select(
        user_id=joined.user_id, interest_key=joined.ancestor_key, last_day=joined.last_day
    )
    return expanded.group_by("user_id", "interest_key").aggregate(last_day=expanded.last_day.max())


def interests_of(window: ir.Table) -> ir.Table:
    return window.select("user_id", "interest_key")


def _run(backend: Backend, sql: str) -> None:
    """A statement, through the backend (its failures explained; timed by the profile)."""
    backend.execute(sql)  # type: ignore[attr-defined]


def _compiled(backend: Backend, expr: ir.Table) -> str:
    return str(backend.ibis.compile(expr))  # type: ignore[attr-defined]


def _write(backend: Backend, expr: ir.Table, path: Path) -> str:
    """One window file, written by the engine (the same types on both: Backend.write_parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backend.write_parquet(expr, path)
    return digest_file(path)


COUNT_COLUMNS = {
    "sizes": ("account_key",),
    "interest_counts": ("account_key", "interest_key"),
    "demographic_counts": ("account_key", "dimension", "key"),
}
#: Each kept column's type (a key of the counts not named here is text).
TYPES = {
    "user_id": "int64",
    "account_key": "int32",
    "interest_key": "int32",
    "total": "int64",
    "engaged": "int64",
}


def _typed(table: ir.Table, columns: tuple[str, ...]) -> ir.Table:
    """``columns`` of ``table`` in the window part's types (TYPES; others kept as they are)."""
    return table.select(**{c: table[c].cast(TYPES[c]) if c in TYPES else table[c] for c in columns})


def _counts(table: ir.Table, name: str) -> ir.Table:
    keys = COUNT_COLUMNS[name]
    return table.select(
        **{k: table[k].cast(TYPES.get(k, "string")) for k in keys},
        total=table.total.cast("int64"),
        engaged=table.engaged.cast("int64"),
    )


FACT_COLUMNS = ("user_id", "account_key", "last_day", "last_engaged")
INTEREST_COLUMNS = ("user_id", "interest_key", "last_day")


def save(
    backend: Backend,
    root: Path,
    *,
    facts: ir.Table,
    interests: ir.Table,
    users: ir.Table,
    counted: dict[str, ir.Table],
) -> dict[str, str]:
    """Write the window part: the facts, interests (each in its kept types), the users'
    demographic values (``users``, as counted) and the unsuppressed ``counted``; digests."""
    digests = {
        "facts": _write(backend, _typed(facts, FACT_COLUMNS), window_path(root, "facts")),
        "interests": _write(
            backend, _typed(interests, INTEREST_COLUMNS), window_path(root, "interests")
        ),
        "users": _write(backend, users, window_path(root, "users")),
    }
    for name, table in counted.items():
        digests[name] = _write(backend, _counts(table, name), window_path(root, name))
    return digests


def save_reduced(
    backend: Backend, root: Path, *, facts: ir.Table, interests: ir.Table, users: ir.Table
) -> dict[str, str]:
    """The window part's facts, interests and users of a build that counted from the used
    events, written as soon as its memberships are made (then freed: the counts that follow
    need the memory); digests."""
    return {
        "facts": _write(backend, _typed(facts, FACT_COLUMNS), window_path(root, "facts")),
        "interests": _write(
            backend, _typed(interests, INTEREST_COLUMNS), window_path(root, "interests")
        ),
        "users": _write(backend, semantics.demographic_values(users), window_path(root, "users")),
    }


def save_counted(
    backend: Backend,
    root: Path,
    *,
    members: ir.Table,
    interest_counted: ir.Table,
    demographic_counted: ir.Table,
) -> dict[str, str]:
    """The window part's unsuppressed counts of a build that counted them; digests."""
    queries = {
        "sizes": semantics.member_counts(members),
        "interest_counts": interest_counted,
        "demographic_counts": demographic_counted,
    }
    return {
        name: _write(backend, _counts(expr, name), window_path(root, name))
        for name, expr in queries.items()
    }


# --- the delta path --------------------------------------------------------------------------


def open_previous(backend: Backend, root: Path) -> None:
    """Views ``rw_old_<file>`` over the previous window part."""
    for name in WINDOW_FILES:
        _run(
            backend,
            f"CREATE OR REPLACE VIEW rw_old_{name} AS SELECT * FROM"
            f" read_parquet('{sql_quoted(str(window_path(root, name)))}')",
        )


def changed_users(backend: Backend, users: ir.Table) -> tuple[int, int]:
    """``rw_users`` (this build's demographic values) and ``rw_delta_users`` (user_id, dimension,
    key, sign: each changed value out and in); how many users came and went since the state."""
    con = backend.con  # type: ignore[attr-defined]
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_users AS"
        f" {_compiled(backend, semantics.demographic_values(users))}",
    )
    # One join: the users who came, went, or changed a value (few); then their values apart.
    columns = [column for _, column in DIMENSIONS]
    differ = " OR ".join(f"o.{column} <> n.{column}" for column in columns)
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_changed_users AS SELECT o.user_id AS old_id, n.user_id"
        " AS new_id, "
        + ", ".join(f"o.{c} AS old_{c}, n.{c} AS new_{c}" for c in columns)
        + " FROM rw_old_users o FULL OUTER JOIN rw_users n ON o.user_id = n.user_id"
        f" WHERE o.user_id IS NULL OR n.user_id IS NULL OR {differ}",
    )
    came, went = con.execute(
        "SELECT count(*) FILTER (WHERE old_id IS NULL), count(*) FILTER (WHERE new_id IS NULL)"
        " FROM rw_changed_users"
    ).fetchone()
    # Each changed value out and in; a user who came has every value in (U had no row of it).
    parts = " UNION ALL ".join(
        f"SELECT old_id AS user_id, '{name}' AS dimension, old_{column} AS key, -1 AS sign FROM"
        f" rw_changed_users WHERE old_{column} <> new_{column} UNION ALL SELECT new_id,"
        f" '{name}', new_{column}, 1 FROM rw_changed_users WHERE old_{column} <> new_{column}"
        f" OR old_id IS NULL"
        for name, column in DIMENSIONS
    )
    _run(backend, f"CREATE OR REPLACE TEMP TABLE rw_delta_users AS {parts}")
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_came_users AS SELECT new_id AS user_id FROM"
        " rw_changed_users WHERE old_id IS NULL",
    )
    return int(came), int(went)


@dataclass
class Delta:
    """One date's counts carried from the state by deltas (see the module's docstring)."""

    counted: Counted
    rows: dict[str, int]


def carry(
    backend: Backend,
    new_events: ir.Table,
    levels: ir.Table,
    start: dt.datetime,
    end: dt.datetime,
) -> Delta:
    """The window ``[start, end)`` from the previous window part (``rw_old_*``), this build's
    users (``rw_users``, ``rw_delta_users``) and the new files' used events: ``rw_facts``,
    ``rw_interests`` (the new window, as the state keeps it) and the counts."""
    con = backend.con  # type: ignore[attr-defined]
    ibis_con = backend.ibis  # type: ignore[attr-defined]
    begin = f"'{start.isoformat()}'::TIMESTAMPTZ"
    new_facts = _compiled(backend, window_facts(new_events, start, end))
    new_interests = _compiled(backend, window_interests(new_events, levels, start, end))
    # Old and new side by side, per (user, advertiser) and per (user, interest): every old row
    # is in the old window; a row is in the new one when its latest day is.
    latest_engaged = "greatest(o.last_engaged, n.last_engaged)"
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_facts AS SELECT *, last_day >= {begin} AS now,"
        " last_engaged IS NOT NULL AS now_engaged FROM (SELECT coalesce(o.user_id, n.user_id)"
        " AS user_id, coalesce(o.account_key, n.account_key) AS account_key, greatest(o.last_day,"
        f" n.last_day) AS last_day, CASE WHEN {latest_engaged} >= {{begin}} THEN {latest_engaged}"
        " END AS last_engaged, o.user_id IS NOT NULL AS was, o.last_engaged IS NOT NULL AS"
        f" was_engaged FROM rw_old_facts o FULL OUTER JOIN ({new_facts}) n ON o.user_id ="
        " n.user_id AND o.account_key = n.account_key)".replace("{begin}", begin),
    )
    now, now_engaged, held = "now", "now_engaged", f"(last_day >= {begin})"
    # ΔM: an advertiser's member leaves, enters or changes its engaged mark (out, then in);
    # P's member is a user with any fact: only one with a fact that came or went may change.
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_changed_facts AS SELECT * FROM rw_facts WHERE NOT was"
        " OR NOT now OR was_engaged <> now_engaged",
    )
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_delta_members AS"
        " SELECT account_key, user_id, was_engaged AS engaged, -1 AS sign FROM rw_changed_facts"
        " WHERE account_key <> 0 AND was UNION ALL SELECT account_key, user_id, now_engaged, 1"
        " FROM rw_changed_facts WHERE account_key <> 0 AND now UNION ALL SELECT 0, f.user_id,"
        " false, CASE WHEN bool_or(now) THEN 1 ELSE -1 END FROM rw_facts f SEMI JOIN (SELECT"
        " user_id FROM rw_changed_facts WHERE NOT was OR NOT now) t ON f.user_id = t.user_id"
        " GROUP BY f.user_id HAVING bool_or(was) <> bool_or(now)",
    )
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_both_interests AS SELECT coalesce(o.user_id, n.user_id)"
        " AS user_id, coalesce(o.interest_key, n.interest_key) AS interest_key, o.user_id IS NOT"
        " NULL AS was, greatest(o.last_day, n.last_day) AS last_day FROM rw_old_interests o FULL"
        f" OUTER JOIN ({new_interests}) n ON o.user_id = n.user_id AND o.interest_key ="
        " n.interest_key",
    )
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_delta_interests AS SELECT user_id, interest_key, CASE"
        f" WHEN {held} THEN 1 ELSE -1 END AS sign FROM rw_both_interests WHERE was <> {held}",
    )
    _run(
        backend,
        "CREATE OR REPLACE TEMP VIEW rw_interests AS SELECT user_id, interest_key, last_day FROM"
        f" rw_both_interests WHERE {held}",
    )
    # M' of the users whose interests or values changed (few): the right side of M' ⋈ ΔI, M' ⋈ ΔU.
    _run(
        backend,
        "CREATE OR REPLACE TEMP TABLE rw_touched_members AS WITH touched AS (SELECT user_id FROM"
        " rw_delta_interests UNION SELECT user_id FROM rw_delta_users), mine AS (SELECT f.* FROM"
        f" rw_facts f SEMI JOIN touched t ON f.user_id = t.user_id WHERE {now})"
        f" SELECT account_key, user_id, {now_engaged} AS engaged FROM mine WHERE account_key <> 0"
        " UNION ALL SELECT DISTINCT 0, user_id, false FROM mine",
    )
    engaged = "CASE WHEN engaged THEN sign ELSE 0 END"
    old_values = " UNION ALL ".join(
        f"SELECT user_id, '{name}' AS dimension, {column} AS key FROM rw_old_users"
        for name, column in DIMENSIONS
    )
    deltas = {
        "sizes": (
            f"SELECT account_key, sign, {engaged} AS engaged_sign FROM rw_delta_members",
            ("account_key",),
        ),
        "interest_counts": (
            "SELECT d.account_key, i.interest_key, d.sign, CASE WHEN d.engaged THEN d.sign ELSE"
            " 0 END AS engaged_sign FROM rw_delta_members d JOIN rw_old_interests i ON d.user_id"
            " = i.user_id UNION ALL SELECT m.account_key, d.interest_key, d.sign, CASE WHEN"
            " m.engaged THEN d.sign ELSE 0 END FROM rw_touched_members m JOIN rw_delta_interests"
            " d ON m.user_id = d.user_id",
            ("account_key", "interest_key"),
        ),
        "demographic_counts": (
            f"SELECT d.account_key, v.dimension, v.key, d.sign, CASE WHEN d.engaged THEN d.sign"
            f" ELSE 0 END AS engaged_sign FROM rw_delta_members d JOIN ({old_values}) v ON"
            " d.user_id = v.user_id UNION ALL SELECT m.account_key, d.dimension, d.key, d.sign,"
            " CASE WHEN m.engaged THEN d.sign ELSE 0 END FROM rw_touched_members m JOIN"
            " rw_delta_users d ON m.user_id = d.user_id",
            ("account_key", "dimension", "key"),
        ),
    }
    tables: dict[str, ir.Table] = {}
    for name, (query, keys) in deltas.items():
        listed = ", ".join(keys)
        joined = " AND ".join(f"o.{k} = d.{k}" for k in keys)
        picked = ", ".join(f"coalesce(o.{k}, d.{k}) AS {k}" for k in keys)
        _run(
            backend,
            f"CREATE OR REPLACE TEMP TABLE rw_new_{name} AS SELECT * FROM (SELECT {picked},"
            " CAST(coalesce(o.total, 0) + coalesce(d.total, 0) AS BIGINT) AS total,"
            " CAST(coalesce(o.engaged, 0) + coalesce(d.engaged, 0) AS BIGINT) AS engaged FROM"
            f" rw_old_{name} o FULL OUTER JOIN (SELECT {listed}, sum(sign) AS total,"
            f" sum(engaged_sign) AS engaged FROM ({query}) GROUP BY {listed}) d ON {joined})"
            " WHERE total <> 0",
        )
        tables[name] = ibis_con.table(f"rw_new_{name}")
    # Members: T(a)'s rows and P's users, i.e. the new sizes' totals.
    facts_rows, members, interests = con.execute(
        f"SELECT (SELECT count(*) FROM rw_facts WHERE {now}), (SELECT sum(total) FROM"
        " rw_new_sizes), (SELECT count(*) FROM rw_interests)"
    ).fetchone()
    return Delta(
        counted=Counted(
            sizes=tables["sizes"],
            interests=tables["interest_counts"],
            demographics=tables["demographic_counts"],
        ),
        rows={"facts": int(facts_rows), "members": int(members or 0) + int(interests)},
    )


def save_carried(backend: Backend, root: Path, start: dt.datetime) -> dict[str, str]:
    """The window part of a delta build (after :func:`carry`)."""
    table = backend.ibis.table  # type: ignore[attr-defined]
    facts = table("rw_facts")
    return save(
        backend,
        root,
        facts=facts.filter(facts.last_day >= start),
        interests=table("rw_interests"),
        users=table("rw_users"),
        counted={name: table(f"rw_new_{name}") for name in COUNT_COLUMNS},
    )
