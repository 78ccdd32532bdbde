"""Random streams and the vectorised draws every part of the generator shares.

Every stream is seeded from ``(seed, stream name[, day])``, so changing one table's model or size
does not reshuffle the others, and the same seed gives byte-identical files.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

FloatArray = npt.NDArray[np.float64]


IntArray = npt.NDArray[np.int64]


def random_stream(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """An independent random stream per table (and per day), so that changing one table's model or
    size does not reshuffle the others, and days can be generated in any order."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), *extra])


def strings(values: tuple[str, ...] | list[str], codes: npt.NDArray[Any]) -> pa.Array:
    """A string column from integer codes into ``values``; a negative code is a null."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.array(values, type=pa.string()).take(indices)


def sample(
    rng: np.random.Generator, cumulative: FloatArray, size: int, *, shuffled: bool = True
) -> IntArray:
    """Indices drawn independently with probabilities given by an (unnormalised) cumulative weight
    array.

    The uniform draws are sorted before the binary search: sorted needles walk the cumulative array
    in order, which is several times faster than random probes once it outgrows the CPU caches.
    The draws then come out in index order; ``shuffled`` puts them in random order, which callers
    need whenever they pair the draws with other per-event values.
    """
    draws = np.sort(rng.random(size)) * cumulative[-1]
    found = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(cumulative) - 1)
    return rng.permutation(found) if shuffled else found


def shares(weights: tuple[float, ...] | list[float]) -> FloatArray:
    array = np.asarray(weights, dtype=np.float64)
    return array / array.sum()


def apportion(weights: FloatArray, total: int) -> IntArray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder), exactly."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    remainder = total - int(counts.sum())
    if remainder:
        counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    return counts
