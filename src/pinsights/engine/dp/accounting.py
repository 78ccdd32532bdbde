"""From ρ (zero-concentrated DP) to the (ε, δ) a user is told, and the 30-day budget.

zCDP composes by addition: the releases an ad account was charged for within any 30 days add up
to one ρ. The conversion to (ε, δ) is OpenDP's (``make_zCDP_to_approxDP``: the optimal conversion
of Canonne, Kamath and Steinke, tighter than ε = ρ + 2√(ρ ln 1/δ)); ours is only the bookkeeping.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache

WINDOW_DAYS = 30


@lru_cache(maxsize=1024)
def _epsilon(rho: float, delta: float) -> float:
    import opendp.prelude as dp  # imported here: only the DP mode pays its import time

    dp.enable_features("contrib")
    # A Gaussian mechanism of scale 1 on reals is sqrt(2ρ)-sensitive for ρ = d²/2.
    gaussian = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=1.0
    )
    profile = dp.c.make_zCDP_to_approxDP(gaussian).map(math.sqrt(2 * rho))
    return float(profile.epsilon(delta))


def epsilon(rho: Fraction | float, delta: float) -> float:
    """ε at ``delta`` of a total ρ (0 for no release)."""
    if rho <= 0:
        return 0.0
    return _epsilon(float(rho), delta)


def window_containing(day: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Every 30-day window [start, start + 29] that contains ``day``."""
    return [
        (day - dt.timedelta(days=offset), day - dt.timedelta(days=offset) + dt.timedelta(29))
        for offset in range(WINDOW_DAYS)
    ]


def worst_window(charges: Iterable[tuple[dt.date, Fraction]], around: dt.date) -> Fraction:
    """The largest total ρ of the charges inside any 30-day window that contains ``around``."""
    listed = list(charges)
    return max(
        (
            sum((rho for day, rho in listed if start <= day <= end), Fraction(0))
            for start, end in window_containing(around)
        ),
        default=Fraction(0),
    )


def fits(
    charges: Iterable[tuple[dt.date, Fraction]],
    day: dt.date,
    rho: Fraction,
    epsilon_budget: float,
    delta: float,
) -> bool:
    """Whether one more charge of ``rho`` on ``day`` keeps every 30-day window within budget."""
    total = worst_window([*charges, (day, rho)], day)
    return epsilon(total, delta) <= epsilon_budget


def budget_returns(
    charges: Iterable[tuple[dt.date, Fraction]],
    day: dt.date,
    rho: Fraction,
    epsilon_budget: float,
    delta: float,
) -> dt.date | None:
    """The first date from ``day`` on where a charge of ``rho`` fits; None if it never does
    (one release alone is over the budget)."""
    listed = list(charges)
    if epsilon(rho, delta) > epsilon_budget:
        return None
    last = max((charged for charged, _ in listed), default=day)
    candidate = day
    while candidate <= last + dt.timedelta(days=WINDOW_DAYS):
        if fits(listed, candidate, rho, epsilon_budget, delta):
            return candidate
        candidate += dt.timedelta(days=1)
    return candidate
