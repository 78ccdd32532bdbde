"""The documents step: the catalogue of names, then every served document of one date (SPEC §3).

The interest part of the documents is written while the engine still counts demographics
(:func:`prepare`, called between :class:`~.counts.Counting` starting and finishing); the rest
once the counts are complete (:func:`write`).
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

from pinsights.data.tables import ACCOUNT_DETAILS
from pinsights.engine.backend import Backend
from pinsights.engine.documents import (
    ACCOUNT_INSIGHT_TYPES,
    P_KEY,
    Catalogue,
    Counts,
    Document,
    DocumentAssembler,
)
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.steps.check import Checked


def catalogue(backend: Backend, checked: Checked) -> Catalogue:
    """Names of categories, subcategories and metros, and which interest is which level."""
    interests, levels = checked.used["interests"], checked.keys.named_levels
    joined = interests.join(levels, interests.interest_id == levels.interest_id)
    named = backend.to_arrow(
        joined.filter(joined.level <= 2).select(
            interests.interest_id, interests.name, interests.parent_id, levels.level
        )
    ).to_pylist()
    result = Catalogue(
        interest_names={row["interest_id"]: row["name"] for row in named},
        categories={row["interest_id"] for row in named if row["level"] == 1},
        parent_of_subcategory={
            row["interest_id"]: row["parent_id"] for row in named if row["level"] == 2
        },
    )
    if "metros" in checked.used:
        for row in backend.to_arrow(checked.used["metros"]).to_pylist():
            result.metro_names[row["metro"]] = row["name"]
    return result


def accounts(backend: Backend, checked: Checked) -> list[dict[str, str | None]]:
    """Every used ad account, sorted by id (each gets its documents), with what the input says
    of it: its name, and country and currency where the table has such columns."""
    used: ir.Table = checked.used["ad_accounts"]
    details = [name for name in ACCOUNT_DETAILS if name in used.columns]
    rows = backend.to_arrow(used.select("ad_account_id", *details)).to_pylist()
    records = [
        {"ad_account_id": str(row["ad_account_id"]), **{name: row[name] for name in details}}
        for row in rows
    ]
    return sorted(records, key=lambda record: str(record["ad_account_id"]))


def prepare(
    partial: Counts,
    names: Catalogue,
    rules: PrivacyRules,
    date: dt.date,
    account_ids: list[str],
) -> DocumentAssembler:
    """Write the interest part of every audience's documents from counts without demographics."""
    assembler = DocumentAssembler(partial, names, rules, date.isoformat())
    assembler.prepare_categories(
        [P_KEY, *((a, kind) for a in account_ids for kind in ACCOUNT_INSIGHT_TYPES)]
    )
    return assembler


def write(assembler: DocumentAssembler, account_ids: list[str]) -> list[Document]:
    """Every document of the date, once the counts are complete."""
    return list(assembler.documents(account_ids))
