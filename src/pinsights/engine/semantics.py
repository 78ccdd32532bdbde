"""SPEC §3, written once: audiences, interests of a user, and the counts documents are made of.

Every function here builds an Ibis expression from Ibis tables and nothing else, so the same
definition runs on DuckDB (the default) and on Spark; ``tests/test_portability.py`` compiles all of
it for the Spark SQL dialect. The build orchestrates these steps and materialises the ones reused.

Data flows one way::

    used events (with their pin's account and interest) ─ in window ─┬─► facts (user, account)
                                                                      └─► user interests
        facts ─► memberships (account, audience, user)
    memberships ⋈ user interests ─► interest counts      ┐
    memberships ⋈ users' values ─► demographic counts    ├─► documents (engine/documents.py)
    memberships                  ─► audience sizes       ┘
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from fractions import Fraction

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir

from pinsights.contract import AudienceInsightType
from pinsights.data.tables import NOT_ENGAGEMENT

#: The insight types as plain strings (Ibis literals, table values); their names live in the contract.
YOUR_TOTAL_AUDIENCE = AudienceInsightType.YOUR_TOTAL_AUDIENCE.value
YOUR_ENGAGED_AUDIENCE = AudienceInsightType.YOUR_ENGAGED_AUDIENCE.value
PINTEREST_TOTAL_AUDIENCE = AudienceInsightType.PINTEREST_TOTAL_AUDIENCE.value

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


def event_span(events: ir.Table, windows: Sequence[tuple[dt.datetime, dt.datetime]]) -> ir.Table:
    """One row: the UTC days of the first and last valid event (``first``, ``last``; null when
    there is none) and, for each window ``[start, end)``, whether any valid event falls in it
    (``in_window_<i>``). The latest day is the default generation date; a requested date whose
    window holds no event is refused (an empty snapshot would replace a real one). One scan."""
    time = events.event_time
    return events.aggregate(
        first=time.min().date(),
        last=time.max().date(),
        **{
            f"in_window_{i}": ((time >= start) & (time < end)).any()
            for i, (start, end) in enumerate(windows)
        },
    )


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
# by a dense integer key first, and mapped back only when documents are assembled. User ids are
# 64-bit integers already and stay: a 32-bit user key gained nothing on either engine (measured,
# BENCHMARKS.md "Dense integer user keys").

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


def events_in_window(events: ir.Table, start: dt.datetime, end: dt.datetime) -> ir.Table:
    """The used events (shape of :func:`event_columns`) inside ``[start, end)``."""
    return events.filter((events.event_time >= start) & (events.event_time < end))


def engagement_facts(events: ir.Table, start: dt.datetime, end: dt.datetime) -> ir.Table:
    """One row per (user, advertiser) met in the window, and whether any of it was an engagement.

    ``events`` are the used events in the shape of :func:`event_columns`; a null advertiser is
    content no ad account owns (it still makes the user part of P). Every audience follows from
    these facts. The interest is deliberately not part of the key: with it, the facts were nearly
    as many as the events (13.4M of 20M), and grouping on that many keys was the build's single
    most expensive step; without it they are a quarter of the events. Interests are reduced on
    their own, see :func:`user_interests`.
    """
    return per_user_and_advertiser(
        events_in_window(events, start, end),
        ibis.null("int32"),
        lambda rows: {"engaged": rows.engaged.any()},
    )


def per_user_and_advertiser(
    events: ir.Table,
    unowned_key: ir.Value,
    measures: Callable[[ir.Table], dict[str, ir.Scalar]],
) -> ir.Table:
    """``events`` grouped by (user, advertiser): ``user_id``, ``account_key`` (``unowned_key``
    for content no account owns) and the ``measures`` of each group's rows.

    The events of content no account owns and the others are grouped apart, the same groups:
    the former (most events: 68 % of the generated 20M) by user alone, into a table of about one
    row per user, and only the others by (user, advertiser) — rather than every event into one
    table of all (user, advertiser) groups (20M events, DuckDB: 3.0-3.6 CPU s against 3.9-4.5;
    BENCHMARKS.md, issue 22).
    """
    unowned = events.filter(events.account_key.isnull())
    owned = events.filter(events.account_key.notnull())
    by_user = unowned.group_by("user_id").aggregate(**measures(unowned))
    by_pair = owned.group_by("user_id", "account_key").aggregate(**measures(owned))
    names = list(measures(owned))

    def shaped(table: ir.Table, key: ir.Value) -> ir.Table:
        return table.select(
            user_id=table.user_id, account_key=key.cast("int32"), **{n: table[n] for n in names}
        )

    return shaped(by_user, unowned_key).union(shaped(by_pair, by_pair.account_key), distinct=False)


def platform_memberships(facts: ir.Table) -> ir.Table:
    """(account_key, audience, user_id) of P: everyone in the facts, under the shared key."""
    users = facts.select("user_id").distinct()
    return users.select(
        account_key=ibis.literal(SHARED_ACCOUNT_KEY, "int32"),
        audience=ibis.literal(0, "int8"),
        user_id=users.user_id,
    )


def memberships(facts: ir.Table) -> ir.Table:
    """(account_key, audience, user_id) for P (shared key), T(a) and E(a): see AUDIENCE_CODES.

    Facts hold one row per (user, advertiser), so T(a) and E(a) are distinct as they are; only P
    needs a distinct (a user meets several advertisers), and the three never overlap (their
    audience codes differ).
    """
    everyone = platform_memberships(facts)
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
    return everyone.union(total, distinct=False).union(engaged, distinct=False)


def interest_ancestors(levels: ir.Table) -> ir.Table:
    """(interest_key, ancestor_key): each interest's level-1 and level-2 ancestors-or-self, one
    row each (``levels`` is :func:`keyed_levels`; a level-1 interest has one row, deeper ones two).

    Joining the (user, interest) pairs with this once replaces a union of two joins, one per
    level: Ibis writes the pairs' query in each branch of such a union, and DuckDB computed it
    twice (at 20M events, a second read and aggregate of the engaged events).
    """
    level1 = levels.select(interest_key=levels.interest_key, ancestor_key=levels.level1_key)
    deep = levels.filter(levels.level2_key.notnull())
    level2 = deep.select(interest_key=deep.interest_key, ancestor_key=deep.level2_key)
    return level1.union(level2, distinct=False)


def user_interests(events: ir.Table, levels: ir.Table) -> ir.Table:
    """I(u): level-1 and level-2 ancestors-or-self of every interest u engaged with.

    ``events`` are the events in the window (:func:`events_in_window`); ``levels`` is
    :func:`keyed_levels`. An interest at depth 3 or deeper counts for its level-1 and level-2
    ancestors, a level-1 interest only for itself. Impressions make no interest. Engagements are
    reduced to distinct (user, interest) pairs before the hierarchy is joined: an eighth of the
    events.
    """
    engaged = events.filter(events.engaged & events.interest_key.notnull())
    pairs = engaged.select("user_id", "interest_key").distinct()
    joined = pairs.join(interest_ancestors(levels), "interest_key")
    return joined.select(user_id=joined.user_id, interest_key=joined.ancestor_key).distinct()


# --- counts ----------------------------------------------------------------------------------
# The exact counts read one table of audience members: every (account, user) fact of T(a), marked
# engaged when the user is also in E(a), and P's users under the shared key. T and E are counted in
# one pass (a count, and a count of the engaged rows), so E's members are never joined a second
# time: at 20M events that is a fifth fewer rows through the interest join and the demographics'
# join than with one membership row per audience. The memberships below (one row per audience) stay
# for the differentially private parts, whose audiences do not nest.


def audience_members(facts: ir.Table) -> ir.Table:
    """(account_key, user_id, engaged): T(a) with E(a) marked, and P under the shared key.

    Facts hold one row per (user, advertiser), so T(a) is distinct as it is; P needs a distinct (a
    user meets several advertisers). P's rows are never engaged: E exists for accounts only.
    """
    advertised = facts.filter(facts.account_key.notnull())
    total = advertised.select(
        account_key=advertised.account_key,
        user_id=advertised.user_id,
        engaged=advertised.engaged,
    )
    users = facts.select("user_id").distinct()
    everyone = users.select(
        account_key=ibis.literal(SHARED_ACCOUNT_KEY, "int32"),
        user_id=users.user_id,
        engaged=ibis.literal(False),
    )
    return everyone.union(total, distinct=False)


def per_audience(counted: ir.Table, *cell: str) -> ir.Table:
    """Counts of audience members (``total`` and ``engaged`` per account and ``cell`` columns, as
    the ``*_member_counts`` functions below make them) as one row per audience: P for the shared
    key, else T(a) from ``total`` and E(a) from ``engaged``; a cell no member of the audience has
    is left out, as a join would leave it.

    It reads ``counted`` three times (P, T and E rows): the build materialises ``counted`` first,
    so that no engine computes the aggregate behind it once per read (Spark would).
    """
    shared = counted.account_key == SHARED_ACCOUNT_KEY
    platform = counted.filter(shared)
    advertised = counted.filter(~shared)
    engaged = advertised.filter(advertised.engaged > 0)
    parts = [
        table.select(
            account_key=table.account_key,
            audience=ibis.literal(code, "int8"),
            **{column: table[column] for column in cell},
            users=table[users],
        )
        for table, code, users in (
            (platform, 0, "total"),
            (advertised, 1, "total"),
            (engaged, 2, "engaged"),
        )
    ]
    return parts[0].union(*parts[1:], distinct=False)


def _count_members(members: ir.Table, *cell: str) -> ir.Table:
    """Members per account and cell: all of them (P, T) and the engaged ones (E), in one pass."""
    return members.group_by("account_key", *cell).aggregate(
        total=members.count(), engaged=members.count(where=members.engaged)
    )


def member_counts(members: ir.Table) -> ir.Table:
    """(account_key, total, engaged): members of every audience, from :func:`audience_members`."""
    return _count_members(members)


#: A user holding more than this share of the interests anyone holds is counted by the interests
#: they lack (see :func:`interest_member_counts`). Any share gives the same counts (0: everyone with
#: an interest is heavy; 1: nobody is); a half makes each user's side the shorter one.
HEAVY_SHARE = Fraction(1, 2)


def interest_universe(interests_of_users: ir.Table) -> ir.Table:
    """(interest_key): every interest some user holds (a few hundred)."""
    return interests_of_users.select("interest_key").distinct()


def heavy_users(interests_of_users: ir.Table, share: Fraction = HEAVY_SHARE) -> ir.Table:
    """(user_id): the users holding more than ``share`` of :func:`interest_universe`.

    A few hundred users hold most interests and sit in hundreds of audiences each: joined with
    their interests, they made most of the interest join's rows (see :func:`interest_member_counts`).
    """
    held = interests_of_users.group_by("user_id").aggregate(held=interests_of_users.count())
    universe = interest_universe(interests_of_users).count()
    # In integers (a float literal does not compile for Spark SQL without a Spark session).
    above = held.held * share.denominator > universe * share.numerator
    return held.filter(above).select("user_id")


def _members_with(advertised: ir.Table, pairs: ir.Table, prefix: str) -> ir.Table:
    """(account_key, interest_key, <prefix>_total, <prefix>_engaged) of (user, interest)
    ``pairs`` joined with the accounts' members."""
    joined = advertised.join(pairs, advertised.user_id == pairs.user_id)
    counted = _count_members(
        joined.select(
            account_key=joined.account_key,
            engaged=joined.engaged,
            interest_key=joined.interest_key,
        ),
        "interest_key",
    )
    return counted.rename(**{f"{prefix}_total": "total", f"{prefix}_engaged": "engaged"})


def interest_member_counts(
    members: ir.Table,
    interests_of_users: ir.Table,
    heavy: ir.Table | None = None,
    *,
    split: bool = True,
) -> ir.Table:
    """(account_key, interest_key, total, engaged): members of T(a) (and of E(a)) having each
    level-1 and level-2 interest, counted together from :func:`audience_members`; P's under the
    shared key. Exact, whichever users ``heavy`` holds (default :func:`heavy_users`).

    Light users are joined with the interests they hold, heavy users with the interests they
    *lack*: for every interest i of the universe, n(a, i) = light members of a holding i + heavy
    members of a − heavy members of a lacking i. At 20M events the joined rows drop from 52M to
    a fraction (BENCHMARKS.md, "the category join"). A cell no member has (a count of 0) is left
    out, as the plain join leaves it.

    Only the accounts' members are joined with their interests: P is everyone in the window, and
    the interests of users hold only users in the window, one row per (user, interest), so P's
    count of an interest is its number of rows there — without P's million members in the join.

    With ``split`` false (the caller found nobody heavy), every user is joined with the interests
    they hold: the same counts, without the split's extra joins, which cost Spark more than they
    save where nobody is heavy (BENCHMARKS.md).
    """
    advertised = members.filter(members.account_key != SHARED_ACCOUNT_KEY)

    if split:
        advertised_counts = _split_interest_counts(advertised, interests_of_users, heavy)
    else:
        plain = _members_with(advertised, interests_of_users, "held")
        advertised_counts = plain.select(
            "account_key", "interest_key", total="held_total", engaged="held_engaged"
        )

    platform = interests_of_users.group_by("interest_key").aggregate(
        total=interests_of_users.count()
    )
    everyone = platform.select(
        account_key=ibis.literal(SHARED_ACCOUNT_KEY, "int32"),
        interest_key=platform.interest_key,
        total=platform.total,
        engaged=ibis.literal(0, "int64"),
    )
    return advertised_counts.union(everyone, distinct=False)


def _split_interest_counts(
    advertised: ir.Table, interests_of_users: ir.Table, heavy: ir.Table | None
) -> ir.Table:
    """The accounts' rows of :func:`interest_member_counts`, light and heavy users apart."""
    heavy = heavy_users(interests_of_users) if heavy is None else heavy
    universe = interest_universe(interests_of_users)
    held = _members_with(advertised, interests_of_users.anti_join(heavy, "user_id"), "held")
    heavy_held = interests_of_users.semi_join(heavy, "user_id")
    lacking = heavy.cross_join(universe).anti_join(heavy_held, ["user_id", "interest_key"])
    lacked = _members_with(advertised, lacking, "lacked")
    heavy_members = _count_members(advertised.semi_join(heavy, "user_id")).rename(
        heavy_total="total", heavy_engaged="engaged"
    )

    # Every interest is a cell of an account with a heavy member; the others are where a light
    # member holds it. Added with joins, not summed: DuckDB hands a sum of counts back as a
    # 128-bit integer.
    cells = held.select("account_key", "interest_key").union(
        heavy_members.cross_join(universe).select("account_key", "interest_key"), distinct=True
    )
    joined = (
        cells.left_join(held, ["account_key", "interest_key"])
        .left_join(heavy_members, "account_key")
        .left_join(lacked, ["account_key", "interest_key"])
    )

    def count(column: str) -> ir.IntegerValue:
        return (
            joined[f"held_{column}"].fill_null(0)
            + joined[f"heavy_{column}"].fill_null(0)
            - joined[f"lacked_{column}"].fill_null(0)
        )

    counted = joined.select(
        account_key=joined.account_key,
        interest_key=joined.interest_key,
        total=count("total"),
        engaged=count("engaged"),
    )
    return counted.filter(counted.total > 0)


def sizes_of_audiences(members: ir.Table) -> ir.Table:
    """n(A) for every audience that has at least one member, from :func:`audience_members`."""
    return per_audience(member_counts(members)).rename(size="users")


def interest_counts_of_audiences(members: ir.Table, interests_of_users: ir.Table) -> ir.Table:
    """n_c(A) and n_s(A) from :func:`audience_members` (see :func:`interest_member_counts`)."""
    return per_audience(interest_member_counts(members, interests_of_users), "interest_key")


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


def demographic_value_keys(users: ir.Table) -> ir.Table:
    """(dimension, key, value_key): every value some user has, with a dense integer key.

    A few hundred values for a million users, so members can be counted per value with small
    integers instead of strings.
    """
    values = demographic_values(users)
    per_dimension = [
        values.select(dimension=ibis.literal(dimension), key=values[column]).distinct()
        for dimension, column, _ in DEMOGRAPHICS
    ]
    stacked = per_dimension[0].union(*per_dimension[1:], distinct=False)
    key = ibis.row_number().over(order_by=[stacked.dimension, stacked.key]) + 1
    return stacked.mutate(value_key=key.cast("int32"))


def member_demographics(members: ir.Table, users: ir.Table, value_keys: ir.Table) -> ir.Table:
    """Each member with the keys of its five values: the member's columns but the user, then five keys
    (from memberships: account_key, audience; from :func:`audience_members`: account_key, engaged).

    Members and users are joined once; the per-dimension counts that follow then read only small
    integers. (Counting members per combination of all five values instead gave almost as many
    combinations as members: 2.3M of 6.2M at 20M events.)
    """
    coded = demographic_values(users)
    for dimension, column, _ in DEMOGRAPHICS:
        keys = value_keys.filter(value_keys.dimension == dimension)
        keys = keys.select(**{f"__{column}": keys.key, f"__{column}_key": keys.value_key})
        coded = coded.join(keys, coded[column] == keys[f"__{column}"])
    joined = members.join(coded, members.user_id == coded.user_id)
    return joined.select(
        # The member's own columns: (account_key, audience), or (account_key, engaged).
        **{name: joined[name] for name in members.columns if name != "user_id"},
        **{column: joined[f"__{column}_key"] for _, column, _ in DEMOGRAPHICS},
    )


def _counts_per_value(
    member_values: ir.Table, value_keys: ir.Table, count: Callable[[ir.Table], ir.Table]
) -> ir.Table:
    """Every dimension's members counted per value, stacked and named: ``count`` groups
    ``member_values`` (given a ``value_key`` column: one dimension's) by ``value_key`` among its
    keys; its columns before ``value_key`` come first, then ``dimension`` and ``key``, then the
    counts after it."""
    per_dimension = [
        count(member_values.mutate(value_key=member_values[column]))
        for _, column, _ in DEMOGRAPHICS
    ]
    stacked = per_dimension[0].union(*per_dimension[1:], distinct=False)
    named = stacked.join(value_keys, stacked.value_key == value_keys.value_key)
    at = stacked.columns.index("value_key")
    return named.select(
        *(named[name] for name in stacked.columns[:at]),
        named.dimension,
        named.key,
        *(named[name] for name in stacked.columns[at + 1 :]),
    )


def demographic_counts(member_values: ir.Table, value_keys: ir.Table) -> ir.Table:
    """(account_key, audience, dimension, key, users): members of A per (dimension, value), from
    :func:`member_demographics` of memberships."""
    return _counts_per_value(
        member_values,
        value_keys,
        lambda values: values.group_by("account_key", "audience", "value_key").aggregate(
            users=values.count()
        ),
    )


def demographic_member_counts(member_values: ir.Table, value_keys: ir.Table) -> ir.Table:
    """(account_key, dimension, key, total, engaged): members per demographic value, from
    :func:`member_demographics` of :func:`audience_members`: T(a) and E(a) counted together."""
    return _counts_per_value(
        member_values, value_keys, lambda values: _count_members(values, "value_key")
    )


def demographic_counts_of_audiences(member_values: ir.Table, value_keys: ir.Table) -> ir.Table:
    """Members of A per (dimension, value) (see :func:`demographic_member_counts`)."""
    return per_audience(demographic_member_counts(member_values, value_keys), "dimension", "key")
