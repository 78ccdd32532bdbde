"""Contribution bounding: removing one person changes at most the documented number of cells of
one audience part (1 size + 6 categories + 16 subcategories + 5 demographic values = 28), each by
at most one, and the person is in one part per account (E or R), on real DuckDB queries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import ibis
import numpy as np
import pytest

from pinsights.engine import semantics
from pinsights.engine.dp import bounding
from pinsights.engine.dp.parameters import DEFAULT, Caps

N_CATEGORIES = 10
SUBCATEGORIES_PER_CATEGORY = 6


def _levels() -> list[dict[str, Any]]:
    rows = [{"interest_key": c, "level1_key": c, "level2_key": None} for c in range(1, 11)]
    for c in range(1, N_CATEGORIES + 1):
        for j in range(SUBCATEGORIES_PER_CATEGORY):
            sub = 100 + 10 * c + j
            rows.append({"interest_key": sub, "level1_key": c, "level2_key": sub})
            rows.append({"interest_key": 1000 + sub, "level1_key": c, "level2_key": sub})  # depth 3
    return rows


def _dataset(seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    users = list(range(-5, 195))  # negative ids too: the hash must not care
    facts, interests, people = [], [], []
    for user in users:
        for account in rng.choice(np.arange(1, 6), size=int(rng.integers(0, 4)), replace=False):
            facts.append(
                {"user_id": user, "account_key": int(account), "engaged": bool(rng.random() < 0.5)}
            )
        facts.append({"user_id": user, "account_key": None, "engaged": True})
        # Heavy users: all ten categories and most subcategories (over both caps).
        heavy = user % 7 == 0
        categories = range(1, 11) if heavy else rng.choice(np.arange(1, 11), size=3, replace=False)
        for c in categories:
            interests.append({"user_id": user, "interest_key": int(c)})
            for j in range(SUBCATEGORIES_PER_CATEGORY):
                if heavy or rng.random() < 0.3:
                    interests.append({"user_id": user, "interest_key": 100 + 10 * int(c) + j})
        people.append(
            {
                "user_id": user,
                "age_bucket": ["18-24", "25-34", None][user % 3],
                "gender": ["female", "male", None][user % 3],
                "country": ["US", "de", None][user % 3],
                "metro": ["501", None][user % 2],
                "device": ["iphone", "web", None][user % 3],
            }
        )
    return {"facts": facts, "user_interests": interests, "users": people}


def _bounded_counts(data: dict[str, list[dict[str, Any]]]) -> Counter[tuple[Any, ...]]:
    con = ibis.duckdb.connect()
    facts = ibis.memtable(
        data["facts"], schema={"user_id": "int64", "account_key": "int32", "engaged": "boolean"}
    )
    interests = ibis.memtable(
        data["user_interests"], schema={"user_id": "int64", "interest_key": "int32"}
    )
    levels = ibis.memtable(
        _levels(), schema={"interest_key": "int32", "level1_key": "int32", "level2_key": "int32"}
    )
    users = ibis.memtable(
        data["users"],
        schema={
            "user_id": "int64",
            "age_bucket": "string",
            "gender": "string",
            "country": "string",
            "metro": "string",
            "device": "string",
        },
    )
    members = bounding.part_memberships(facts)
    bounded = bounding.bounded_user_interests(interests, levels, DEFAULT.caps)
    value_keys = semantics.demographic_value_keys(users)
    cells: Counter[tuple[Any, ...]] = Counter()
    for row in con.to_pyarrow(semantics.audience_sizes(members)).to_pylist():
        cells[(row["account_key"], row["audience"], "size")] = row["size"]
    for row in con.to_pyarrow(semantics.interest_counts(members, bounded)).to_pylist():
        cells[(row["account_key"], row["audience"], row["interest_key"])] = row["users"]
    member_values = semantics.member_demographics(members, users, value_keys)
    demographic = semantics.demographic_counts(member_values, value_keys)
    for row in con.to_pyarrow(demographic).to_pylist():
        key = (row["account_key"], row["audience"], row["dimension"], row["key"])
        cells[key] = int(row["users"])
    return cells


def _without(data: dict[str, list[dict[str, Any]]], user: int) -> dict[str, list[dict[str, Any]]]:
    return {name: [row for row in rows if row["user_id"] != user] for name, rows in data.items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_removing_one_person_changes_at_most_28_cells_of_one_part_by_one(seed: int) -> None:
    data = _dataset(seed)
    full = _bounded_counts(data)
    assert DEFAULT.caps.cells == 28
    for user in (-5, 0, 7, 13, 42, 100):  # 0, 7, 42 are heavy users, over both caps
        neighbour = _bounded_counts(_without(data, user))
        changed = Counter()  # cells changed per (account, part)
        for cell in set(full) | set(neighbour):
            difference = full[cell] - neighbour[cell]
            assert difference in (0, 1), (user, cell, difference)
            if difference:
                changed[cell[:2]] += 1
        assert changed, user
        assert max(changed.values()) <= DEFAULT.caps.cells, (user, changed)
        accounts = [account for account, part in changed if part != 0]
        assert len(accounts) == len(set(accounts)), "a person is in E(a) or R(a), never both"
        if user % 7 == 0:  # a heavy user reaches the caps exactly in P
            assert changed[(semantics.SHARED_ACCOUNT_KEY, 0)] == DEFAULT.caps.cells


def test_bounding_keeps_the_caps_and_subcategories_under_kept_categories() -> None:
    data = _dataset(3)
    con = ibis.duckdb.connect()
    interests = ibis.memtable(
        data["user_interests"], schema={"user_id": "int64", "interest_key": "int32"}
    )
    levels = ibis.memtable(
        _levels(), schema={"interest_key": "int32", "level1_key": "int32", "level2_key": "int32"}
    )
    caps = Caps(categories=2, subcategories=3)
    expression = bounding.bounded_user_interests(interests, levels, caps)
    kept = con.to_pyarrow(expression).to_pylist()
    again = con.to_pyarrow(expression).to_pylist()
    assert sorted(map(tuple, (r.values() for r in kept))) == sorted(
        map(tuple, (r.values() for r in again))
    )
    per_user: dict[int, set[int]] = {}
    for row in kept:
        per_user.setdefault(row["user_id"], set()).add(row["interest_key"])
    original = {(r["user_id"], r["interest_key"]) for r in data["user_interests"]}
    for user, keys in per_user.items():
        categories = {k for k in keys if k <= N_CATEGORIES}
        subcategories = {k for k in keys if k > N_CATEGORIES}
        assert len(categories) <= 2 and len(subcategories) <= 3
        assert all((user, k) in original for k in keys)
        assert all((k - 100) // 10 in categories for k in subcategories)
    # Heavy users hit both caps; which categories they keep differs from user to user.
    heavy = [per_user[u] for u in per_user if u % 7 == 0]
    assert all(len(keys) == 5 for keys in heavy)
    assert len({frozenset(k for k in keys if k <= N_CATEGORIES) for keys in heavy}) > 3
