"""The synthetic advertisers and pins: ad accounts with focus categories and Zipf sizes, and the
pins they and everyone else post, with what makes a pin popular."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pinsights.synthetic.parameters import (
    ACCOUNT_NAME_NOUNS,
    ACCOUNT_NAME_PREFIXES,
    AD_ACCOUNT_ID_BASE,
    ADVERTISER_ON_FOCUS,
    ADVERTISER_PIN_SHARE,
    ADVERTISER_POPULARITY,
    ADVERTISER_SIZE_EXPONENT,
    CATEGORY_POPULARITY,
    NULL_INTEREST_RATE,
    PIN_ID_BASE,
    PIN_POPULARITY_TAIL,
    PROMOTED_BOOST,
    RELATED_CATEGORIES,
    SECOND_FOCUS_RATE,
    VIDEO_PIN_RATE,
)
from pinsights.synthetic.sampling import FloatArray, apportion, shares, strings
from pinsights.synthetic.taxonomy import CATEGORY_KEYS, InterestArrays


@dataclass(frozen=True)
class Advertisers:
    """Ad accounts: ids, readable names, one or two focus categories, a Zipf-distributed size."""

    ids: list[str]
    names: list[str]
    primary: npt.NDArray[np.int64]
    secondary: npt.NDArray[np.int64]
    """-1 for an advertiser with a single focus category."""
    size: FloatArray

    @classmethod
    def build(cls, rng: np.random.Generator, n: int) -> Advertisers:
        numbers = AD_ACCOUNT_ID_BASE + np.cumsum(rng.integers(1_000, 100_000, n, dtype=np.int64))
        popularity = shares([ADVERTISER_POPULARITY[key] for key in CATEGORY_KEYS])
        primary = rng.choice(len(CATEGORY_KEYS), n, p=popularity)
        secondary = np.full(n, -1, dtype=np.int64)
        for a in np.flatnonzero(rng.random(n) < SECOND_FOCUS_RATE):
            related = RELATED_CATEGORIES[CATEGORY_KEYS[primary[a]]]
            secondary[a] = CATEGORY_KEYS.index(related[rng.integers(len(related))])
        size = ((rng.permutation(n) + 1.0) ** -ADVERTISER_SIZE_EXPONENT).astype(np.float64)
        return cls(
            ids=[str(number) for number in numbers],
            names=_account_names(rng, primary),
            primary=primary,
            secondary=secondary,
            size=size,
        )

    def table(self) -> pa.Table:
        return pa.table(
            {
                "ad_account_id": pa.array(self.ids, pa.string()),
                "name": pa.array(self.names, pa.string()),
            }
        )


def _account_names(rng: np.random.Generator, primary: npt.NDArray[np.int64]) -> list[str]:
    """Unique, readable business names that fit each advertiser's main category."""
    taken: set[str] = set()
    names: list[str] = []
    for category in primary:
        nouns = ACCOUNT_NAME_NOUNS[CATEGORY_KEYS[category]]
        for _attempt in range(50):
            prefix = ACCOUNT_NAME_PREFIXES[rng.integers(len(ACCOUNT_NAME_PREFIXES))]
            name = f"{prefix} {nouns[rng.integers(len(nouns))]}"
            if name not in taken:
                break
        suffix = 2
        base = name
        while name in taken:
            name = f"{base} {suffix}"
            suffix += 1
        taken.add(name)
        names.append(name)
    return names


@dataclass(frozen=True)
class Catalogue:
    """The pins, and per category the cumulative popularity used to pick what a user sees."""

    ids: npt.NDArray[np.int64]
    account: npt.NDArray[np.int64]
    """Index of the owning advertiser, -1 for organic content."""
    interest: npt.NDArray[np.int64]
    """Index into the taxonomy, -1 for an untagged pin."""
    is_video: npt.NDArray[np.bool_]
    group_pins: list[npt.NDArray[np.int64]]
    """Per category (and last: untagged pins) the indices of its pins …"""
    group_cumulative: list[FloatArray]
    """… and their cumulative popularity."""
    exploration_cumulative: FloatArray
    """Cumulative popularity per group: what the feed shows when it is not following interests."""

    @classmethod
    def build(
        cls, rng: np.random.Generator, n: int, advertisers: Advertisers, taxonomy: InterestArrays
    ) -> Catalogue:
        n_accounts = len(advertisers.ids)
        per_account = 1 + apportion(
            advertisers.size, max(0, round(n * ADVERTISER_PIN_SHARE) - n_accounts)
        )
        category_popularity = shares([CATEGORY_POPULARITY[key] for key in CATEGORY_KEYS])
        organic = (category_popularity[taxonomy.category]) * taxonomy.share_in_category
        organic /= organic.sum()

        n_owned = int(per_account.sum())
        account = np.concatenate(
            [np.repeat(np.arange(n_accounts), per_account), np.full(n - n_owned, -1)]
        )
        interest = np.empty(n, dtype=np.int64)
        start = 0
        for a in range(n_accounts):
            count = int(per_account[a])
            focus = _focus_distribution(rng, taxonomy, advertisers, a)
            mix = ADVERTISER_ON_FOCUS * focus + (1 - ADVERTISER_ON_FOCUS) * organic
            interest[start : start + count] = rng.choice(len(mix), count, p=mix / mix.sum())
            start += count
        interest[n_owned:] = rng.choice(len(organic), n - n_owned, p=organic)
        interest[rng.random(n) < NULL_INTEREST_RATE] = -1

        order = rng.permutation(n)  # interleave advertisers' and organic pins in id order
        account, interest = account[order], interest[order]
        ids = PIN_ID_BASE + np.cumsum(rng.integers(1, 1_000_000_000, n, dtype=np.int64))
        is_video = rng.random(n) < VIDEO_PIN_RATE
        popularity = rng.pareto(PIN_POPULARITY_TAIL, n) + 1.0
        popularity[account >= 0] *= PROMOTED_BOOST

        n_groups = len(CATEGORY_KEYS) + 1
        group = np.where(interest >= 0, taxonomy.category[np.maximum(interest, 0)], n_groups - 1)
        group_pins = [np.flatnonzero(group == g) for g in range(n_groups)]
        group_cumulative = [np.cumsum(popularity[pins]) for pins in group_pins]
        mass = np.array([c[-1] if len(c) else 0.0 for c in group_cumulative])
        return cls(
            ids=ids,
            account=account,
            interest=interest,
            is_video=is_video,
            group_pins=group_pins,
            group_cumulative=group_cumulative,
            exploration_cumulative=np.cumsum(mass),
        )

    def table(self, advertisers: Advertisers, taxonomy: InterestArrays) -> pa.Table:
        return pa.table(
            {
                "pin_id": pa.array(self.ids, pa.int64()),
                "ad_account_id": strings(advertisers.ids, self.account),
                "interest_id": strings(taxonomy.ids, self.interest),
            }
        )


def _focus_distribution(
    rng: np.random.Generator, taxonomy: InterestArrays, advertisers: Advertisers, account: int
) -> FloatArray:
    """What an advertiser's on-focus pins are about: its main category, concentrated on one to
    three specialty subcategories (a food brand that is mostly about baking), plus its second
    focus category if it has one."""
    primary = taxonomy.category_distribution(int(advertisers.primary[account]))
    level2 = np.flatnonzero(
        (taxonomy.category == advertisers.primary[account]) & (taxonomy.level == 2)
    )
    specialties = min(len(level2), int(rng.integers(1, 4)))
    chosen = rng.choice(level2, size=specialties, replace=False)
    in_specialty = np.isin(np.arange(len(primary)), chosen) | np.isin(taxonomy.parent, chosen)
    specialty = np.where(in_specialty, taxonomy.share_in_category, 0.0)
    main = 0.5 * primary + 0.5 * specialty / specialty.sum()
    if advertisers.secondary[account] < 0:
        return main
    second = taxonomy.category_distribution(int(advertisers.secondary[account]))
    return 0.7 * main + 0.3 * second
