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
- the users' demographic values are those of the users' part of the same state (its used
  rows, written from the same users check: ``tables/users-used.parquet``), as counted;
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

Everything here is Ibis: both engines write the window part and read it; the delta path that
carries it is :mod:`pinsights.engine.refresh.delta`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from pinsights.data import validate
from pinsights.engine import semantics
from pinsights.engine.backend import Backend
from pinsights.engine.refresh.state import (
    Window,
    digest_file,
    window_path,
)
from pinsights.engine.steps.check import Keys
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
    return semantics.per_user_and_advertiser(
        semantics.events_in_window(events, start, end),
        ibis.literal(0, "int32"),
        lambda rows: {
            "last_day": rows.event_time.max(),
            "last_engaged": rows.event_time.max(where=rows.engaged),
        },
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
    counted: dict[str, ir.Table],
) -> dict[str, str]:
    """Write the window part: the facts, interests (each in its kept types) and the
    unsuppressed ``counted``; digests."""
    digests = {
        "facts": _write(backend, _typed(facts, FACT_COLUMNS), window_path(root, "facts")),
        "interests": _write(
            backend, _typed(interests, INTEREST_COLUMNS), window_path(root, "interests")
        ),
    }
    for name, table in counted.items():
        digests[name] = _write(backend, _counts(table, name), window_path(root, name))
    return digests


def save_reduced(
    backend: Backend, root: Path, *, facts: ir.Table, interests: ir.Table
) -> dict[str, str]:
    """The window part's facts and interests of a build that counted from the used events,
    written as soon as its memberships are made (then freed: the counts that follow need the
    memory); digests."""
    return {
        "facts": _write(backend, _typed(facts, FACT_COLUMNS), window_path(root, "facts")),
        "interests": _write(
            backend, _typed(interests, INTEREST_COLUMNS), window_path(root, "interests")
        ),
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
