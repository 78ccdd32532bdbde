"""The discrete Gaussian, sampled exactly with integers (Canonne, Kamath and Steinke, 2020).

N_Z(0, σ²) puts mass ∝ exp(−x²/2σ²) on every integer x. Added to a count with sensitivity 1 it
gives ρ = 1/(2σ²) zero-concentrated DP, and, unlike a rounded continuous Gaussian sampled with
floating point, the exact distribution: floating-point samplers leak through the pattern of the
doubles they can produce (Mironov, 2012). This module uses no float at all: every step is a
Bernoulli trial with a rational probability, decided by comparing a uniform integer with the
numerator — Algorithms 1-3 of "The Discrete Gaussian for Differential Privacy":

1. Bernoulli(exp(−γ)) for rational γ ∈ [0, 1]: draw A_k ~ Bernoulli(γ/k), k = 1, 2, … until the
   first A_k = 0; the result is whether that k is odd. For γ > 1, ⌊γ⌋ trials of exp(−1) first.
2. Discrete Laplace of scale t: U uniform in [0, t) kept with probability exp(−U/t), V geometric
   from exp(−1) trials, X = U + tV, a random sign (rejecting −0).
3. Discrete Gaussian: Y ~ DLap(t) with t = ⌊σ⌋ + 1, kept with probability
   exp(−(|Y| − σ²/t)² / 2σ²).

Every cell has its own stream of 32-bit words (:mod:`.seeding`, :mod:`.philox`), consumed in the
algorithm's order, so a cell's noise depends on its stream alone. The algorithm runs on all cells
at once with numpy: each loop of the paper becomes a loop over the cells still in it.
"""

from __future__ import annotations

from fractions import Fraction
from math import isqrt

import numpy as np
import numpy.typing as npt

from pinsights.engine.dp.philox import philox4x32
from pinsights.engine.dp.seeding import Streams

I64 = npt.NDArray[np.int64]
Index = npt.NDArray[np.intp]
Mask = npt.NDArray[np.bool_]
_TWO_32 = 1 << 32


class _Draws:
    """Uniform integers from each cell's stream, in order.

    Most cells need a dozen words (median 9, mean 12.6 for any σ), so the first
    ``PREFETCH_BLOCKS`` Philox blocks of every cell are computed in one vectorised call; the few
    cells that go further get theirs a block at a time. Which words a cell reads does not depend
    on this: draw j is always word j % 4 of block j // 4.
    """

    PREFETCH_BLOCKS = 4

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        n = len(streams)
        self.drawn = np.zeros(n, dtype=np.int64)
        self.block = np.full(n, -1, dtype=np.int64)
        self.words = np.zeros((n, 4), dtype=np.uint32)
        blocks = self.PREFETCH_BLOCKS
        s = streams
        c3 = np.bitwise_and(
            np.add.outer(s.c3.astype(np.uint64), np.arange(blocks, dtype=np.uint64)),
            np.uint64(0xFFFFFFFF),
        )
        out = philox4x32(
            (
                np.repeat(s.c0, blocks),
                np.repeat(s.c1, blocks),
                np.repeat(s.c2, blocks),
                c3.ravel().astype(np.uint32),
            ),
            (np.repeat(s.k0, blocks), np.repeat(s.k1, blocks)),
        )
        self.prefetched = np.stack(out, axis=1).reshape(n, 4 * blocks)
        self.capacity = 4 * blocks

    def _word(self, cells: Index) -> npt.NDArray[np.uint64]:
        drawn = self.drawn[cells]
        self.drawn[cells] = drawn + 1
        early = drawn < self.capacity
        if early.all():
            return self.prefetched[cells, drawn].astype(np.uint64)
        result = np.empty(len(cells), dtype=np.uint64)
        result[early] = self.prefetched[cells[early], drawn[early]]
        late, late_drawn = cells[~early], drawn[~early]
        block = late_drawn >> 2
        stale = self.block[late] != block
        if stale.any():
            s, cells_stale = self.streams, late[stale]
            wanted = block[stale].astype(np.uint64)
            c3 = ((s.c3[cells_stale].astype(np.uint64) + wanted) & np.uint64(0xFFFFFFFF)).astype(
                np.uint32
            )
            out = philox4x32(
                (s.c0[cells_stale], s.c1[cells_stale], s.c2[cells_stale], c3),
                (s.k0[cells_stale], s.k1[cells_stale]),
            )
            self.words[cells_stale] = np.stack(out, axis=1)
            self.block[cells_stale] = block[stale]
        result[~early] = self.words[late, late_drawn & 3]
        return result

    def uniform(self, cells: Index, bound: I64) -> I64:
        """Uniform in [0, bound) for each cell (bound ≤ 2^32), exactly: rejection of the top."""
        if len(cells) and int(bound.max()) > _TWO_32:
            raise OverflowError("a uniform draw above 2^32: the noise scale is out of range")
        result = np.empty(len(cells), dtype=np.int64)
        todo = np.arange(len(cells))
        bound64 = bound.astype(np.uint64)
        while len(todo):
            word = self._word(cells[todo])
            m = bound64[todo]
            limit = (np.uint64(_TWO_32) // m) * m
            ok = word < limit
            result[todo[ok]] = (word[ok] % m[ok]).astype(np.int64)
            todo = todo[~ok]
        return result

    def bernoulli(self, cells: Index, numerator: I64, denominator: I64) -> Mask:
        """Bernoulli(numerator / denominator); certain outcomes draw nothing."""
        result = numerator >= denominator
        unsure = np.flatnonzero((numerator > 0) & ~result)
        if len(unsure):
            u = self.uniform(cells[unsure], denominator[unsure])
            result[unsure] = u < numerator[unsure]
        return result

    def bernoulli_exp_fraction(self, cells: Index, numerator: I64, denominator: I64) -> Mask:
        """Bernoulli(exp(−n/d)) for n/d in [0, 1] (Algorithm 1)."""
        k = 1
        result = np.zeros(len(cells), dtype=bool)
        alive = np.arange(len(cells))
        while len(alive):
            a = self.bernoulli(cells[alive], numerator[alive], denominator[alive] * k)
            stopped = alive[~a]
            result[stopped] = k % 2 == 1
            alive = alive[a]
            k += 1
        return result

    def bernoulli_exp(self, cells: Index, numerator: I64, denominator: I64) -> Mask:
        """Bernoulli(exp(−n/d)) for any n/d ≥ 0: ⌊n/d⌋ trials of exp(−1), then the fraction."""
        whole = numerator // denominator
        alive = np.ones(len(cells), dtype=bool)
        j = 0
        while True:
            trying = np.flatnonzero(alive & (whole > j))
            if not len(trying):
                break
            ones = np.ones(len(trying), dtype=np.int64)
            alive[trying] = self.bernoulli_exp_fraction(cells[trying], ones, ones)
            j += 1
        rest = np.flatnonzero(alive)
        if len(rest):
            alive[rest] = self.bernoulli_exp_fraction(
                cells[rest], numerator[rest] - whole[rest] * denominator[rest], denominator[rest]
            )
        return alive

    def discrete_laplace(self, cells: Index, t: I64) -> I64:
        """Discrete Laplace with integer scale t (one per cell), one per cell (Algorithm 2)."""
        result = np.zeros(len(cells), dtype=np.int64)
        todo = np.arange(len(cells))
        while len(todo):
            here, scale = cells[todo], t[todo]
            u = self.uniform(here, scale)
            keep = self.bernoulli_exp_fraction(here, u, scale)
            kept = np.flatnonzero(keep)
            v = np.zeros(len(kept), dtype=np.int64)
            going = np.arange(len(kept))
            while len(going):
                ones = np.ones(len(going), dtype=np.int64)
                more = self.bernoulli_exp_fraction(here[kept[going]], ones, ones)
                v[going[more]] += 1
                going = going[more]
            x = u[kept] + scale[kept] * v
            two = np.full(len(kept), 2, dtype=np.int64)
            negative = self.uniform(here[kept], two) == 0
            accepted = ~(negative & (x == 0))
            result[todo[kept[accepted]]] = np.where(negative, -x, x)[accepted]
            retry = np.ones(len(todo), dtype=bool)
            retry[kept[accepted]] = False
            todo = todo[retry]
        return result


def discrete_gaussian(streams: Streams, sigma_squared: Fraction) -> I64:
    """One sample of N_Z(0, σ²) per stream (Algorithm 3); σ² is an exact rational."""
    n = len(streams)
    numerator = np.full(n, sigma_squared.numerator, dtype=np.int64)
    return _discrete_gaussian(streams, numerator, np.full(n, sigma_squared.denominator, np.int64))


def discrete_gaussian_scales(streams: Streams, sigma: I64) -> I64:
    """One sample of N_Z(0, σ²) per stream, with an integer σ per stream: a release draws every
    kind of cell in one pass (the same samples as one pass per σ, with fewer numpy calls)."""
    return _discrete_gaussian(streams, sigma.astype(np.int64) ** 2, np.ones(len(sigma), np.int64))


def _discrete_gaussian(streams: Streams, a: I64, b: I64) -> I64:
    """N_Z(0, a/b) per stream (Algorithm 3), σ² = a/b exact and positive."""
    if len(a) and int(a.min()) <= 0:
        raise ValueError("σ² must be positive")
    t = np.zeros(len(a), dtype=np.int64)
    pairs, inverse = np.unique(np.stack([a, b], axis=1), axis=0, return_inverse=True)
    for i, (num, den) in enumerate(pairs.tolist()):
        t[inverse.reshape(-1) == i] = isqrt(num * den) // den + 1  # ⌊σ⌋ + 1
    denominator = 2 * a * b * t * t
    draws = _Draws(streams)
    result = np.zeros(len(streams), dtype=np.int64)
    todo = np.arange(len(streams))
    while len(todo):
        y = draws.discrete_laplace(todo, t[todo])
        distance = np.abs(np.abs(y) * (t[todo] * b[todo]) - a[todo])  # |(|Y| − σ²/t)| · t·b
        if len(distance) and int(distance.max()) >= 1 << 31:
            raise OverflowError("a discrete Laplace draw beyond the sampler's integer range")
        keep = draws.bernoulli_exp(todo, distance * distance, denominator[todo])
        result[todo[keep]] = y[keep]
        todo = todo[~keep]
    return result
