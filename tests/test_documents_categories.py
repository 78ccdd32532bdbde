"""The documents' categories written for all audiences at once from columns
(pinsights.engine.categories) are the bytes a plain per-document writer gives: the SPEC's ratios and
indexes as exact rationals rounded half to even, categories and subcategories by ratio descending
then id as text, at most ``max_subcategories`` shown, every subcategory in the category bodies.

The plain writer here is the SPEC read literally: ``Fraction`` arithmetic, ``round(x, 4)`` (half to
even on a Fraction), ``json.dumps`` of the whole document."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import example, given
from hypothesis import strategies as st

from pinsights.engine import categories
from pinsights.engine.categories import InterestCells
from pinsights.engine.documents import P_KEY, Catalogue, Counts, DocumentAssembler
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.semantics import (
    AUDIENCE_CODES,
    YOUR_ENGAGED_AUDIENCE,
    YOUR_TOTAL_AUDIENCE,
)

DATE = "2026-11-27"
#: Ids whose text order is not their numeric order, and names that need escaping.
CATEGORY_IDS = ["9", "10", "100", "011", "2"]
SUBCATEGORY_IDS = ["91", "910", "19", "1000", "0091", "3", "30", "300"]
DEEPER_IDS = ["7", "77"]  # level 3 and below: counted, never listed
NAMES = ['Food "& drink"', "Café", "Home\\decor", "Travel\n", "Art"]
#: Sizes that put many ratios exactly halfway between two 4-decimal values.
TIE_SIZES = [20_000, 40_000, 160_000, 2_000_000]


def _rounded(value: Fraction) -> float:
    return float(round(value, 4))


def _entry(interest_id: str, names: dict[str, str], ratio: Fraction, index: Fraction) -> Any:
    return {
        "id": interest_id,
        "key": interest_id,
        "name": names[interest_id],
        "ratio": _rounded(ratio),
        "index": _rounded(index),
    }


def _plain(
    counts: dict[str, int],
    size: int,
    platform: dict[str, int],
    platform_size: int,
    catalogue: Catalogue,
    max_subcategories: int,
) -> tuple[list[Any], dict[str, bytes]]:
    """The categories and the category bodies of one audience, as SPEC §3 says them."""
    names, parent_of = catalogue.interest_names, catalogue.parent_of_subcategory
    shown: list[Any] = []
    items: dict[str, bytes] = {}
    for n, category in sorted((-n, c) for c, n in counts.items() if c in catalogue.categories):
        n = -n
        ratio = Fraction(n, size)
        children = sorted((-m, s) for s, m in counts.items() if parent_of.get(s) == category)
        subcategories = [
            _entry(
                s, names, Fraction(m, n), Fraction(m, n) / Fraction(platform[s], platform[category])
            )
            for s, m in ((s, -minus_m) for minus_m, s in children)
        ]
        items[category] = json.dumps(
            {"items": subcategories}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        shown.append(
            {
                **_entry(
                    category, names, ratio, ratio / Fraction(platform[category], platform_size)
                ),
                "subcategories": subcategories[:max_subcategories],
            }
        )
    return shown, items


@st.composite
def audiences(draw: st.DrawFn) -> tuple[Catalogue, Counts, int]:
    """A taxonomy, P and a few accounts' T and E audiences with random interest counts."""
    categories_ = draw(st.lists(st.sampled_from(CATEGORY_IDS), min_size=1, unique=True))
    parent_of = {
        s: draw(st.sampled_from(CATEGORY_IDS))  # a parent may be a category nobody counts
        for s in draw(st.lists(st.sampled_from(SUBCATEGORY_IDS), unique=True))
    }
    catalogue = Catalogue(
        interest_names={i: draw(st.sampled_from(NAMES)) for i in [*CATEGORY_IDS, *SUBCATEGORY_IDS]},
        categories=set(categories_),
        parent_of_subcategory=parent_of,
    )
    scale = draw(st.sampled_from([1, 1, 1, 10**6, 10**12]))  # 10**12: past int64's exactness
    known = [*categories_, *parent_of, *DEEPER_IDS]
    platform_size = draw(st.sampled_from(TIE_SIZES) | st.integers(1, 3_000_000)) * scale
    platform = {i: draw(st.integers(1, platform_size)) for i in known}
    sizes: dict[tuple[str, str], int] = {P_KEY: platform_size}
    interests: dict[tuple[str, str], dict[str, int]] = {P_KEY: platform}
    for account in draw(st.lists(st.sampled_from(["a1", "a2", "b"]), unique=True)):
        for insight_type in (YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE):
            size = draw(st.sampled_from(TIE_SIZES) | st.integers(0, 400_000)) * scale
            sizes[(account, insight_type)] = size
            # Few distinct counts: ties between categories and between subcategories.
            values = st.sampled_from([1, 3, 7, 10, 11]) | st.integers(1, 50_000)
            cells = {
                i: min(draw(values) * scale, size, platform[i])
                for i in draw(st.lists(st.sampled_from(known), unique=True))
            }
            interests[(account, insight_type)] = {i: n for i, n in cells.items() if n > 0}
    return catalogue, Counts(sizes=sizes, interests=interests, demographics={}), scale


def _columns(counts: Counts) -> InterestCells:
    """The same counts as the engine hands them back: Arrow rows ordered by audience."""
    ids = sorted({i for cells in counts.interests.values() for i in cells}, reverse=True)
    key_of = {
        interest_id: key for key, interest_id in enumerate(ids, 3)
    }  # keys need not start at 0
    account_keys = {account: k for k, account in enumerate(["", "a1", "a2", "b"])}
    code_of = {insight_type: code for code, insight_type in AUDIENCE_CODES.items()}
    rows: list[tuple[int, int, int, int]] = sorted(
        (account_keys[account], code_of[insight_type], key_of[i], n)
        for (account, insight_type), cells in counts.interests.items()
        for i, n in cells.items()
    )
    table = pa.table(
        {
            "account_key": pa.array([r[0] for r in rows], pa.int32()),
            "audience": pa.array([r[1] for r in rows], pa.int8()),
            "interest_key": pa.array([r[2] for r in rows], pa.int32()),
            "users": pa.array([r[3] for r in rows], pa.decimal128(38, 0)),
        }
    )
    accounts = {k: account for account, k in account_keys.items()}
    return InterestCells.from_arrow(
        table,
        {key: interest_id for interest_id, key in key_of.items()},
        lambda account_key, code: (accounts[account_key], AUDIENCE_CODES[code]),
    )


@given(audiences(), st.integers(0, 10), st.booleans(), st.booleans())
@example(
    drawn=(
        Catalogue({"1": "A", "2": "B"}, {"1"}, {"2": "1"}),
        Counts(
            sizes={P_KEY: 20_000, ("a", YOUR_TOTAL_AUDIENCE): 20_000},
            interests={P_KEY: {"1": 7, "2": 5}, ("a", YOUR_TOTAL_AUDIENCE): {"1": 3, "2": 1}},
            demographics={},
        ),
        1,
    ),
    max_subcategories=1,
    from_arrow=False,
    prepared=True,
)
def test_categories_are_the_plain_writers_bytes(
    drawn: tuple[Catalogue, Counts, int], max_subcategories: int, from_arrow: bool, prepared: bool
) -> None:
    catalogue, counts, _ = drawn
    accounts = sorted({account for account, _ in counts.sizes if account})
    rules = PrivacyRules(min_audience_size=1, max_subcategories=max_subcategories)
    written = Counts(
        counts.sizes,
        {} if from_arrow else counts.interests,
        {},
        _columns(counts) if from_arrow else None,
    )
    assembler = DocumentAssembler(written, catalogue, rules, DATE)
    if prepared:  # as the build does, before the demographics; else document by document
        assembler.prepare_categories(
            [
                P_KEY,
                *((a, t) for a in accounts for t in (YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE)),
            ]
        )
    for document in assembler.documents(accounts):
        key = (document.ad_account_id, document.insight_type)
        size = counts.sizes.get(key, 0)
        assert document.reportable == (size >= 1)
        if not document.reportable:
            continue
        shown, items = _plain(
            counts.interests.get(key, {}),
            size,
            counts.interests[P_KEY],
            counts.sizes[P_KEY],
            catalogue,
            max_subcategories,
        )
        expected = {
            "type": document.insight_type,
            "date": DATE,
            "size": size,
            "size_is_upper_bound": False,
            "categories": shown,
            "demographics": {d: [] for d in ("ages", "genders", "countries", "metros", "devices")},
        }
        assert (
            document.body
            == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
        )
        assert document.category_items == items
        assert list(document.category_items) == list(items)  # in the categories' order


@given(st.integers(0, 10**20), st.integers(1, 10**20))
def test_rounded_quotients_are_the_exact_rounding_in_int64_and_beyond(
    numerator: int, denominator: int
) -> None:
    expected = round(Fraction(numerator, denominator) * categories.SCALE)  # half to even
    assert categories.rounded_quotient(numerator, denominator) == expected
    if numerator < 2**62 and denominator < 2**62:
        array = categories.rounded_quotients(
            np.array([numerator], dtype=np.int64), np.array([denominator], dtype=np.int64)
        )
        assert int(array[0]) == expected
