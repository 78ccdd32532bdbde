"""One build's running record: each step's time and rows, each table's read/used/quarantined
counts, the dates published so far; the report's view of time and memory."""

from __future__ import annotations

import datetime as dt
import resource
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pinsights.engine.settings import BuildSettings


@dataclass
class Run:
    """Mutable state of one build: timings and table statistics for the report."""

    settings: BuildSettings
    build_id: str
    timings: dict[str, float] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    #: How the input was checked: incremental or full, and why (engine/refresh/check.py).
    refresh: dict[str, Any] = field(default_factory=dict)
    on_step: Callable[[str], None] | None = None
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.on_step is not None:
            self.on_step(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(
                self.timings.get(name, 0.0) + time.perf_counter() - started, 3
            )

    def count(self, step: str, rows_in: int, rows_out: int) -> None:
        """Rows a step read and wrote, for the report: where a slow build spends its rows."""
        self.rows[step] = {"rows_in": int(rows_in), "rows_out": int(rows_out)}

    def performance(self) -> dict[str, Any]:
        """The report's view of time and memory: per step, the whole build, the peak."""
        # Rate from the reported (rounded) seconds, so the report agrees with itself.
        seconds = round(time.perf_counter() - self.started, 3)
        events = self.tables.get("events", {}).get("read", 0)
        return {
            "seconds": seconds,
            "events_per_second": round(events / seconds) if seconds > 0 else 0,
            "peak_rss_bytes": peak_rss_bytes(),
            "steps": {
                name: {"seconds": seconds, **self.rows.get(name, {})}
                for name, seconds in self.timings.items()
            },
        }


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (DuckDB's buffers, Arrow and Python alike)."""
    # ru_maxrss is in KiB on Linux (bytes on macOS, where this project is not built for).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def new_build_id() -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{secrets.token_hex(3)}"
