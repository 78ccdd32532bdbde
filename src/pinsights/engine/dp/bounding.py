"""Per-person contribution bounding, as Ibis expressions that run the same on every engine.

DP noise is calibrated to how much one person can change a release. Unbounded, a person with an
interest in all 24 categories and 300 subcategories would move 324 cells of every audience they are
in. Here each person counts in at most ``Caps.categories`` categories and ``Caps.subcategories``
subcategories (only under their kept categories, so subcategory ≤ category holds in the bounded
counts too) per audience, and in one value per demographic dimension (true by construction).

Which interests are kept is chosen per person by a stable hash of (user, interest), not by
popularity: a choice that depended on other people's data would let one person's presence change
someone else's cells. The hash is integer arithmetic modulo the prime 2³¹ − 1 with every product
below 2⁴⁸, so it is computed identically, within int64, by DuckDB and by Spark (no engine's own
hash function, whose values differ between engines); ties cannot occur as the interest key breaks
them, so a DP build gives byte-identical documents on both engines.

The audience parts of a release are P (code 0), E(a) (2) and R(a) = T(a) ∖ E(a) (3): a person is
in E(a) or in R(a), never both (:mod:`.release`).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from pinsights.engine.dp.parameters import Caps
from pinsights.engine.semantics import platform_memberships

#: Audience codes of DP parts (P and E as in semantics.AUDIENCE_CODES; R is T(a) without E(a)).
PART_CODES: dict[int, str] = {0: "P", 2: "E", 3: "R"}
_PRIME = 2_147_483_647  # 2^31 - 1
_A, _B, _C = 48_271, 69_621, 16_807


def stable_rank_key(user_id: ir.IntegerValue, interest_key: ir.IntegerValue) -> ir.IntegerValue:
    """A pseudo-random order of a person's interests, the same on every engine and every build."""
    user = ((user_id % _PRIME) + _PRIME) % _PRIME  # non-negative whatever the sign convention
    first = (user * _A + interest_key.cast("int64") * _B + 1) % _PRIME
    return (first * _C + user) % _PRIME


def part_memberships(facts: ir.Table) -> ir.Table:
    """(account_key, audience, user_id) for P (shared key), E(a) (2) and R(a) (3)."""
    everyone = platform_memberships(facts)
    advertised = facts.filter(facts.account_key.notnull())
    parts = advertised.select(
        account_key=advertised.account_key,
        audience=advertised.engaged.ifelse(2, 3).cast("int8"),
        user_id=advertised.user_id,
    )
    return everyone.union(parts, distinct=False)


def bounded_user_interests(interests_of_users: ir.Table, levels: ir.Table, caps: Caps) -> ir.Table:
    """I(u) cut to at most ``caps.categories`` categories and ``caps.subcategories`` subcategories
    of kept categories per person: (user_id, interest_key), like semantics.user_interests.

    ``levels`` is semantics.keyed_levels: (interest_key, level1_key, level2_key or null).
    """
    categories = levels.select(category_key=levels.level1_key).distinct()
    subcategory_levels = levels.filter(levels.level2_key.notnull())
    subcategories = subcategory_levels.select(
        subcategory_key=subcategory_levels.level2_key, parent_key=subcategory_levels.level1_key
    ).distinct()

    pairs = interests_of_users
    own = pairs.join(categories, pairs.interest_key == categories.category_key)
    own = own.select(user_id=own.user_id, interest_key=own.interest_key)
    ranked = own.mutate(
        rank=ibis.row_number().over(
            group_by=own.user_id,
            order_by=[stable_rank_key(own.user_id, own.interest_key), own.interest_key],
        )
    )
    kept = ranked.filter(ranked["rank"] < caps.categories).select("user_id", "interest_key")

    subs = pairs.join(subcategories, pairs.interest_key == subcategories.subcategory_key)
    subs = subs.select(
        user_id=subs.user_id, interest_key=subs.interest_key, parent_key=subs.parent_key
    )
    kept_parents = kept.select(parent_user=kept.user_id, kept_key=kept.interest_key)
    under_kept = subs.join(
        kept_parents,
        (subs.user_id == kept_parents.parent_user) & (subs.parent_key == kept_parents.kept_key),
    ).select(user_id=subs.user_id, interest_key=subs.interest_key)
    ranked_subs = under_kept.mutate(
        rank=ibis.row_number().over(
            group_by=under_kept.user_id,
            order_by=[
                stable_rank_key(under_kept.user_id, under_kept.interest_key),
                under_kept.interest_key,
            ],
        )
    )
    kept_subs = ranked_subs.filter(ranked_subs["rank"] < caps.subcategories).select(
        "user_id", "interest_key"
    )
    return kept.union(kept_subs, distinct=False)
