"""The DP mode's constants: contribution caps, noise scales, and what they cost per release.

Why these numbers (docs/privacy.md has the arithmetic): one person, removed from the data, changes
one release of an ad account in at most ``1 + categories + subcategories + demographics`` cells
(28) of one audience part (engaged, or total-but-not-engaged), each by one, and as many cells of
the platform audience P. A cell with sensitivity 1 and discrete Gaussian noise of scale σ costs
ρ = 1/(2σ²) in zero-concentrated DP; the cells add up. The scales below keep five releases (a
weekly cadence: any 30 days hold at most five) within ε = 9 at δ = 10⁻¹⁰ per ad account.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Caps:
    """At most this many cells per person per audience: chosen by a stable hash, see bounding."""

    categories: int = 6
    subcategories: int = 16  # only under the person's kept categories
    demographics: int = 5  # one value per dimension, by construction

    @property
    def cells(self) -> int:
        """Cells one person can touch in one audience part, the size included."""
        return 1 + self.categories + self.subcategories + self.demographics


@dataclass(frozen=True)
class Scales:
    """σ of the discrete Gaussian noise of each kind of cell of an ad account's audience parts,
    and of every cell of P (counted over everyone, so it takes far more noise for the same
    relative error, and it is released to every advertiser)."""

    size: int = 5
    category: int = 6
    subcategory: int = 15
    demographic: int = 13
    platform: int = 50


@dataclass(frozen=True)
class DpParameters:
    caps: Caps = Caps()
    scales: Scales = Scales()
    #: The budget per ad account over any 30 days, as (ε, δ).
    epsilon: float = 9.0
    delta: float = 1e-10
    #: A cell is shown when its noisy count reaches max(min_cell_size, k σ of its noise), k
    #: ``threshold_sigmas`` in a large domain (more than ``small_domain`` values: countries,
    #: metros, subcategories), where cells nobody has are the many: with σ 13 and only the cell
    #: threshold 10, a fifth of the 249 countries would be listed for every audience; and
    #: ``threshold_sigmas_small`` in a small one (categories, ages, genders, devices).
    threshold_sigmas: int = 3
    threshold_sigmas_small: int = 2
    small_domain: int = 30

    def rho_account(self) -> Fraction:
        """ρ of one release for one audience part of an account (the person is in one part)."""
        c, s = self.caps, self.scales
        return (
            Fraction(1, 2 * s.size**2)
            + Fraction(c.categories, 2 * s.category**2)
            + Fraction(c.subcategories, 2 * s.subcategory**2)
            + Fraction(c.demographics, 2 * s.demographic**2)
        )

    def rho_platform(self) -> Fraction:
        """ρ of one release of P: every cell with the platform's σ."""
        return Fraction(self.caps.cells, 2 * self.scales.platform**2)

    def rho_release(self) -> Fraction:
        """What one release costs one ad account: its own audiences and P, which it also sees."""
        return self.rho_account() + self.rho_platform()


DEFAULT = DpParameters()
