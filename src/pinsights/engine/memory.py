"""The build's memory policy: one limit for the whole build process, shared out by engine.

``--memory-limit`` (or ``PINSIGHTS_MEMORY_LIMIT``; default half the machine) bounds the build
process, not just an engine's buffers: DuckDB's buffer pool gets the limit less what the
interpreter, Arrow results, documents and the snapshot being written need (:func:`buffer_pool_bytes`);
Spark's driver heap is derived from the same share (:mod:`pinsights.engine.spark.session`).
Nothing here reads the environment: :class:`pinsights.engine.settings.BuildSettings` does, once.
"""

from __future__ import annotations

import os
import re


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_memory_limit() -> str:
    """Half of the machine's physical memory (DuckDB's own default is 80 %): a build usually
    shares its machine (a server, other jobs). Beyond the limit DuckDB spills to the store's
    temporary directory instead of failing."""
    return f"{max(physical_memory_bytes() // 2 // 2**20, 256)}MiB"


#: Units of a memory limit as DuckDB reads them (KB is 1000 bytes, KiB 1024), lower-cased.
_UNITS = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "k": 10**3, "kb": 10**3, "kilobyte": 10**3, "kilobytes": 10**3, "kib": 2**10,
    "m": 10**6, "mb": 10**6, "megabyte": 10**6, "megabytes": 10**6, "mib": 2**20,
    "g": 10**9, "gb": 10**9, "gigabyte": 10**9, "gigabytes": 10**9, "gib": 2**30,
    "t": 10**12, "tb": 10**12, "terabyte": 10**12, "terabytes": 10**12, "tib": 2**40,
}  # fmt: skip


def memory_bytes(limit: str) -> int | None:
    """``8GB``, ``7.5 GiB``, ``50%`` (of the machine's memory) or a bare number of bytes, in
    bytes; None for a form this does not know."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z%]*)\s*", limit)
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        return int(physical_memory_bytes() * number / 100)
    return int(number * _UNITS[unit]) if unit in _UNITS else None


#: Share of ``--memory-limit`` left to everything outside DuckDB's buffers, and its bounds.
OUTSIDE_SHARE = 0.10
OUTSIDE_MIN = 256 * 2**20
OUTSIDE_MAX = 2**30


#: The smallest ``--memory-limit`` a build accepts: DuckDB's buffers get half of it, 32 MB,
#: which builds a million events (spilling); under 16 MB DuckDB fails on a few thousand. The
#: interpreter alone takes some 200 MiB, so a limit this small cannot be kept anyway.
MIN_MEMORY_LIMIT = 64 * 10**6
#: What is said of a limit under MIN_MEMORY_LIMIT, after the limit as written (by the command line
#: for --memory-limit, by the DuckDB engine for PINSIGHTS_MEMORY_LIMIT).
TOO_SMALL = (
    f"is too small: a build needs at least {MIN_MEMORY_LIMIT // 10**6}MB"
    " (DuckDB's buffers get half of it)"
)


def buffer_pool_bytes(limit: int) -> int:
    """DuckDB's share of a memory limit meant for the whole build process.

    DuckDB's own limit covers its buffers only; the interpreter and its libraries, Arrow results,
    the documents assembled in Python and the snapshot being written come on top (some 300-500
    MiB at 20M events, about as much at 100M: they grow with accounts and interests, not events).
    So DuckDB gets the limit less a tenth of it, that tenth kept between 256 MiB and 1 GiB and at
    most half of the limit: with ``--memory-limit 8GB`` DuckDB's buffers get 7.2 GB.
    """
    outside = min(max(int(limit * OUTSIDE_SHARE), OUTSIDE_MIN), OUTSIDE_MAX, limit // 2)
    return limit - outside
