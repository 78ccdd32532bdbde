"""The DP mode's noise: Philox against its reference vectors, the discrete Gaussian sampler's
golden vectors (a change of the noise of a released cell is a change of every DP document), and
its distribution against the exact mass function and against OpenDP's sampler (χ² tests)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from pinsights.engine.dp import inversion
from pinsights.engine.dp.philox import philox4x32
from pinsights.engine.dp.sampler import discrete_gaussian
from pinsights.engine.dp.seeding import release_key, streams


def _philox(counter: tuple[int, int, int, int], key: tuple[int, int]) -> list[int]:
    out = philox4x32(
        tuple(np.array([w], dtype=np.uint32) for w in counter),  # type: ignore[arg-type]
        tuple(np.array([w], dtype=np.uint32) for w in key),  # type: ignore[arg-type]
    )
    return [int(word[0]) for word in out]


def test_philox_matches_the_random123_known_answers() -> None:
    assert _philox((0, 0, 0, 0), (0, 0)) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert _philox((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2) == [
        0x408F276D,
        0x41C83B0E,
        0xA20BC7C6,
        0x6D5451FD,
    ]
    assert _philox((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) == [
        0xD16CFE09,
        0x94FDCCEB,
        0x5001E420,
        0x24126EA1,
    ]


GOLDEN_AUDIENCES = [("1001", "E"), ("1001", "R"), ("", "P")]
GOLDEN_CELLS = ["size", "interest:935249274030", "ages:18-24", "countries:us"]


def _golden(sigma_squared: Fraction, secret: bytes = b"golden-secret-for-tests") -> list[int]:
    key = release_key(secret, "2026-11-30", 1)
    audience_index = np.repeat(np.arange(3), 4)
    name_index = np.tile(np.arange(4), 3)
    cells = streams(key, GOLDEN_AUDIENCES, GOLDEN_CELLS, audience_index, name_index)
    return discrete_gaussian(cells, sigma_squared).tolist()


def test_release_key_is_hmac_of_the_secret_date_and_release() -> None:
    key = release_key(b"golden-secret-for-tests", "2026-11-30", 1)
    assert key.hex() == "3941bc98dd7c6e9093c191c6a9dbda8f66e823a0998ada87089b69c02941b91a"
    assert release_key(b"golden-secret-for-tests", "2026-12-01", 1) != key
    assert release_key(b"golden-secret-for-tests", "2026-11-30", 2) != key
    assert release_key(b"another-secret-entirely", "2026-11-30", 1) != key


def test_sampler_golden_vectors() -> None:
    assert _golden(Fraction(1)) == [0, 1, 1, 0, 0, 1, 1, 1, 0, 2, 0, -1]
    assert _golden(Fraction(36)) == [-6, -6, 6, -5, 6, 2, 2, 4, -9, 12, 10, -1]
    assert _golden(Fraction(2500)) == [-25, -35, 49, -17, 61, 24, 89, -20, -22, 2, -34, -1]
    assert _golden(Fraction(7, 3)) == [3, -2, 1, -3, 0, 1, 2, 1, 0, -2, 0, -1]


def test_a_cell_gets_the_same_noise_alone_in_any_company_and_order() -> None:
    key = release_key(b"golden-secret-for-tests", "2026-11-30", 1)
    together = _golden(Fraction(36))
    # The cell ("1001", "R") / "ages:18-24" alone, then among cells in reverse order.
    alone = discrete_gaussian(
        streams(key, [("1001", "R")], ["ages:18-24"], np.array([0]), np.array([0])),
        Fraction(36),
    )
    assert alone.tolist() == [together[4 + 2]]
    audience_index = np.repeat(np.arange(3), 4)[::-1].copy()
    name_index = np.tile(np.arange(4), 3)[::-1].copy()
    reverse = discrete_gaussian(
        streams(key, GOLDEN_AUDIENCES, GOLDEN_CELLS, audience_index, name_index), Fraction(36)
    )
    assert reverse.tolist() == together[::-1]
    assert _golden(Fraction(36), b"another-secret-entirely") != together


def _many(sigma: int, n: int, secret: bytes = b"chi-square") -> np.ndarray:
    key = release_key(secret, "2026-11-30", 1)
    names = [f"cell:{i}" for i in range(n)]
    cells = streams(key, [("1", "E")], names, np.zeros(n, dtype=np.intp), np.arange(n))
    return discrete_gaussian(cells, Fraction(sigma * sigma))


def _pmf(sigma: int, support: range) -> dict[int, float]:
    weights = {x: math.exp(-(x * x) / (2 * sigma * sigma)) for x in range(-40 * sigma, 40 * sigma)}
    total = sum(weights.values())
    return {x: weights[x] / total for x in support}


def _bins(sigma: int) -> list[tuple[int, int]]:
    """Intervals [lo, hi] covering the integers, each with enough mass for a χ² cell."""
    edge = 3 * sigma
    step = max(1, sigma // 3)
    inner = [(lo, min(lo + step - 1, edge - 1)) for lo in range(-edge, edge, step)]
    return [(-(10**9), -edge - 1), *inner, (edge, 10**9)]


def _histogram(samples: np.ndarray, bins: list[tuple[int, int]]) -> np.ndarray:
    return np.array([np.count_nonzero((samples >= lo) & (samples <= hi)) for lo, hi in bins])


def _chi_square_critical(df: int, z: float = 4.26) -> float:
    """Upper 10⁻⁵ quantile of χ²(df), Wilson-Hilferty (z of 10⁻⁵ ≈ 4.26)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _against_mass_function(samples: np.ndarray, sigma: int, bins: list[tuple[int, int]]) -> float:
    """χ² statistic of ``samples`` against N_Z(0, σ²)'s exact mass function, over ``bins``."""
    pmf = _pmf(sigma, range(-40 * sigma, 40 * sigma))
    expected = np.array(
        [len(samples) * sum(p for x, p in pmf.items() if lo <= x <= hi) for lo, hi in bins],
        dtype=float,
    )
    return float(((_histogram(samples, bins) - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("sigma", [1, 6, 15])
def test_sampler_matches_the_discrete_gaussian_mass_function(sigma: int) -> None:
    n = 20_000
    bins = _bins(sigma)
    statistic = _against_mass_function(_many(sigma, n), sigma, bins)
    assert statistic < _chi_square_critical(len(bins) - 1), statistic
    # A wrong scale fails the same test (it can fail): σ+1 against σ's mass function.
    wrong = _against_mass_function(_many(sigma + 1, n), sigma, bins)
    assert wrong > _chi_square_critical(len(bins) - 1)


def _opendp_samples(sigma: int, n: int) -> np.ndarray:
    """OpenDP's discrete Gaussian (make_gaussian on integers): the reference distribution."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return np.array(
        dp.m.make_gaussian(
            dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=float(sigma)
        )([0] * n)
    )


def test_sampler_matches_opendps_sampler() -> None:
    """Two-sample χ² against OpenDP's discrete Gaussian."""
    sigma, n = 6, 20_000
    reference = _opendp_samples(sigma, n)
    ours = _many(sigma, n, b"two-sample")
    bins = _bins(sigma)
    a, b = _histogram(ours, bins), _histogram(reference, bins)
    statistic = float((((a - b) ** 2) / (a + b)).sum())
    assert statistic < _chi_square_critical(len(bins) - 1), statistic
    assert abs(float(ours.var()) - sigma**2) < 0.05 * sigma**2


# --- the build's sampler: exact inversion (engine/dp/inversion.py) ---------------------------


def _inverted(sigma: int, n: int, secret: bytes = b"chi-square") -> np.ndarray:
    key = release_key(secret, "2026-11-30", 1)
    names = [f"cell:{i}" for i in range(n)]
    cells = streams(key, [("1", "E")], names, np.zeros(n, dtype=np.intp), np.arange(n))
    return inversion.discrete_gaussian(cells, np.full(n, sigma))


def test_inversion_golden_vectors() -> None:
    key = release_key(b"golden-secret-for-tests", "2026-11-30", 1)
    cells = streams(
        key, GOLDEN_AUDIENCES, GOLDEN_CELLS, np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)
    )
    draw = inversion.discrete_gaussian
    assert draw(cells, np.full(12, 1)).tolist() == [0, 0, 0, 1, -1, 0, 0, -2, 2, -2, -1, -2]
    assert draw(cells, np.full(12, 6)).tolist() == [3, -3, 0, 8, -4, -1, 0, -13, 12, -11, -8, -13]
    assert draw(cells, np.full(12, 50)).tolist() == [
        26, -24, -1, 63, -30, -7, -4, -112, 98, -93, -67, -106,
    ]  # fmt: skip
    # σ per cell: each cell as if drawn alone with its own σ.
    mixed = draw(cells, np.array([1, 6, 50] * 4))
    assert mixed.tolist()[:3] == [0, -3, -1]


def test_inversion_table_brackets_the_cdf() -> None:
    """T(x) = ⌊F(x)·2⁶⁴⌋, checked at a few x against F computed independently with floats."""
    thresholds, k = inversion.table(6)
    assert len(thresholds) == 2 * k + 1 and k == 60
    assert thresholds[0] == 0 and thresholds[-1] == 2**64 - 1
    weights = {x: math.exp(-(x * x) / 72) for x in range(-400, 401)}
    total = sum(weights.values())
    for x in (-12, -3, 0, 5, 17):
        cdf = sum(w for y, w in weights.items() if y <= x) / total
        assert abs(int(thresholds[x + k]) / 2**64 - cdf) < 1e-12


def test_inversion_slow_path_agrees_with_the_table() -> None:
    """The path for undecided cells (more bits, more digits) gives what the table gives."""
    key = release_key(b"slow-path", "2026-11-30", 1)
    n = 6
    cells = streams(
        key, [("1", "E")], [f"c{i}" for i in range(n)], np.zeros(n, np.intp), np.arange(n)
    )
    fast = inversion.discrete_gaussian(cells, np.full(n, 6)).tolist()
    assert [inversion._decide(cells, i, 6) for i in range(n)] == fast


@pytest.mark.parametrize("sigma", [1, 6, 15])
def test_inversion_matches_the_mass_function(sigma: int) -> None:
    n = 20_000
    bins = _bins(sigma)
    statistic = _against_mass_function(_inverted(sigma, n), sigma, bins)
    assert statistic < _chi_square_critical(len(bins) - 1), statistic


def test_inversion_matches_opendp_and_the_cks_sampler() -> None:
    sigma, n = 6, 20_000
    reference = _opendp_samples(sigma, n)
    ours = _inverted(sigma, n, b"two-sample-inversion")
    cks = _many(sigma, n, b"two-sample-cks")
    bins = _bins(sigma)
    for other in (reference, cks):
        a, b = _histogram(ours, bins), _histogram(other, bins)
        statistic = float((((a - b) ** 2) / (a + b)).sum())
        assert statistic < _chi_square_critical(len(bins) - 1), statistic
