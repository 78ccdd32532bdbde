"""The counts steps of one date: facts → memberships → counts (SPEC §3).

- facts: each (user, pin's account, pin's interest) of the window, with whether it was engaged;
- memberships: which users are in which audience, and the interests of each user;
- counts: audience sizes, interest counts and demographic counts, small cells suppressed by the
  privacy rules, mapped back from dense keys to ids as the document assembler expects them.

The demographic counts run in the engine on a second thread (:class:`Counting`): the caller writes
the interest part of every document meanwhile, in Python, while the engine joins members with
their users' values — which does not keep both cores busy by itself.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

import ibis.expr.types as ir
import pyarrow as pa

from pinsights.engine import semantics
from pinsights.engine.categories import InterestCells
from pinsights.engine.demographics import DemographicCells
from pinsights.engine.documents import SHARED_ACCOUNT, Counts
from pinsights.engine.dp import bounding
from pinsights.engine.dp.parameters import Caps
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.steps.check import Checked
from pinsights.engine.steps.scope import Scope


def facts(scope: Scope, checked: Checked, start: dt.datetime, end: dt.datetime) -> ir.Table:
    return scope.materialize(
        "facts", semantics.engagement_facts(checked.used["events"], start, end)
    )


def memberships(
    scope: Scope,
    checked: Checked,
    facts: ir.Table,
    start: dt.datetime,
    end: dt.datetime,
    caps: Caps | None = None,
    interests: ir.Table | None = None,
) -> tuple[ir.Table, ir.Table]:
    """The audiences' members and the interests of users; the two are independent. With the DP
    mode's ``caps``, each user's contribution is bounded (:mod:`pinsights.engine.dp.bounding`).
    ``interests``: the interests of users when the caller has them (the refresh's window)."""
    if interests is None:
        interests = semantics.user_interests(
            semantics.events_in_window(checked.used["events"], start, end), checked.keys.levels
        )
    kept = scope.materialize_all(
        {
            # Exact counts read T(a) with E(a) marked (one pass for both); the DP parts are
            # disjoint audiences, one membership row each.
            "memberships": (
                semantics.audience_members(facts)
                if caps is None
                else bounding.part_memberships(facts)
            ),
            "user_interests": (
                interests
                if caps is None
                else bounding.bounded_user_interests(interests, checked.keys.levels, caps)
            ),
        }
    )
    return kept["memberships"], kept["user_interests"]


def count_rows(counts: Counts) -> int:
    """Rows of counts that reached Python: sizes, interest and demographic cells."""
    return len(counts.sizes) + counts.interest_rows() + counts.demographic_rows()


@dataclass(frozen=True)
class Counted:
    """Members counted per account (and per cell), unsuppressed: what documents are made of.

    ``sizes`` (account_key, total, engaged), ``interests`` (account_key, interest_key, total,
    engaged), ``demographics`` (account_key, dimension, key, total, engaged); P under the shared
    key (see :func:`pinsights.engine.semantics.per_audience`). The incremental refresh keeps
    them in its state and hands its updated ones in (engine/refresh/window.py).
    """

    sizes: ir.Table
    interests: ir.Table
    demographics: ir.Table


class Counting:
    """Counts under way: sizes and interest counts are in :attr:`counts`; the demographic counts
    run in the engine until :meth:`finish` fills them in (the same object).

    With ``counted`` (the refresh's delta path) the counts are read from those tables; else they
    are counted from ``members`` and ``interests_of_users``, and the tables counted are kept as
    :attr:`interest_counted` and (after :meth:`finish`) :attr:`demographic_counted`.
    """

    def __init__(
        self,
        scope: Scope,
        rules: PrivacyRules,
        members: ir.Table | None,
        interests_of_users: ir.Table | None,
        checked: Checked,
        counted: Counted | None = None,
    ) -> None:
        backend = scope.backend
        self._keys = checked.keys
        self.demographic_counted: ir.Table | None = None
        if counted is None:
            assert members is not None and interests_of_users is not None
            # The interest and demographic counts of members (all of them, and the engaged
            # ones) are materialised once, then taken apart into P, T and E rows
            # (semantics.per_audience reads them three times). The sizes' aggregate is small
            # work: read straight to Python. The heavy users (a few hundred) are read by three
            # parts of the interest counts: kept. Where nobody is heavy the plain join gives the
            # same counts without the split's extra joins.
            heavy = scope.materialize("heavy_users", semantics.heavy_users(interests_of_users))
            split = backend.rows(heavy) > 0
            self.interest_counted = scope.materialize(
                "interest_member_counts",
                semantics.interest_member_counts(members, interests_of_users, heavy, split=split),
            )
            sizes_expr = semantics.sizes_of_audiences(members)
        else:
            self.interest_counted = counted.interests
            sizes_expr = semantics.per_audience(counted.sizes).rename(size="users")
        size_rows = backend.to_arrow(sizes_expr).to_pydict()
        sizes = {
            self._audience(account_key, code): int(size)
            for account_key, code, size in zip(
                size_rows["account_key"], size_rows["audience"], size_rows["size"], strict=True
            )
        }
        interest_counts = rules.suppress_small_cells(
            semantics.per_audience(self.interest_counted, "interest_key")
        )
        # Kept as columns: the documents' categories are written from them (engine/categories).
        interest_cells = InterestCells.from_arrow(
            backend.to_arrow(interest_counts.order_by("account_key", "audience")),
            self._keys.interests,
            self._audience,
        )
        self.counts = Counts(
            sizes=sizes, interests={}, demographics={}, interest_cells=interest_cells
        )

        def demographic_rows() -> pa.Table:
            if counted is not None:
                demographic_counted = counted.demographics
            else:
                assert members is not None
                value_keys = scope.materialize(
                    "demographic_value_keys",
                    semantics.demographic_value_keys(checked.used["users"]),
                )
                member_values = scope.materialize(
                    "member_demographics",
                    semantics.member_demographics(members, checked.used["users"], value_keys),
                )
                demographic_counted = scope.materialize(
                    "demographic_member_counts",
                    semantics.demographic_member_counts(member_values, value_keys),
                )
            self.demographic_counted = demographic_counted
            return backend.to_arrow(
                rules.suppress_small_cells(
                    semantics.per_audience(demographic_counted, "dimension", "key")
                ).order_by("account_key", "audience")
            )

        self._engine = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[pa.Table] = self._engine.submit(demographic_rows)

    def _audience(self, account_key: int, code: int) -> tuple[str, str]:
        account = (
            SHARED_ACCOUNT
            if account_key == semantics.SHARED_ACCOUNT_KEY
            else self._keys.accounts[account_key]
        )
        return account, semantics.AUDIENCE_CODES[code]

    def finish(self) -> Counts:
        """Wait for the demographic counts and fill them in (kept as columns, as the interest
        counts are: engine/demographics); the complete counts."""
        self.counts.demographic_cells = DemographicCells.from_arrow(
            self._pending.result(), self._audience
        )
        return self.counts

    def __enter__(self) -> Counting:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._engine.shutdown(wait=True)  # the engine's query ends before anything goes on
