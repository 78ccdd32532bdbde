"""The interest counts are exact whichever users are counted by the interests they lack.

``semantics.interest_member_counts`` joins light users with the interests they hold and heavy
users with the interests they lack (n(a, i) = light members with i + heavy members − heavy members
lacking i). Where the split falls must not change a count: here it is drawn at its extremes
(nobody heavy, everyone heavy) and at the build's share, on random members and interests, and
every result is compared with a count made by brute force in Python from the SPEC's definition
(members of the audience holding the interest). The engine's builds are compared with the
independent reference in test_engine_reference.py and test_engine_edge_cases.py.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinsights.engine import semantics

Members = set[tuple[int, int, bool]]  # (account_key, user_id, engaged)
Interests = set[tuple[int, int]]  # (user_id, interest_key)

members_and_interests = st.tuples(
    st.sets(st.tuples(st.integers(1, 3), st.integers(1, 8), st.booleans()), max_size=24).map(
        lambda rows: {(a, u, e) for a, u, e in {(a, u): (a, u, e) for a, u, e in rows}.values()}
    ),
    st.sets(st.tuples(st.integers(1, 8), st.integers(1, 6)), max_size=40),
)


def brute_force(members: Members, interests: Interests) -> Counter[tuple[int, int, int, int]]:
    """(account_key, interest_key, total, engaged) of T(a)/E(a) members holding each interest,
    P's (every user's interest rows) under the shared key."""
    cells: Counter[tuple[int, int, int, int]] = Counter()
    for account in {a for a, _, _ in members}:
        for key in {i for _, i in interests}:
            holders = [e for a, u, e in members if a == account and (u, key) in interests]
            if holders:
                cells[(account, key, len(holders), sum(holders))] += 1
    for key, total in Counter(i for _, i in interests).items():
        cells[(semantics.SHARED_ACCOUNT_KEY, key, total, 0)] += 1
    return cells


def engine_counts(
    members: Members, interests: Interests, share: Fraction | None
) -> Counter[tuple[int, int, int, int]]:
    users = sorted({u for _, u, _ in members} | {u for u, _ in interests})
    member_rows = sorted(members) + [(semantics.SHARED_ACCOUNT_KEY, u, False) for u in users]
    member_table = ibis.memtable(
        pa.table(
            {
                "account_key": pa.array([a for a, _, _ in member_rows], pa.int32()),
                "user_id": pa.array([u for _, u, _ in member_rows], pa.int64()),
                "engaged": pa.array([e for _, _, e in member_rows], pa.bool_()),
            }
        )
    )
    interest_rows = sorted(interests)
    interest_table = ibis.memtable(
        pa.table(
            {
                "user_id": pa.array([u for u, _ in interest_rows], pa.int64()),
                "interest_key": pa.array([i for _, i in interest_rows], pa.int32()),
            }
        )
    )
    heavy = semantics.heavy_users(interest_table, semantics.HEAVY_SHARE if share is None else share)
    counted = semantics.interest_member_counts(
        member_table, interest_table, heavy, split=share is not None
    )
    rows = ibis.duckdb.connect().to_pyarrow(counted).to_pylist()
    return Counter((r["account_key"], r["interest_key"], r["total"], r["engaged"]) for r in rows)


#: None: the plain join the build takes when nobody is heavy (no split at all).
@pytest.mark.parametrize("share", [Fraction(0), semantics.HEAVY_SHARE, Fraction(1), None])
@settings(max_examples=40, deadline=None)
@given(members_and_interests)
def test_interest_counts_equal_brute_force_wherever_the_split_falls(
    share: Fraction | None, drawn: tuple[Members, Interests]
) -> None:
    members, interests = drawn
    assert engine_counts(members, interests, share) == brute_force(members, interests)


def test_users_holding_every_interest_and_in_every_audience() -> None:
    """Users 1 and 2 hold every interest and are in every audience (engaged in account 1 only);
    user 3 holds all but one; user 4 holds one. At the build's share the first three are heavy."""
    members = {(a, u, a == 1) for a in (1, 2, 3) for u in (1, 2, 3)} | {(2, 4, True)}
    interests = {(u, i) for u in (1, 2) for i in range(1, 7)}
    interests |= {(3, i) for i in range(1, 6)} | {(4, 6)}
    expected = brute_force(members, interests)
    assert (2, 6, 3, 1) in expected  # interest 6: users 1, 2 and the light user 4 in account 2
    assert (3, 6, 2, 0) in expected  # held by two heavy users of account 3, lacked by user 3
    for share in (Fraction(0), semantics.HEAVY_SHARE, Fraction(1)):
        assert engine_counts(members, interests, share) == expected
