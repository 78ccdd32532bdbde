"""One DP release: noise on every cell of every audience part, then post-processing only.

Input: the *bounded* exact counts (:mod:`.bounding`) of the parts of a release, one row per part:

- ``P``: everyone on the platform (under the shared account);
- ``E``: an account's engaged audience E(a);
- ``R``: the rest of its total audience, R(a) = T(a) ∖ E(a).

A person is in E(a) or in R(a), never both, so noising the two parts independently costs the
account one part's ρ; T(a) is released as E + R.

Every cell of the public domain gets noise — every category and subcategory of the taxonomy,
every demographic value the contract allows (countries: every ISO code; metros: those of the
metros table), whether or not anyone in the audience has it: noising only the cells present would
tell who is absent. Post-processing, free in privacy because it only reads noisy values:

1. each part: counts ≥ 0; category ≤ size; subcategory ≤ its category; demographic ≤ size;
2. T = E + R cell by cell (so E ≤ T, and the orders above hold for T too);
3. an audience is described when its noisy size reaches ``min_audience_size``, else it gets the
   placeholder, as in exact mode;
4. a cell is shown when its noisy count reaches max(``min_cell_size``, 3σ of its noise), and an
   interest of an account's audience only when P shows it too (its index divides by P's);
5. ratios and indexes follow from these counts exactly as in exact mode (engine/documents.py).

A part whose audience would be the placeholder anyway needs no noise beyond its size: its cells
are released nowhere, so they are not drawn (the output is the same as if they were).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import isqrt

import numpy as np
import numpy.typing as npt
import pycountry

from pinsights.data.tables import AGE_BUCKETS, DEVICES, GENDERS
from pinsights.engine.documents import SHARED_ACCOUNT, Counts
from pinsights.engine.dp.parameters import DpParameters
from pinsights.engine.dp.sampler import discrete_gaussian_scales
from pinsights.engine.dp.seeding import streams
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.semantics import (
    DEMOGRAPHICS,
    PINTEREST_TOTAL_AUDIENCE,
    YOUR_ENGAGED_AUDIENCE,
    YOUR_TOTAL_AUDIENCE,
)

I64 = npt.NDArray[np.int64]
PARTS = ("P", "E", "R")
SIZE_CELL = "size"


def demographic_domain(metros: list[str]) -> dict[str, list[str]]:
    """Every value each dimension may take (SPEC §2), whatever the data holds."""
    countries = sorted(country.alpha_2.lower() for country in pycountry.countries)
    return {
        "ages": [*AGE_BUCKETS, "unknown"],
        "genders": list(GENDERS),
        "countries": [*countries, "unknown"],
        "metros": [*sorted(metros), "unknown"],
        "devices": [*DEVICES, "unknown"],
    }


@dataclass(frozen=True)
class Domain:
    """The cells of every audience: interests of the taxonomy (levels 1 and 2), demographics."""

    categories: list[str]
    parent_of_subcategory: dict[str, str]
    demographics: dict[str, list[str]]
    names: list[str] = field(init=False)
    kinds: list[str] = field(init=False)  # category, subcategory, demographic
    column: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        names = [f"interest:{c}" for c in self.categories]
        kinds = ["category"] * len(self.categories)
        subcategories = sorted(self.parent_of_subcategory)
        names += [f"interest:{s}" for s in subcategories]
        kinds += ["subcategory"] * len(subcategories)
        for dimension, keys in self.demographics.items():
            names += [f"{dimension}:{key}" for key in keys]
            kinds += ["demographic"] * len(keys)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "column", {name: i for i, name in enumerate(names)})


@dataclass
class PartCounts:
    """Bounded exact counts of a release's parts: ``rows`` (account, part), ``sizes`` per row and
    ``cells`` (rows × the domain's columns)."""

    rows: list[tuple[str, str]]
    sizes: I64
    cells: I64

    @classmethod
    def zeros(cls, accounts: list[str], domain: Domain) -> PartCounts:
        """Every part of a release (P, then E and R of each account), all counts zero: a part
        nobody is in still gets its noise."""
        rows = [(SHARED_ACCOUNT, "P")] + [(a, part) for a in accounts for part in ("E", "R")]
        return cls(
            rows=rows,
            sizes=np.zeros(len(rows), dtype=np.int64),
            cells=np.zeros((len(rows), len(domain.names)), dtype=np.int64),
        )


def _threshold(rules: PrivacyRules, k: int, sigma: int, parts: int) -> int:
    """max(min_cell_size, ⌈k·σ·√parts⌉), in integers: the noise of ``parts`` summed parts."""
    return max(rules.min_cell_size, isqrt(k * k * sigma * sigma * parts - 1) + 1)


def _noise(key: bytes, rows: list[tuple[str, str]], names: list[str], sigma: I64) -> I64:
    """Noise for every (row, name), σ per row and column as given (rows × names)."""
    n_rows, n_names = sigma.shape
    where_rows, where_names = np.divmod(np.arange(n_rows * n_names), n_names)
    cells = streams(key, rows, names, where_rows, where_names)
    return discrete_gaussian_scales(cells, sigma.reshape(-1)).reshape(n_rows, n_names)


def noisy_counts(
    parts: PartCounts,
    domain: Domain,
    params: DpParameters,
    rules: PrivacyRules,
    key: bytes,
    accounts: list[str],
) -> Counts:
    """The released counts of P, T(a) and E(a) for every account, ready for the documents."""
    scales = params.scales
    row_of = {row: i for i, row in enumerate(parts.rows)}
    expected = {(SHARED_ACCOUNT, "P")} | {(a, part) for a in accounts for part in ("E", "R")}
    if set(row_of) != expected or len(row_of) != len(parts.rows):
        # A missing part would be released without noise: never.
        raise ValueError("the parts of a release must be P and E, R of every account, once each")
    n_rows = len(parts.rows)
    is_platform = np.array([part == "P" for _, part in parts.rows], dtype=bool)

    # 1. sizes of every part.
    size_sigma = np.where(is_platform, scales.platform, scales.size).reshape(-1, 1)
    noisy_size = parts.sizes + _noise(key, parts.rows, [SIZE_CELL], size_sigma)[:, 0]
    noisy_size = np.maximum(noisy_size, 0)

    def size_of(account: str, part: str) -> int:
        i = row_of.get((account, part))
        return 0 if i is None else int(noisy_size[i])

    # 2. which parts are described anywhere: P if reportable, E and R when T(a) is.
    needed = np.zeros(n_rows, dtype=bool)
    if (
        rules.audience_is_reportable(size_of(SHARED_ACCOUNT, "P"))
        and (SHARED_ACCOUNT, "P") in row_of
    ):
        needed[row_of[(SHARED_ACCOUNT, "P")]] = True
    for account in accounts:
        if rules.audience_is_reportable(size_of(account, "E") + size_of(account, "R")):
            for part in ("E", "R"):
                if (account, part) in row_of:
                    needed[row_of[(account, part)]] = True

    # 3. every cell of the needed parts.
    kind_sigma = {
        "category": scales.category,
        "subcategory": scales.subcategory,
        "demographic": scales.demographic,
    }
    column_sigma = np.array([kind_sigma[k] for k in domain.kinds], dtype=np.int64)
    rows_needed = np.flatnonzero(needed)
    sub_rows = [parts.rows[i] for i in rows_needed]
    sigma = np.where(
        is_platform[rows_needed].reshape(-1, 1), scales.platform, column_sigma.reshape(1, -1)
    )
    cells = parts.cells[rows_needed] + _noise(key, sub_rows, domain.names, sigma)
    cells = np.maximum(cells, 0)
    sizes = noisy_size[rows_needed].reshape(-1, 1)
    kinds = np.array(domain.kinds)
    not_sub = kinds != "subcategory"
    cells[:, not_sub] = np.minimum(cells[:, not_sub], sizes)
    sub_columns = np.flatnonzero(~not_sub)
    parent_columns = np.array(
        [
            domain.column[f"interest:{domain.parent_of_subcategory[domain.names[c][9:]]}"]
            for c in sub_columns
        ],
        dtype=np.intp,
    )
    if len(sub_columns):
        cells[:, sub_columns] = np.minimum(cells[:, sub_columns], cells[:, parent_columns])
    local = {row: i for i, row in enumerate(sub_rows)}

    # 4. the released audiences, thresholded.
    counts = Counts(sizes={}, interests={}, demographics={})
    interest_columns = [c for c, k in enumerate(domain.kinds) if k != "demographic"]
    demographic_columns = [c for c, k in enumerate(domain.kinds) if k == "demographic"]

    # k per column: how many cells share its domain (kind, or demographic dimension).
    groups = [
        name.split(":", 1)[0] if kind == "demographic" else kind
        for name, kind in zip(domain.names, domain.kinds, strict=True)
    ]
    group_size = {group: groups.count(group) for group in set(groups)}
    column_k = [
        params.threshold_sigmas
        if group_size[group] > params.small_domain
        else params.threshold_sigmas_small
        for group in groups
    ]

    def thresholds(parts_summed: int, platform: bool) -> I64:
        return np.array(
            [
                _threshold(
                    rules,
                    k,
                    scales.platform if platform else kind_sigma[kind],
                    1 if platform else parts_summed,
                )
                for k, kind in zip(column_k, domain.kinds, strict=True)
            ],
            dtype=np.int64,
        )

    shown_in_p: set[str] = set()

    def release(key_: tuple[str, str], size: int, values: I64 | None, limit: I64) -> None:
        counts.sizes[key_] = size
        if values is None or not rules.audience_is_reportable(size):
            return
        shown = values >= limit
        interests: dict[str, int] = {}
        for c in interest_columns:
            if shown[c]:
                interest = domain.names[c][9:]
                if key_[1] == PINTEREST_TOTAL_AUDIENCE or interest in shown_in_p:
                    interests[interest] = int(values[c])
        counts.interests[key_] = interests
        per_dimension: dict[str, list[tuple[str, int]]] = {}
        for c in demographic_columns:
            if shown[c]:
                dimension, value = domain.names[c].split(":", 1)
                per_dimension.setdefault(dimension, []).append((value, int(values[c])))
        counts.demographics[key_] = per_dimension

    p_row = local.get((SHARED_ACCOUNT, "P"))
    p_values = None if p_row is None else cells[p_row]
    release(
        (SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE),
        size_of(SHARED_ACCOUNT, "P"),
        p_values,
        thresholds(1, True),
    )
    shown_in_p.update(counts.interests.get((SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE), {}))
    one, two = thresholds(1, False), thresholds(2, False)
    zero = np.zeros(len(domain.names), dtype=np.int64)
    for account in accounts:
        e_row, r_row = local.get((account, "E")), local.get((account, "R"))
        engaged = None if e_row is None else cells[e_row]
        rest = None if r_row is None else cells[r_row]
        total = None
        if engaged is not None or rest is not None:
            total = (zero if engaged is None else engaged) + (zero if rest is None else rest)
        release(
            (account, YOUR_TOTAL_AUDIENCE),
            size_of(account, "E") + size_of(account, "R"),
            total,
            two,
        )
        release((account, YOUR_ENGAGED_AUDIENCE), size_of(account, "E"), engaged, one)
    return counts


__all__ = ["DEMOGRAPHICS", "PARTS", "Domain", "PartCounts", "demographic_domain", "noisy_counts"]
