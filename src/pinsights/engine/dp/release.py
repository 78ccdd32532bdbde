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
4. a cell is shown when its noisy count reaches max(``min_cell_size``, kσ of its noise), and a
   cell of an account's audience only when P shows it too (an index divides by P's count);
5. ratios and indexes follow from these counts exactly as in exact mode (engine/documents.py).

A part whose audience would be the placeholder anyway needs no noise beyond its size: its cells
are released nowhere, so they are not drawn (the output is the same as if they were). Likewise
the cells of accounts' parts are drawn only where P's release shows the cell: which cells those
are is a function of P's noisy release (adaptive composition, no extra cost), and it spares the
noise of every country and subcategory no one on the platform has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import isqrt

import numpy as np
import numpy.typing as npt
import pycountry

from pinsights.data.tables import AGE_BUCKETS, DEVICES, GENDERS
from pinsights.engine.documents import SHARED_ACCOUNT, Counts
from pinsights.engine.dp.inversion import discrete_gaussian
from pinsights.engine.dp.parameters import DpParameters
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
    return discrete_gaussian(cells, sigma.reshape(-1)).reshape(n_rows, n_names)


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

    # 3. the cells of the needed parts: P's over the whole domain first; the accounts' only
    # over the cells P shows (a function of P's noisy release, so free: see the module doc).
    kind_sigma = {
        "category": scales.category,
        "subcategory": scales.subcategory,
        "demographic": scales.demographic,
    }
    column_sigma = np.array([kind_sigma[k] for k in domain.kinds], dtype=np.int64)
    kinds = np.array(domain.kinds)
    not_sub = kinds != "subcategory"
    sub_columns = np.flatnonzero(~not_sub)
    parent_columns = np.array(
        [
            domain.column[f"interest:{domain.parent_of_subcategory[domain.names[c][9:]]}"]
            for c in sub_columns
        ],
        dtype=np.intp,
    )

    def noised(rows: list[int], allowed: npt.NDArray[np.bool_], sigma_of: I64) -> I64:
        """Post-processed noisy cells of these rows; columns not ``allowed`` stay 0."""
        cells = np.zeros((len(rows), len(domain.names)), dtype=np.int64)
        columns = np.flatnonzero(allowed)
        if len(rows) and len(columns):
            names = [domain.names[c] for c in columns]
            sigma = np.broadcast_to(sigma_of[columns], (len(rows), len(columns)))
            noise = _noise(key, [parts.rows[i] for i in rows], names, np.ascontiguousarray(sigma))
            cells[:, columns] = np.maximum(
                parts.cells[np.ix_(np.array(rows, dtype=np.intp), columns)] + noise, 0
            )
        sizes = noisy_size[rows].reshape(-1, 1)
        cells[:, not_sub] = np.minimum(cells[:, not_sub], sizes)
        if len(sub_columns):
            cells[:, sub_columns] = np.minimum(cells[:, sub_columns], cells[:, parent_columns])
        return cells

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

    # 4. the released audiences, thresholded.
    counts = Counts(sizes={}, interests={}, demographics={})
    interest_columns = [c for c, k in enumerate(domain.kinds) if k != "demographic"]
    demographic_columns = [c for c, k in enumerate(domain.kinds) if k == "demographic"]

    def release(
        key_: tuple[str, str], size: int, values: I64 | None, shown: npt.NDArray[np.bool_]
    ) -> None:
        counts.sizes[key_] = size
        if values is None or not rules.audience_is_reportable(size):
            return
        counts.interests[key_] = {
            domain.names[c][9:]: int(values[c]) for c in interest_columns if shown[c]
        }
        per_dimension: dict[str, list[tuple[str, int]]] = {}
        for c in demographic_columns:
            if shown[c]:
                dimension, value = domain.names[c].split(":", 1)
                per_dimension.setdefault(dimension, []).append((value, int(values[c])))
        counts.demographics[key_] = per_dimension

    everything = np.ones(len(domain.names), dtype=bool)
    p_row = row_of[(SHARED_ACCOUNT, "P")]
    p_shown = np.zeros(len(domain.names), dtype=bool)
    p_values = None
    if needed[p_row]:
        p_values = noised([p_row], everything, np.full(len(domain.names), scales.platform))[0]
        p_shown = p_values >= thresholds(1, True)
    release(
        (SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE), size_of(SHARED_ACCOUNT, "P"), p_values, p_shown
    )

    account_rows = [i for i in np.flatnonzero(needed).tolist() if i != p_row]
    cells = noised(account_rows, p_shown, column_sigma)
    local = {parts.rows[i]: cells[n] for n, i in enumerate(account_rows)}
    one, two = thresholds(1, False), thresholds(2, False)
    for account in accounts:
        engaged, rest = local.get((account, "E")), local.get((account, "R"))
        total = None if engaged is None or rest is None else engaged + rest
        release(
            (account, YOUR_TOTAL_AUDIENCE),
            size_of(account, "E") + size_of(account, "R"),
            total,
            p_shown & (total >= two) if total is not None else p_shown,
        )
        release(
            (account, YOUR_ENGAGED_AUDIENCE),
            size_of(account, "E"),
            engaged,
            p_shown & (engaged >= one) if engaged is not None else p_shown,
        )
    return counts


__all__ = ["DEMOGRAPHICS", "PARTS", "Domain", "PartCounts", "demographic_domain", "noisy_counts"]
