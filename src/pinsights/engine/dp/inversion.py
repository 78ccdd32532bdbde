"""The discrete Gaussian by exact inversion: one 64-bit word per cell, integer comparisons.

The build draws hundreds of thousands of noise values per release. The Canonne-Kamath-Steinke
sampler (:mod:`.sampler`) is exact but consumes a dozen words per value through nested rejection
loops; vectorised with numpy it cost 5-10 µs of CPU per cell, which made the noise the most
expensive step of a build. Inversion needs one uniform per value:

    X = the smallest x with U < F(x),   F(x) = P(N_Z(0, σ²) ≤ x),   U uniform in [0, 1).

Exactly, with integers: U is the binary fraction of the cell's stream (:mod:`.seeding`), of which
the first 64 bits u are read; for every x in [−K, K] (K = 10σ) the table holds
T(x) = ⌊F(x)·2⁶⁴⌋, computed once per σ with :mod:`decimal` at 60 digits (its error bound is
checked against the distance to the nearest integer). Then U < F(x) exactly when u < T(x), and
U > F(x) exactly when u > T(x): ``searchsorted`` decides every cell but those whose u equals a
T(x) (probability about 2K/2⁶⁴; the first and last entries are 0 and 2⁶⁴ − 1, as the mass
beyond 10σ is below e^−50).
Those few are decided by reading more bits of U and comparing with F(x) computed to as many
digits as needed — slowly, in Python, and exactly. No step rounds: the distribution is N_Z(0, σ²)
itself, as the χ² tests against the mass function, against OpenDP and against the CKS sampler
check.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from pinsights.engine.dp.philox import philox4x32
from pinsights.engine.dp.seeding import Streams

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
TABLE_SIGMAS = 10
_DIGITS = 60


def _weights(sigma: int, reach: int) -> list[Decimal]:
    """exp(−x²/2σ²) for x = 0..reach, by the recurrence w(x) = w(x−1)·q^(2x−1), q = e^(−1/2σ²):
    two multiplications a term (relative error about 3·reach units of the context's precision)."""
    q = (Decimal(-1) / Decimal(2 * sigma * sigma)).exp()
    q2 = q * q
    weights, step = [Decimal(1)], q
    for _ in range(reach):
        weights.append(weights[-1] * step)
        step *= q2
    return weights


def _reach(sigma: int, digits: int) -> int:
    """Beyond this |x| the weights add less than 10^−digits of the total."""
    return int(sigma * (2.2 * digits + 40) ** 0.5) + 8


def _cdf(sigma: int, x: int, digits: int) -> tuple[Decimal, Decimal]:
    """F(x) for N_Z(0, σ²) at ``digits`` digits, and a bound on its error."""
    with localcontext() as context:
        context.prec = digits + 10
        reach = max(_reach(sigma, digits), abs(x) + 1)
        weights = _weights(sigma, reach)
        total = weights[0] + 2 * sum(weights[1:], Decimal(0))
        below = (
            sum(weights[-x:], Decimal(0)) if x < 0 else total - sum(weights[x + 1 :], Decimal(0))
        )
        return below / total, Decimal(10) ** (-digits)


@lru_cache(maxsize=16)
def table(sigma: int) -> tuple[U64, int]:
    """(T(x) for x = −K..K, K): ⌊F(x)·2⁶⁴⌋ as unsigned 64-bit integers, K = 10σ (beyond, F·2⁶⁴
    is within e^−50 of 0 or 2⁶⁴: T is 0 or 2⁶⁴ − 1, and the slow path decides)."""
    k = TABLE_SIGMAS * sigma
    with localcontext() as context:
        context.prec = _DIGITS + 10
        weights = _weights(sigma, max(_reach(sigma, _DIGITS), k + 1))
        total = weights[0] + 2 * sum(weights[1:], Decimal(0))
        scale = Decimal(2) ** 64
        bound = Decimal(10) ** (-_DIGITS) * scale
        running = sum(weights[k + 1 :], Decimal(0))  # F(−K − 1)·total
        thresholds = []
        for x in range(-k, k + 1):
            running += weights[abs(x)]
            value = running / total * scale
            floor = int(value)
            if floor >= 2**64:  # F < 1: the product rounded up to 2^64, its floor is 2^64 - 1
                thresholds.append(2**64 - 1)
                continue
            # Near 0 (far left) and near 2^64 (far right) the floor cannot be wrong: F is in (0, 1).
            near_below = floor > 0 and value - floor < bound
            near_above = floor + 1 < 2**64 and floor + 1 - value < bound
            if near_below or near_above:
                raise ArithmeticError(f"F({x}) for σ {sigma} too close to a 2^-64 boundary")
            thresholds.append(floor)
    return np.array(thresholds, dtype=np.uint64), k


def _words(streams: Streams, cells: npt.NDArray[np.intp], block: int) -> list[int]:
    """The four words of one Philox block of one cell (the slow path's extra bits)."""
    c3 = np.array([(int(streams.c3[cells[0]]) + block) & 0xFFFFFFFF], dtype=np.uint32)
    out = philox4x32(
        (streams.c0[cells], streams.c1[cells], streams.c2[cells], c3),
        (streams.k0[cells], streams.k1[cells]),
    )
    return [int(word[0]) for word in out]


def _decide(streams: Streams, cell: int, sigma: int) -> int:
    """X for one cell whose first 64 bits did not decide it: more bits, more digits."""
    index = np.array([cell], dtype=np.intp)
    bits, value, block = 0, 0, 0
    words: list[int] = []
    while True:
        if not words:
            words = _words(streams, index, block)
            block += 1
        value = (value << 32) | words.pop(0)
        bits += 32
        if bits < 128:
            continue
        digits = bits * 30 // 100 + 20
        low = Decimal(value) / Decimal(2) ** bits
        high = Decimal(value + 1) / Decimal(2) ** bits
        x = -_reach(sigma, digits)
        while True:
            cdf, error = _cdf(sigma, x, digits)
            if high <= cdf - error:  # U < F(x), and U ≥ F(x − 1) was decided on the way
                return x
            if low < cdf + error:  # undecided at these bits: read more
                break
            x += 1


def discrete_gaussian(streams: Streams, sigma: I64) -> I64:
    """One sample of N_Z(0, σ²) per stream, integer σ per stream."""
    n = len(streams)
    s = streams
    first = philox4x32((s.c0, s.c1, s.c2, s.c3), (s.k0, s.k1))
    u = (first[0].astype(np.uint64) << np.uint64(32)) | first[1].astype(np.uint64)
    result = np.zeros(n, dtype=np.int64)
    for value in np.unique(sigma).tolist():
        where = np.flatnonzero(sigma == value)
        thresholds, k = table(int(value))
        position = np.searchsorted(thresholds, u[where], side="left")
        inside = position < len(thresholds)
        exact = np.zeros(len(where), dtype=bool)
        exact[inside] = thresholds[position[inside]] == u[where][inside]
        result[where] = position - k
        for i in np.flatnonzero(~inside | exact).tolist():
            result[where[i]] = _decide(streams, int(where[i]), int(value))
    return result
