"""The documents' demographics written for all audiences at once from columns
(pinsights.engine.demographics) are the bytes a plain per-document writer gives: each value's ratio
the exact rational rounded half to even, ages in their natural order with ``unknown`` last, the
other dimensions by ratio descending then key as text, at most so many countries and metros, each
value named.

The plain writer here is the SPEC read literally: ``Fraction`` arithmetic, ``round(x, 4)`` (half to
even on a Fraction), the names spelled out, ``json.dumps`` of the whole document."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pyarrow as pa
import pycountry
from hypothesis import example, given
from hypothesis import strategies as st

from pinsights.engine.demographics import DemographicCells
from pinsights.engine.documents import P_KEY, Catalogue, Counts, DocumentAssembler
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.semantics import (
    AUDIENCE_CODES,
    YOUR_ENGAGED_AUDIENCE,
    YOUR_TOTAL_AUDIENCE,
)
from tests.reference import (
    AGE_BUCKETS,
    DEVICE_NAMES,
    GENDER_NAMES,
    UNKNOWN,
    UNKNOWN_NAME,
    country_name,
)

DATE = "2026-11-27"
AGES = [*AGE_BUCKETS, UNKNOWN]
#: Keys whose text order is not what a number or a name would give; one unknown country code.
COUNTRIES = ["us", "fr", "de", "gb", "ci", "zz", "unknown"]
METROS = ["501", "80", "9", "1000", 'Q"uote', "Zürich", "unknown"]
METRO_NAMES = {"501": "New York", "80": 'Back\\slash "x"', "9": "Café", "1000": "Line\nbreak"}
VALUES = {
    "ages": AGES,
    "genders": [*GENDER_NAMES, UNKNOWN],
    "countries": COUNTRIES,
    "metros": METROS,
    "devices": [*DEVICE_NAMES, UNKNOWN],
}
#: Sizes that put many ratios exactly halfway between two 4-decimal values.
TIE_SIZES = [20_000, 40_000, 160_000, 2_000_000]


def _name(dimension: str, key: str) -> str:
    """The names of the reference (tests/reference.py); an unknown country code is ``Unknown``."""
    if key == UNKNOWN:
        return UNKNOWN_NAME
    if dimension == "ages":
        return key
    if dimension == "genders":
        return GENDER_NAMES[key]
    if dimension == "countries":
        known = pycountry.countries.get(alpha_2=key.upper()) is not None
        return country_name(key) if known else UNKNOWN_NAME
    if dimension == "metros":
        return METRO_NAMES.get(key, key)
    return DEVICE_NAMES[key]


def _plain(
    values: dict[str, list[tuple[str, int]]], size: int, insight_type: str, limits: dict[str, int]
) -> bytes:
    """One audience's whole document (no interests), as SPEC §3 says it."""
    demographics: dict[str, Any] = {}
    for dimension in VALUES:
        cells = [(key, Fraction(users, size)) for key, users in values.get(dimension, [])]
        if dimension == "ages":
            cells.sort(key=lambda cell: AGES.index(cell[0]))
        else:
            cells.sort(key=lambda cell: (-cell[1], cell[0]))
        if dimension in limits:
            cells = cells[: limits[dimension]]
        demographics[dimension] = [
            {"key": key, "name": _name(dimension, key), "ratio": float(round(ratio, 4))}
            for key, ratio in cells
        ]
    document = {
        "type": insight_type,
        "date": DATE,
        "size": size,
        "size_is_upper_bound": False,
        "categories": [],
        "demographics": demographics,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


Demographics = dict[tuple[str, str], dict[str, list[tuple[str, int]]]]


@st.composite
def audiences(draw: st.DrawFn) -> tuple[dict[tuple[str, str], int], Demographics]:
    """P and a few accounts' T and E audiences with random demographic counts, many of them tied."""
    scale = draw(st.sampled_from([1, 1, 1, 10**6, 10**12]))  # 10**12: past int64's exactness
    sizes: dict[tuple[str, str], int] = {}
    demographics: Demographics = {}
    keys = [P_KEY] + [
        (account, insight_type)
        for account in draw(st.lists(st.sampled_from(["a1", "a2", "b"]), unique=True))
        for insight_type in (YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE)
    ]
    for key in keys:
        size = draw(st.sampled_from(TIE_SIZES) | st.integers(0, 400_000)) * scale
        sizes[key] = size
        counts = st.sampled_from([1, 3, 7, 10, 11]) | st.integers(1, 50_000)
        per_dimension = {
            dimension: [
                (value, min(draw(counts) * scale, size))
                for value in draw(st.lists(st.sampled_from(values), unique=True))
            ]
            for dimension, values in VALUES.items()
            if draw(st.booleans())
        }
        demographics[key] = {
            dimension: [(value, n) for value, n in cells if n > 0]
            for dimension, cells in per_dimension.items()
        }
    return sizes, demographics


def _columns(demographics: Demographics, chunks: int) -> DemographicCells:
    """The same counts as the engine hands them back: Arrow rows ordered by audience, in
    ``chunks`` chunks, the counts as decimals (a sum is one on DuckDB)."""
    account_keys = {account: k for k, account in enumerate(["", "a1", "a2", "b"])}
    code_of = {insight_type: code for code, insight_type in AUDIENCE_CODES.items()}
    rows = sorted(
        (account_keys[account], code_of[insight_type], dimension, value, n)
        for (account, insight_type), dimensions in demographics.items()
        for dimension, cells in dimensions.items()
        for value, n in cells
    )
    columns = {
        "account_key": (pa.int32(), 0),
        "audience": (pa.int8(), 1),
        "dimension": (pa.string(), 2),
        "key": (pa.string(), 3),
        "users": (pa.decimal128(38, 0), 4),
    }
    step = max(1, -(-len(rows) // chunks))
    parts = [rows[start : start + step] for start in range(0, len(rows), step)] or [[]]
    table = pa.table(
        {
            name: pa.chunked_array([[r[at] for r in part] for part in parts], kind)
            for name, (kind, at) in columns.items()
        }
    )
    accounts = {k: account for account, k in account_keys.items()}
    return DemographicCells.from_arrow(
        table, lambda account_key, code: (accounts[account_key], AUDIENCE_CODES[code])
    )


@given(
    audiences(),
    st.integers(0, 8),
    st.integers(0, 8),
    st.integers(1, 3),
    st.booleans(),
    st.booleans(),
)
@example(
    drawn=(
        {P_KEY: 20_000},
        {P_KEY: {"countries": [("us", 1), ("fr", 1), ("de", 3)], "ages": [("unknown", 1)]}},
    ),
    max_countries=2,
    max_metros=0,
    chunks=1,
    from_arrow=True,
    prepared=True,
)
def test_demographics_are_the_plain_writers_bytes(
    drawn: tuple[dict[tuple[str, str], int], Demographics],
    max_countries: int,
    max_metros: int,
    chunks: int,
    from_arrow: bool,
    prepared: bool,
) -> None:
    sizes, demographics = drawn
    accounts = sorted({account for account, _ in sizes if account})
    rules = PrivacyRules(min_audience_size=1, max_countries=max_countries, max_metros=max_metros)
    counts = Counts(
        sizes,
        {},
        {} if from_arrow else demographics,
        demographic_cells=_columns(demographics, chunks) if from_arrow else None,
    )
    catalogue = Catalogue({}, set(), {}, metro_names=METRO_NAMES)
    assembler = DocumentAssembler(counts, catalogue, rules, DATE)
    if prepared:  # as the build does, every audience at once; else document by document
        assembler.prepare_demographics(
            [
                P_KEY,
                *((a, t) for a in accounts for t in (YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE)),
            ]
        )
    limits = {"countries": max_countries, "metros": max_metros}
    for document in assembler.documents(accounts):
        key = (document.ad_account_id, document.insight_type)
        size = sizes.get(key, 0)
        assert document.reportable == (size >= 1)
        if document.reportable:
            assert document.body == _plain(demographics.get(key, {}), size, key[1], limits)
