"""Which key and which counter a draw of noise gets: the store's secret, the release, the cell.

    release key = HMAC-SHA256(secret, "pinsights-dp/1" ‖ date ‖ release number)
    audience    = SHA-256(release key ‖ account ‖ part)  → Philox key (64 bits) and counter words
    cell        = SHA-256("cell" ‖ cell name)             → the other 64 counter bits

- The **secret** never leaves the store (``privacy/secret``, owner-only, made once) or
  ``PINSIGHTS_DP_SECRET``; without it the noise cannot be predicted, so it cannot be subtracted.
- The **date and release number** are in the key: noise reused across releases would cancel in
  a difference (day D against D+1, or a rebuild on changed data) and give the exact change away.
  Each release gets fresh noise and is charged for it (:mod:`.ledger`).
- **Account, audience part and cell** select the stream, not a position in some list, so a cell
  gets the same noise whichever engine counted it, in whatever order, and however many other
  cells the release has: a rebuild of a release gives byte-identical documents.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

VERSION = b"pinsights-dp/1"


def release_key(secret: bytes, date: str, release: int) -> bytes:
    """The key of one release; ``release`` numbers the store's releases (from the ledger)."""
    message = b"\0".join((VERSION, date.encode(), str(release).encode()))
    return hmac.new(secret, message, hashlib.sha256).digest()


def _words(digest: bytes, count: int) -> list[int]:
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "little") for i in range(count)]


def audience_words(key: bytes, account: str, part: str) -> tuple[int, int, int, int]:
    """Philox key (two words) and two counter words of one (account, audience part)."""
    digest = hashlib.sha256(b"\0".join((key, account.encode(), part.encode()))).digest()
    k0, k1, c2, c3 = _words(digest, 4)
    return k0, k1, c2, c3


def cell_words(cell: str) -> tuple[int, int]:
    """Two counter words naming a cell (``size``, ``interest:<id>``, ``<dimension>:<key>``)."""
    digest = hashlib.sha256(b"cell\0" + cell.encode()).digest()
    c0, c1 = _words(digest, 2)
    return c0, c1


@dataclass(frozen=True)
class Streams:
    """One independent stream of random words per cell: Philox key and counter base, as arrays.

    Draw ``j`` of cell ``i`` is word ``j % 4`` of Philox block (c0, c1, c2, c3 + j // 4) under
    (k0, k1) of that cell.
    """

    k0: npt.NDArray[np.uint32]
    k1: npt.NDArray[np.uint32]
    c0: npt.NDArray[np.uint32]
    c1: npt.NDArray[np.uint32]
    c2: npt.NDArray[np.uint32]
    c3: npt.NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.k0)


def streams(
    key: bytes,
    audiences: list[tuple[str, str]],
    names: list[str],
    audience_index: npt.NDArray[np.intp],
    name_index: npt.NDArray[np.intp],
) -> Streams:
    """The streams of cells given as (audience, name) index pairs into ``audiences`` (each
    (account, part)) and ``names``, under a release key. Hashes once per audience and per
    name, then gathers: a release has hundreds of thousands of cells but only thousands of each.
    """
    per_audience = np.array(
        [audience_words(key, account, part) for account, part in audiences], dtype=np.uint32
    ).reshape(-1, 4)
    per_name = np.array([cell_words(name) for name in names], dtype=np.uint32).reshape(-1, 2)
    a = per_audience[audience_index]
    n = per_name[name_index]
    return Streams(
        k0=np.ascontiguousarray(a[:, 0]),
        k1=np.ascontiguousarray(a[:, 1]),
        c0=np.ascontiguousarray(n[:, 0]),
        c1=np.ascontiguousarray(n[:, 1]),
        c2=np.ascontiguousarray(a[:, 2]),
        c3=np.ascontiguousarray(a[:, 3]),
    )
