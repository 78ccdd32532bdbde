"""Counting by deltas from the state's window part, in Ibis: the same on both engines.

The state's window part (engine/refresh/window.py writes it) holds the last build's window
reduced — facts (user, advertiser or 0, latest day, latest engaged day), interests (user,
interest, latest day), users (demographic values) — and its unsuppressed counts. A daily build
whose state answers (:func:`decide`) carries them to its own window (:func:`carry`): with M the
audiences' member rows, I the (user, interest) pairs and U the users' values, and Δ the signed
rows that enter (+1) and leave (-1),

    interest counts(M', I') - (M, I) = ΔM ⋈ I + M' ⋈ ΔI
    demographic counts(M', U') - (M, U) = ΔM ⋈ U + M' ⋈ ΔU
    sizes(M') - sizes(M) = Σ ΔM

docs/engine.md ("Counting by deltas") gives the exactness argument and when the state cannot
answer. Every step is an Ibis expression; the few results later steps read more than once are
materialised (``Backend.materialize``: a table on DuckDB, a local checkpoint on Spark).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.types as ir

from pinsights.engine import semantics
from pinsights.engine.backend import Backend
from pinsights.engine.refresh.state import (
    WINDOW_FILES,
    State,
    pins_path,
    table_path,
    window_path,
)
from pinsights.engine.refresh.window import (
    COUNT_COLUMNS,
    DIMENSIONS,
    save,
    window_facts,
    window_interests,
)
from pinsights.engine.steps.check import union_all
from pinsights.engine.steps.counts import Counted

#: A 64-bit integer, cast for real: Ibis types a sum of integers int64 and leaves a cast to
#: ``int64`` out, but DuckDB sums into a 128-bit integer (read back as a decimal).
BIGINT = idt.Int64(nullable=False)


@dataclass
class Opened:
    """The state's window part (``old``: its files by name, and ``users``: the values of the
    users' part of the same state) and this build's users against it: each changed value out
    and in (``delta_users``: user_id, dimension, key, sign), and the users and pins that came
    since (their kept unknown events are judged again)."""

    old: dict[str, ir.Table]
    delta_users: ir.Table
    came_users: ir.Table
    came_pins: ir.Table


def decide(
    backend: Backend,
    previous: State | None,
    *,
    kept: int,
    window_days: int | None,
    dimensions: dict[str, Any] | None,
    users: tuple[ir.Table, ir.Table | None],
    pins: ir.Table,
) -> tuple[str, int, Opened | None]:
    """Why the state's window part answers this build's counts by deltas, or why not; how many
    users and pins came; the window part opened (None: it cannot answer). ``users``: this
    build's used users, and the keys whose rows changed since the state (None: any may have)."""
    window = previous.window if previous is not None else None
    if previous is None or not kept:
        return "", 0, None
    if window is None:
        return previous.window_problem, 0, None
    if window.window_days != window_days:
        return "the state's window part is of another --window-days", 0, None
    if kept != len(previous.files):
        return "an event file of the state changed or is gone", 0, None
    assert dimensions is not None
    if _but_pins(window.dimensions) != _but_pins(dimensions):
        return "the ad accounts or interests changed", 0, None
    came_pins, late_pins = pins.select("pin_id").filter(ibis.literal(False)), 0
    if window.dimensions["pins"] != dimensions["pins"]:
        if previous.pins is None:
            return "the pins changed", 0, None
        late_pins, moved, came_pins = changed_pins(backend, pins_path(previous.root, "keyed"), pins)
        if moved:  # a kept event's advertiser or interest moves, or it turns unknown
            return f"pins re-pointed or gone ({moved})", 0, None
    old = {
        name: backend.read_parquet(f"rw_old_{name}", [window_path(previous.root, name)])
        for name in WINDOW_FILES
    }
    # The users' values the window's counts were made with: its build's used users (the users'
    # part of the same state), as counted.
    kept_users = backend.read_parquet("rw_old_users", [table_path(previous.root, "users", "used")])
    old["users"] = semantics.demographic_values(kept_users)
    delta_users, came_users, came, went = changed_users(backend, *users, old["users"])
    if went:  # their valid events turn unknown: their files are read again (whole rows)
        return f"users went ({went})", 0, None
    late = "".join(
        f"; {n} late {what}' kept events judged again"
        for n, what in ((came, "users"), (late_pins, "pins"))
        if n
    )
    opened = Opened(old, delta_users, came_users, came_pins)
    return f"deltas of the state's window part{late}", came + late_pins, opened


def _but_pins(dimensions: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in dimensions.items() if name != "pins"}


def _counted(backend: Backend, table: ir.Table, **where: ir.BooleanValue) -> dict[str, int]:
    """How many rows of ``table`` meet each condition, in one query."""
    row = backend.to_arrow(
        table.aggregate(**{name: table.count(where=cond) for name, cond in where.items()})
    ).to_pylist()[0]
    return {name: int(row[name] or 0) for name in where}


def changed_pins(backend: Backend, kept: Path, pins: ir.Table) -> tuple[int, int, ir.Table]:
    """This build's keyed pins against the state's (``kept``: those the window was made
    under): how many came, how many were re-pointed or are gone, and the pins that came."""
    old = backend.read_parquet("rw_old_pins", [kept])
    o = old.select(old_id=old.pin_id, old_account=old.account_key, old_interest=old.interest_key)
    n = pins.select(
        new_id=pins.pin_id, new_account=pins.account_key, new_interest=pins.interest_key
    )
    j = o.outer_join(n, o.old_id == n.new_id)
    differ = j.filter(
        j.old_id.isnull()
        | j.new_id.isnull()
        | ~j.old_account.identical_to(j.new_account)
        | ~j.old_interest.identical_to(j.new_interest)
    )
    diff = backend.materialize("rw_pins_diff", differ.select("old_id", "new_id"))
    counts = _counted(backend, diff, came=diff.old_id.isnull(), moved=diff.old_id.notnull())
    came = diff.filter(diff.old_id.isnull())  # read once, if any came: not materialised
    return counts["came"], counts["moved"], came.select(pin_id=came.new_id)


def changed_users(
    backend: Backend, users: ir.Table, keys: ir.Table | None, old: ir.Table
) -> tuple[ir.Table, ir.Table, int, int]:
    """Each changed demographic value of this build's ``users`` out and in (user_id,
    dimension, key, sign; a user who came has every value in: U had no row of it), the users
    who came; how many came and went since the state (``old``: its users' values). ``keys``:
    the users whose rows changed since the state's users part (engine/refresh/users.py); the
    others' used rows are the part's, whose values ``old`` is, so only theirs are compared."""
    values = semantics.demographic_values(users)
    if keys is not None:
        old = old.filter(old.user_id.isin(keys.user_id))
    columns = [column for _, column in DIMENSIONS]
    # One join: the users who came, went, or changed a value (few); then their values apart.
    o = old.select(old_id=old.user_id, **{f"old_{c}": old[c] for c in columns})
    mine = values if keys is None else values.filter(values.user_id.isin(keys.user_id))
    n = mine.select(new_id=mine.user_id, **{f"new_{c}": mine[c] for c in columns})
    j = o.outer_join(n, o.old_id == n.new_id)
    differ = functools.reduce(operator.or_, [j[f"old_{c}"] != j[f"new_{c}"] for c in columns])
    changed = backend.materialize(
        "rw_changed_users", j.filter(j.old_id.isnull() | j.new_id.isnull() | differ)
    )
    counts = _counted(backend, changed, came=changed.old_id.isnull(), went=changed.new_id.isnull())
    parts: list[ir.Table] = []
    for name, column in DIMENSIONS:
        was, now = changed[f"old_{column}"], changed[f"new_{column}"]
        out, into = (
            changed.filter(was != now),
            changed.filter((was != now) | changed.old_id.isnull()),
        )
        parts += [
            out.select(
                user_id=out.old_id,
                dimension=ibis.literal(name),
                key=out[f"old_{column}"].cast("string"),
                sign=ibis.literal(-1, "int32"),
            ),
            into.select(
                user_id=into.new_id,
                dimension=ibis.literal(name),
                key=into[f"new_{column}"].cast("string"),
                sign=ibis.literal(1, "int32"),
            ),
        ]
    delta_users = backend.materialize("rw_delta_users", union_all(parts))
    came = changed.filter(changed.old_id.isnull())  # read once, if any came: not materialised
    return delta_users, came.select(user_id=came.new_id), counts["came"], counts["went"]


def _sign(condition: ir.BooleanValue) -> ir.IntegerValue:
    return ibis.ifelse(condition, 1, -1).cast("int32")


def _signed(tables: list[ir.Table], *keys: str) -> ir.Table:
    """The ``keys``, sign and engaged sign (the sign where the member is engaged, else 0) of
    signed rows (``engaged``, ``sign``), the tables' rows one after the other."""
    return union_all(
        [
            t.select(
                *keys, sign=t.sign, engaged_sign=ibis.ifelse(t.engaged, t.sign, 0).cast("int32")
            )
            for t in tables
        ]
    )


@dataclass
class Delta:
    """One date's counts carried from the state by deltas, the new window as the state keeps
    it (``facts``: with ``now``; ``interests``) and the report's rows."""

    counted: Counted
    rows: dict[str, int]
    facts: ir.Table
    interests: ir.Table


def carry(
    backend: Backend,
    opened: Opened,
    new_events: ir.Table,
    levels: ir.Table,
    start: dt.datetime,
    end: dt.datetime,
) -> Delta:
    """The window ``[start, end)`` from the state's window part (``opened``), this build's
    users and the new files' used events: the new window (as the state keeps it) and counts."""
    old = opened.old
    # Old and new side by side, per (user, advertiser) and per (user, interest): every old row
    # is in the old window; a row is in the new one when its latest day is.
    of, nf = old["facts"], window_facts(new_events, start, end)
    o = of.select(o_user=of.user_id, o_key=of.account_key, o_day=of.last_day, o_eng=of.last_engaged)
    n = nf.select(n_user=nf.user_id, n_key=nf.account_key, n_day=nf.last_day, n_eng=nf.last_engaged)
    j = o.outer_join(n, [o.o_user == n.n_user, o.o_key == n.n_key])
    latest_engaged = ibis.greatest(j.o_eng, j.n_eng)
    both = j.select(
        user_id=ibis.coalesce(j.o_user, j.n_user),
        account_key=ibis.coalesce(j.o_key, j.n_key.cast("int32")),
        last_day=ibis.greatest(j.o_day, j.n_day),
        last_engaged=ibis.ifelse(latest_engaged >= start, latest_engaged, ibis.null()),
        was=j.o_user.notnull(),
        was_engaged=j.o_eng.notnull(),
    )
    facts = backend.materialize(
        "rw_facts",
        both.mutate(now=both.last_day >= start, now_engaged=both.last_engaged.notnull()),
    )
    # ΔM: an advertiser's member leaves, enters or changes its engaged mark (out, then in);
    # P's member is a user with any fact: only one with a fact that came or went may change.
    # The changed facts (few) are read three times by the one query that makes ΔM: a filter
    # of the kept facts, not a result of their own (on Spark a job and a checkpoint less).
    cf = facts.filter(~facts.was | ~facts.now | (facts.was_engaged != facts.now_engaged))
    # The few users with a fact that came or went, kept (a job): Spark then broadcasts them
    # into the semi-join instead of shuffling every merged fact to meet a result whose size
    # it does not know.
    came_or_went = backend.materialize(
        "rw_came_or_went", cf.filter(~cf.was | ~cf.now).select("user_id").distinct()
    )
    mine = facts.semi_join(came_or_went, "user_id")
    p = mine.group_by("user_id").aggregate(was=mine.was.any(), now=mine.now.any())
    p = p.filter(p.was != p.now)
    advertisers = cf.filter(cf.account_key != 0)
    left, entered = advertisers.filter(advertisers.was), advertisers.filter(advertisers.now)
    delta_members = backend.materialize(
        "rw_delta_members",
        union_all(
            [
                left.select("account_key", "user_id", engaged=left.was_engaged, sign=_sign(False)),
                entered.select(
                    "account_key", "user_id", engaged=entered.now_engaged, sign=_sign(True)
                ),
                p.select(
                    account_key=ibis.literal(0, "int32"),
                    user_id=p.user_id,
                    engaged=ibis.literal(False),
                    sign=_sign(p.now),
                ),
            ]
        ),
    )
    oi, ni = old["interests"], window_interests(new_events, levels, start, end)
    o2 = oi.select(o_user=oi.user_id, o_key=oi.interest_key, o_day=oi.last_day)
    n2 = ni.select(n_user=ni.user_id, n_key=ni.interest_key.cast("int32"), n_day=ni.last_day)
    j2 = o2.outer_join(n2, [o2.o_user == n2.n_user, o2.o_key == n2.n_key])
    both_interests = backend.materialize(
        "rw_both_interests",
        j2.select(
            user_id=ibis.coalesce(j2.o_user, j2.n_user),
            interest_key=ibis.coalesce(j2.o_key, j2.n_key),
            was=j2.o_user.notnull(),
            last_day=ibis.greatest(j2.o_day, j2.n_day),
        ),
    )
    held = both_interests.last_day >= start
    changed_interests = both_interests.filter(both_interests.was != held)
    delta_interests = backend.materialize(
        "rw_delta_interests",
        changed_interests.select("user_id", "interest_key", sign=_sign(held)),
    )
    interests = both_interests.filter(held).select("user_id", "interest_key", "last_day")
    # M' of the users whose interests or values changed (few): the right side of M' ⋈ ΔI, M' ⋈ ΔU.
    touched = backend.materialize(  # few: broadcast into the semi-join (as came_or_went)
        "rw_touched",
        delta_interests.select("user_id").union(
            opened.delta_users.select("user_id"), distinct=True
        ),
    )
    now = facts.semi_join(touched, "user_id")
    now = now.filter(now.now)
    theirs = now.filter(now.account_key != 0)
    touched_members = backend.materialize(
        "rw_touched_members",
        union_all(
            [
                theirs.select("account_key", "user_id", engaged=theirs.now_engaged),
                now.select(
                    account_key=ibis.literal(0, "int32"),
                    user_id=now.user_id,
                    engaged=ibis.literal(False),
                ).distinct(),
            ]
        ),
    )
    counted = _carried_counts(backend, opened, delta_members, touched_members, delta_interests)
    # The report's rows in one query (a union, not a join: on Spark one job, not three).
    sizes = counted["sizes"]
    parts = [
        (facts, "facts", facts.count(where=facts.now)),
        (sizes, "members", sizes.total.sum()),
        (interests, "pairs", interests.count()),
    ]
    figures = union_all(
        [
            table.aggregate(rows=value.cast(BIGINT)).select(name=ibis.literal(name), rows="rows")
            for table, name, value in parts
        ]
    )
    got = {row["name"]: int(row["rows"] or 0) for row in backend.to_arrow(figures).to_pylist()}
    rows = {"facts": got["facts"], "members": got["members"] + got["pairs"]}
    return Delta(
        counted=Counted(
            sizes=counted["sizes"],
            interests=counted["interest_counts"],
            demographics=counted["demographic_counts"],
        ),
        rows=rows,
        facts=facts,
        interests=interests,
    )


def _carried_counts(
    backend: Backend,
    opened: Opened,
    dm: ir.Table,
    tm: ir.Table,
    di: ir.Table,
) -> dict[str, ir.Table]:
    """The old counts plus the summed deltas, cells that reach 0 dropped (a full build never
    has them)."""
    old, du = opened.old, opened.delta_users
    oi, ou = old["interests"], old["users"]
    old_values = union_all(
        [
            ou.select("user_id", dimension=ibis.literal(name), key=ou[column].cast("string"))
            for name, column in DIMENSIONS
        ]
    )
    a = dm.join(oi, dm.user_id == oi.user_id)
    b = tm.join(di, tm.user_id == di.user_id)
    c = dm.join(old_values, dm.user_id == old_values.user_id)
    e = tm.join(du, tm.user_id == du.user_id)
    deltas = {
        "sizes": _signed([dm], "account_key"),
        "interest_counts": _signed([a, b], "account_key", "interest_key"),
        "demographic_counts": _signed([c, e], "account_key", "dimension", "key"),
    }
    tables: dict[str, ir.Table] = {}
    for name, delta in deltas.items():
        keys = COUNT_COLUMNS[name]
        summed = delta.group_by(*keys).aggregate(
            d_total=delta.sign.sum(), d_engaged=delta.engaged_sign.sum()
        )
        d = summed.rename({f"d_{k}": k for k in keys})
        counts = old[name]
        o = counts.rename({f"o_{k}": k for k in keys})
        j = o.outer_join(d, [o[f"o_{k}"] == d[f"d_{k}"] for k in keys])
        new = j.select(
            **{k: ibis.coalesce(j[f"o_{k}"], j[f"d_{k}"]) for k in keys},
            total=(j.total.fill_null(0) + j.d_total.fill_null(0)).cast(BIGINT),
            engaged=(j.engaged.fill_null(0) + j.d_engaged.fill_null(0)).cast(BIGINT),
        )
        tables[name] = backend.materialize(f"rw_new_{name}", new.filter(new.total != 0))
    return tables


def save_carried(backend: Backend, root: Path, start: dt.datetime, delta: Delta) -> dict[str, str]:
    """The window part of a delta build (after :func:`carry`)."""
    facts = delta.facts
    counted = delta.counted
    return save(
        backend,
        root,
        facts=facts.filter(facts.last_day >= start),
        interests=delta.interests,
        counted={
            "sizes": counted.sizes,
            "interest_counts": counted.interests,
            "demographic_counts": counted.demographics,
        },
    )
