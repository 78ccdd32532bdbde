"""The DP build step: bounded counts of a release's parts from the engine, then noise in Python.

The engine (DuckDB or Spark) runs the bounding and the counts as Ibis expressions
(:mod:`.bounding`, engine/semantics.py); what reaches Python is a few hundred thousand integers,
the same on every engine. Noise and post-processing (:mod:`.release`) run here, after the counts,
keyed by the release, so a release computed on DuckDB and on Spark gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pinsights.engine import semantics
from pinsights.engine.documents import SHARED_ACCOUNT, Catalogue
from pinsights.engine.dp import accounting
from pinsights.engine.dp.bounding import PART_CODES
from pinsights.engine.dp.budget import check_budget
from pinsights.engine.dp.ledger import Ledger, Release
from pinsights.engine.dp.parameters import DpParameters
from pinsights.engine.dp.release import Domain, PartCounts, demographic_domain
from pinsights.engine.dp.seeding import release_key


class _Engine(Protocol):
    def to_arrow(self, expr: ir.Expr) -> pa.Table: ...


def domain_of(catalogue: Catalogue) -> Domain:
    """Every cell of a release: the taxonomy's levels 1 and 2, every demographic value allowed."""
    return Domain(
        categories=sorted(catalogue.categories),
        parent_of_subcategory=dict(catalogue.parent_of_subcategory),
        demographics=demographic_domain(list(catalogue.metro_names)),
    )


def part_counts(
    engine: _Engine,
    members: ir.Table,
    bounded_interests: ir.Table,
    member_values: ir.Table,
    value_keys: ir.Table,
    account_ids: dict[int, str],
    interest_ids: dict[int, str],
    domain: Domain,
    accounts: list[str],
) -> PartCounts:
    """The bounded exact counts of every part (P, E and R of every account), all cells."""
    parts = PartCounts.zeros(accounts, domain)
    row_of = {row: i for i, row in enumerate(parts.rows)}
    max_key = max(account_ids, default=0)
    # (account key, audience code) → row, as an array for the engine's integer columns.
    rows = np.full((max_key + 1, 4), -1, dtype=np.int64)
    for code, part in PART_CODES.items():
        if part == "P":
            rows[semantics.SHARED_ACCOUNT_KEY, code] = row_of[(SHARED_ACCOUNT, "P")]
        else:
            for key, account in account_ids.items():
                rows[key, code] = row_of[(account, part)]

    def row_index(table: pa.Table) -> np.ndarray:
        keys = table.column("account_key").to_numpy(zero_copy_only=False).astype(np.int64)
        codes = table.column("audience").to_numpy(zero_copy_only=False).astype(np.int64)
        found = rows[keys, codes]
        if (found < 0).any():
            raise ValueError("a count of an audience part the release does not have")
        return found

    sizes = engine.to_arrow(semantics.audience_sizes(members))
    parts.sizes[row_index(sizes)] = sizes.column("size").to_numpy(zero_copy_only=False)

    max_interest = max(interest_ids, default=0)
    interest_column = np.full(max_interest + 1, -1, dtype=np.int64)
    for key, interest in interest_ids.items():
        interest_column[key] = domain.column.get(f"interest:{interest}", -1)
    interests = engine.to_arrow(semantics.interest_counts(members, bounded_interests))
    columns = interest_column[
        interests.column("interest_key").to_numpy(zero_copy_only=False).astype(np.int64)
    ]
    known = columns >= 0
    users = interests.column("users").to_numpy(zero_copy_only=False).astype(np.int64)
    parts.cells[row_index(interests)[known], columns[known]] = users[known]

    demographics = engine.to_arrow(semantics.demographic_counts(member_values, value_keys))
    names = pc.binary_join_element_wise(
        demographics.column("dimension"), demographics.column("key"), ":"
    ).dictionary_encode()
    chunks = names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names
    name_column = np.array(
        [domain.column.get(str(name), -1) for name in chunks.dictionary.to_pylist()],
        dtype=np.int64,
    )
    columns = name_column[chunks.indices.to_numpy(zero_copy_only=False)]
    known = columns >= 0  # a metro the metros table does not name is in no released cell
    users = demographics.column("users").to_numpy(zero_copy_only=False).astype(np.int64)
    parts.cells[row_index(demographics)[known], columns[known]] = users[known]
    return parts


class _Materializing(_Engine, Protocol):
    def materialize(self, name: str, expr: ir.Table) -> ir.Table: ...


def engine_part_counts(
    engine: _Materializing,
    members: ir.Table,
    bounded_interests: ir.Table,
    users: ir.Table,
    account_ids: dict[int, str],
    interest_ids: dict[int, str],
    domain: Domain,
    accounts: list[str],
) -> PartCounts:
    """:func:`part_counts` with the demographic tables materialised under the names the exact
    build uses (so the build releases them the same way)."""
    value_keys = engine.materialize(
        "demographic_value_keys", semantics.demographic_value_keys(users)
    )
    member_values = engine.materialize(
        "member_demographics", semantics.member_demographics(members, users, value_keys)
    )
    return part_counts(
        engine,
        members,
        bounded_interests,
        member_values,
        value_keys,
        account_ids,
        interest_ids,
        domain,
        accounts,
    )


def charge_release(
    store_root: Path, date: dt.date, build_id: str, accounts: list[str], params: DpParameters
) -> tuple[Release, bytes]:
    """Check the budget of every account this release charges, charge it, and return it with
    its key (from the store's secret): before any noise is drawn."""
    ledger = Ledger(store_root)
    check_budget(ledger, [date], params, accounts)
    secret = ledger.secret()
    release = ledger.charge(
        date=date,
        build_id=build_id,
        rho_account=params.rho_account(),
        rho_platform=params.rho_platform(),
        accounts=accounts,
    )
    return release, release_key(secret, date.isoformat(), release.release)


def privacy_summary(release: Release, params: DpParameters) -> dict[str, object]:
    """The build report's ``privacy`` section of a DP build."""
    rho = release.rho_account + release.rho_platform
    return {
        "mode": "dp",
        "release": release.release,
        "delta": params.delta,
        "epsilon_per_account": round(accounting.epsilon(rho, params.delta), 4),
        "epsilon_platform": round(accounting.epsilon(release.rho_platform, params.delta), 4),
        "rho_per_account": str(rho),
    }
