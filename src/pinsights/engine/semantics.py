"""SPEC §3, written once: audiences, interests of a user, and the counts documents are made of.

Every function here builds an Ibis expression from Ibis tables and nothing else, so the same
definition runs on DuckDB (the default) and on Spark; ``tests/test_portability.py`` compiles all of
it for the Spark SQL dialect. The build orchestrates these steps and materialises the ones reused.

Data flows one way::

    used events (with their pin's account and interest) ─ in window ─► facts
        facts ─► memberships (account, audience, user)
        facts ─► user interests (user, level-1/level-2 interest)
    memberships ⋈ user interests ─► interest counts      ┐
    memberships ⋈ users          ─► demographic counts   ├─► documents (engine/documents.py)
    memberships                  ─► audience sizes       ┘
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir

from pinsights.data.tables import NOT_ENGAGEMENT

YOUR_TOTAL_AUDIENCE = "YOUR_TOTAL_AUDIENCE"
YOUR_ENGAGED_AUDIENCE = "YOUR_ENGAGED_AUDIENCE"
PINTEREST_TOTAL_AUDIENCE = "PINTEREST_TOTAL_AUDIENCE"

#: Demographic dimensions in document order, with the value a null counts as.
DEMOGRAPHICS: tuple[tuple[str, str, str], ...] = (
    # (document list, users column, value of a null)
    ("ages", "age_bucket", "unknown"),
    ("genders", "gender", "unspecified"),
    ("countries", "country", "unknown"),
    ("metros", "metro", "unknown"),
    ("devices", "device", "unknown"),
)


def window_bounds(date: dt.date, window_days: int) -> tuple[dt.datetime, dt.datetime]:
    """``[D - (window_days - 1), D + 1 day)`` as UTC instants."""
    start = dt.datetime.combine(date - dt.timedelta(days=window_days - 1), dt.time(), dt.UTC)
    end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), dt.UTC)
    return start, end


def latest_event_date(events: ir.Table) -> ir.Scalar:
    """The default generation date: the UTC day of the latest valid event."""
    return events.event_time.max().date()


# --- interest hierarchy ----------------------------------------------------------------------


def interest_roots(interests: ir.Table) -> ir.Table:
    """Level-1 interests (categories): each is its own level-1 ancestor and has no level-2 one."""
    roots = interests.filter(interests.parent_id.isnull())
    return roots.select(
        interest_id=roots.interest_id,
        level=ibis.literal(1, dtypes.int32),
        level1_id=roots.interest_id,
        level2_id=ibis.null(dtypes.string),
    )


def interest_children(interests: ir.Table, parents: ir.Table) -> ir.Table:
    """The interests one level below ``parents``, inheriting their level-1 and level-2 ancestors.

    A level-2 interest is its own level-2 ancestor; deeper ones inherit it. Applied until it yields
    nothing, this reaches exactly the interests that hang off a category: one in a cycle, or below a
    quarantined interest, is never reached (and is an unknown reference).
    """
    joined = interests.join(parents, interests.parent_id == parents.interest_id)
    return joined.select(
        interest_id=interests.interest_id,
        level=(parents.level + 1).cast(dtypes.int32),
        level1_id=parents.level1_id,
        level2_id=parents.level2_id.fill_null(interests.interest_id),
    )


# --- dense keys ------------------------------------------------------------------------------
# Ids are strings (an ad account id may be "007"); grouping millions of rows by strings costs twice
# what grouping by small integers does. Every id that reaches the heavy steps is therefore replaced
# by a dense integer key first, and mapped back only when documents are assembled.

#: Audience codes in memberships and counts.
AUDIENCE_CODES: dict[int, str] = {
    0: PINTEREST_TOTAL_AUDIENCE,
    1: YOUR_TOTAL_AUDIENCE,
    2: YOUR_ENGAGED_AUDIENCE,
}
#: The account key of audiences shared by every account (P).
SHARED_ACCOUNT_KEY = 0


def dense_keys(table: ir.Table, column: str, key: str) -> ir.Table:
    """``column`` with a dense 1-based integer ``key``, in id order (deterministic)."""
    ids = table.select(column).distinct()
    return ids.mutate(**{key: (ibis.row_number().over(order_by=ids[column]) + 1).cast("int32")})


def keyed_levels(levels: ir.Table, interest_keys: ir.Table) -> ir.Table:
    """The hierarchy with keys: (interest_key, level1_key, level2_key or null)."""
    own = interest_keys.rename(own_key="interest_key", own_id="interest_id")
    top = interest_keys.rename(level1_key="interest_key", top_id="interest_id")
    second = interest_keys.rename(level2_key="interest_key", second_id="interest_id")
    joined = (
        levels.join(own, levels.interest_id == own.own_id)
        .join(top, levels.level1_id == top.top_id)
        .left_join(second, levels.level2_id == second.second_id)
    )
    return joined.select(
        interest_key=joined.own_key, level1_key=joined.level1_key, level2_key=joined.level2_key
    )


def keyed_pins(pins: ir.Table, account_keys: ir.Table, interest_keys: ir.Table) -> ir.Table:
    """(pin_id, account_key or null, interest_key or null)."""
    joined = pins.left_join(
        account_keys, pins.ad_account_id == account_keys.ad_account_id
    ).left_join(interest_keys, pins.interest_id == interest_keys.interest_id)
    return joined.select(
        pin_id=joined.pin_id,
        account_key=joined.account_key,
        interest_key=joined.interest_key,
    )


# --- audiences -------------------------------------------------------------------------------


def event_columns(events: ir.Table) -> dict[str, ir.Value]:
    """What the semantics needs of an event: when, who, the pin's advertiser and interest (looked
    up while the events were checked, see :func:`keyed_pins`), and whether it is an engagement —
    every event type except ``IMPRESSION`` is one."""
    return {
        "event_time": events.event_time,
        "user_id": events.user_id,
        "account_key": events.account_key,
        "interest_key": events.interest_key,
        "engaged": events.event_type != NOT_ENGAGEMENT,
    }


def engagement_facts(events: ir.Table, start: dt.datetime, end: dt.datetime) -> ir.Table:
    """One row per (user, advertiser, interest) met in the window, and whether it was engaged with.

    ``events`` are the used events in the shape of :func:`event_columns`. Collapsing events to
    these facts first is what keeps every later step small: a user who saw an advertiser's pins a
    thousand times is one row here.
    """
    in_window = events.filter((events.event_time >= start) & (events.event_time < end))
    return in_window.group_by(
        user_id=in_window.user_id,
        account_key=in_window.account_key,
        interest_key=in_window.interest_key,
    ).aggregate(engaged=in_window.engaged.any())


def memberships(facts: ir.Table) -> ir.Table:
    """(account_key, audience, user_id) for P (shared key), T(a) and E(a): see AUDIENCE_CODES."""
    everyone = facts.select(
        account_key=ibis.literal(SHARED_ACCOUNT_KEY, "int32"),
        audience=ibis.literal(0, "int8"),
        user_id=facts.user_id,
    )
    advertised = facts.filter(facts.account_key.notnull())
    total = advertised.select(
        account_key=advertised.account_key,
        audience=ibis.literal(1, "int8"),
        user_id=advertised.user_id,
    )
    engaged_facts = advertised.filter(advertised.engaged)
    engaged = engaged_facts.select(
        account_key=engaged_facts.account_key,
        audience=ibis.literal(2, "int8"),
        user_id=engaged_facts.user_id,
    )
    return everyone.union(total, distinct=False).union(engaged, distinct=False).distinct()


def user_interests(facts: ir.Table, levels: ir.Table) -> ir.Table:
    """I(u): level-1 and level-2 ancestors-or-self of every interest u engaged with.

    ``levels`` is :func:`keyed_levels`; an interest at depth 3 or deeper counts for its level-1
    and level-2 ancestors, a level-1 interest only for itself. Impressions make no interest.
    """
    engaged = facts.filter(facts.engaged & facts.interest_key.notnull())
    joined = engaged.join(levels, engaged.interest_key == levels.interest_key)
    level1 = joined.select(user_id=joined.user_id, interest_key=joined.level1_key)
    level2 = joined.filter(joined.level2_key.notnull()).select(
        user_id=joined.user_id, interest_key=joined.level2_key
    )
    return level1.union(level2, distinct=True)


# --- counts ----------------------------------------------------------------------------------


def audience_sizes(members: ir.Table) -> ir.Table:
    """n(A) for every audience that has at least one member."""
    return members.group_by("account_key", "audience").aggregate(size=members.count())


def interest_counts(members: ir.Table, interests_of_users: ir.Table) -> ir.Table:
    """n_c(A) and n_s(A): members of A having the interest, per level-1 and level-2 interest."""
    joined = members.join(interests_of_users, members.user_id == interests_of_users.user_id)
    return joined.group_by(
        account_key=joined.account_key,
        audience=joined.audience,
        interest_key=joined.interest_key,
    ).aggregate(users=joined.count())


def demographic_values(users: ir.Table) -> ir.Table:
    """Each user's value in every dimension, nulls counted as the SPEC says, countries lower-cased."""
    columns = {
        column: users[column].lower().fill_null(unknown)
        if column == "country"
        else users[column].fill_null(unknown)
        for _, column, unknown in DEMOGRAPHICS
    }
    return users.select(user_id=users.user_id, **columns)


def demographic_profiles(members: ir.Table, users: ir.Table) -> ir.Table:
    """Members of A per combination of all five values: one pass over the members.

    Far fewer rows than members (people share profiles), so the per-dimension counts that follow
    read a small table five times instead of joining members and users five times.
    """
    values = demographic_values(users)
    joined = members.join(values, members.user_id == values.user_id)
    columns = [column for _, column, _ in DEMOGRAPHICS]
    return joined.group_by("account_key", "audience", *columns).aggregate(users=joined.count())


def demographic_counts(profiles: ir.Table) -> ir.Table:
    """Members of A per (dimension, value), from :func:`demographic_profiles`."""
    per_dimension = [
        profiles.select(
            account_key=profiles.account_key,
            audience=profiles.audience,
            dimension=ibis.literal(dimension),
            key=profiles[column],
            users=profiles.users,
        )
        for dimension, column, _ in DEMOGRAPHICS
    ]
    stacked = per_dimension[0].union(*per_dimension[1:], distinct=False)
    return stacked.group_by("account_key", "audience", "dimension", "key").aggregate(
        users=stacked.users.sum()
    )
