"""SPEC §3, written once: audiences, interests of a user, and the counts documents are made of.

Every function here builds an Ibis expression from Ibis tables and nothing else, so the same
definition runs on DuckDB (the default) and on Spark; ``tests/test_portability.py`` compiles all of
it for the Spark SQL dialect. The build orchestrates these steps and materialises the ones reused.

Data flows one way::

    used events ─┬─ in window ⋈ pins ─► facts (user, account, interest, engaged)
                 │                        ├─► memberships (account, insight type, user)
                 │                        └─► user interests (user, level-1/level-2 interest)
    memberships ⋈ user interests ─► interest counts      ┐
    memberships ⋈ users          ─► demographic counts   ├─► documents (engine/documents.py)
    memberships                  ─► audience sizes       ┘
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir

from pinsights.data.tables import ENGAGEMENT_TYPES
from pinsights.store import SHARED_ACCOUNT

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


# --- audiences -------------------------------------------------------------------------------


def engagement_facts(
    events: ir.Table, pins: ir.Table, start: dt.datetime, end: dt.datetime
) -> ir.Table:
    """One row per (user, advertiser, interest) met in the window, and whether it was engaged with.

    Collapsing events to these facts first is what keeps every later step small: a user who saw an
    advertiser's pins a thousand times is one row here.
    """
    in_window = events.filter((events.event_time >= start) & (events.event_time < end))
    joined = in_window.join(pins, in_window.pin_id == pins.pin_id)
    engaged = joined.event_type.isin(ENGAGEMENT_TYPES)
    return joined.group_by(
        user_id=joined.user_id,
        ad_account_id=joined.ad_account_id,
        interest_id=joined.interest_id,
    ).aggregate(engaged=engaged.any())


def memberships(facts: ir.Table) -> ir.Table:
    """(account, insight type, user) for P, T(a) and E(a); P is stored under the shared account."""
    everyone = facts.select(
        ad_account_id=ibis.literal(SHARED_ACCOUNT),
        insight_type=ibis.literal(PINTEREST_TOTAL_AUDIENCE),
        user_id=facts.user_id,
    )
    advertised = facts.filter(facts.ad_account_id.notnull())
    total = advertised.select(
        ad_account_id=advertised.ad_account_id,
        insight_type=ibis.literal(YOUR_TOTAL_AUDIENCE),
        user_id=advertised.user_id,
    )
    engaged_facts = advertised.filter(advertised.engaged)
    engaged = engaged_facts.select(
        ad_account_id=engaged_facts.ad_account_id,
        insight_type=ibis.literal(YOUR_ENGAGED_AUDIENCE),
        user_id=engaged_facts.user_id,
    )
    return everyone.union(total, distinct=False).union(engaged, distinct=False).distinct()


def user_interests(facts: ir.Table, levels: ir.Table) -> ir.Table:
    """I(u): level-1 and level-2 ancestors-or-self of every interest u engaged with."""
    engaged = facts.filter(facts.engaged & facts.interest_id.notnull())
    joined = engaged.join(levels, engaged.interest_id == levels.interest_id)
    level1 = joined.select(user_id=joined.user_id, interest_id=joined.level1_id)
    level2 = joined.filter(joined.level2_id.notnull()).select(
        user_id=joined.user_id, interest_id=joined.level2_id
    )
    return level1.union(level2, distinct=True)


# --- counts ----------------------------------------------------------------------------------


def audience_sizes(members: ir.Table) -> ir.Table:
    """n(A) for every audience that has at least one member."""
    return members.group_by("ad_account_id", "insight_type").aggregate(size=members.count())


def interest_counts(members: ir.Table, interests_of_users: ir.Table) -> ir.Table:
    """n_c(A) and n_s(A): members of A having the interest, per level-1 and level-2 interest."""
    joined = members.join(interests_of_users, members.user_id == interests_of_users.user_id)
    return joined.group_by(
        ad_account_id=joined.ad_account_id,
        insight_type=joined.insight_type,
        interest_id=joined.interest_id,
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


def demographic_counts(members: ir.Table, users: ir.Table) -> ir.Table:
    """Members of A per (dimension, value)."""
    values = demographic_values(users)
    joined = members.join(values, members.user_id == values.user_id)
    per_dimension = [
        joined.select(
            ad_account_id=joined.ad_account_id,
            insight_type=joined.insight_type,
            dimension=ibis.literal(dimension),
            key=joined[column],
        )
        for dimension, column, _ in DEMOGRAPHICS
    ]
    stacked = per_dimension[0].union(*per_dimension[1:], distinct=False)
    return stacked.group_by("ad_account_id", "insight_type", "dimension", "key").aggregate(
        users=stacked.count()
    )
