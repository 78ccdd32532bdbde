"""Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011), on numpy.

A counter-based generator: the i-th block of random words is a keyed bijection of the counter ``i``,
so any draw of any cell can be computed on its own, in any order, in bulk. That is what makes the
noise of a release reproducible (a rebuild, or the same build on another engine, gives the same
bytes) without storing it, and cheap to compute for hundreds of thousands of cells at once with
numpy's vectorised integer arithmetic. The key (64 bits) and half the counter come from an
HMAC of the store's secret (:mod:`.seeding`): without the secret the stream cannot be predicted.

Checked against the known-answer vectors of the Random123 reference implementation
(tests/test_dp_sampler.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
_MASK = np.uint64(0xFFFFFFFF)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
ROUNDS = 10


def philox4x32(
    counter: tuple[U32, U32, U32, U32], key: tuple[U32, U32]
) -> tuple[U32, U32, U32, U32]:
    """The four 32-bit output words of each counter (arrays of equal length) under each key."""
    c0, c1, c2, c3 = (np.asarray(word, dtype=np.uint64) for word in counter)
    k0 = np.asarray(key[0], dtype=np.uint64)
    k1 = np.asarray(key[1], dtype=np.uint64)
    for round_number in range(ROUNDS):
        if round_number:
            k0 = (k0 + np.uint64(_W0)) & _MASK
            k1 = (k1 + np.uint64(_W1)) & _MASK
        product0 = c0 * _M0  # < 2^64: 32-bit by 32-bit
        product1 = c2 * _M1
        hi0, lo0 = product0 >> np.uint64(32), product0 & _MASK
        hi1, lo1 = product1 >> np.uint64(32), product1 & _MASK
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return (
        c0.astype(np.uint32),
        c1.astype(np.uint32),
        c2.astype(np.uint32),
        c3.astype(np.uint32),
    )
