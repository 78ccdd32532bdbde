"""The build's configuration, in one typed object read once: :class:`BuildSettings`.

Every option of ``pinsights build`` (docs/cli.md) is a field. The environment is read here and
nowhere else, by :class:`BuildEnvironment` (pydantic-settings) when the settings are made:
``PINSIGHTS_MEMORY_LIMIT`` stands in for ``memory_limit`` and ``PINSIGHTS_THREADS`` for
``threads`` when they are not given. The engines are handed the resolved values.

Engine-specific settings belong to their engine: ``spark`` is the Spark engine's own
:class:`~pinsights.engine.spark.session.SparkSettings` (where it runs), read only with
``engine="spark"``; DuckDB's only setting of its own is ``threads``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from pinsights.data.sources import DataPath
from pinsights.engine.dp.parameters import DpParameters
from pinsights.engine.memory import default_memory_limit
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.spark.session import SparkSettings

#: Engines this release can run the definition on.
ENGINES = ("duckdb", "spark")
#: ``--privacy``: exact counts (the default) or the differentially private mode.
PRIVACY_MODES = ("exact", "dp")
#: ``refresh``: how a build uses the store's refresh state.
REFRESH_MODES = ("auto", "full", "off")


class BuildEnvironment(BaseSettings):
    """The build's environment variables (``PINSIGHTS_…``); read once, by :class:`BuildSettings`."""

    model_config = SettingsConfigDict(env_prefix="PINSIGHTS_", extra="ignore")

    memory_limit: str | None = None
    #: Text, parsed when the engine starts: a bad value fails the build, not the settings.
    threads: str | None = None


@dataclass(frozen=True)
class BuildSettings:
    data_dir: DataPath  # a local path, or with the Spark engine a URL (sources.data_path)
    store_dir: Path = Path("pinsights-store")
    date: dt.date | None = None
    #: More generation dates, built in one run from one reading of the input (with ``date``).
    dates: tuple[dt.date, ...] = ()
    window_days: int = 30
    min_audience_size: int = 100
    min_cell_size: int = 10
    max_subcategories: int = 10
    retain: int = 30
    max_bad_fraction: float = 0.01
    engine: str = "duckdb"
    #: DuckDB's threads; default PINSIGHTS_THREADS, else DuckDB's own (every core).
    threads: int | None = None
    #: Memory limit of the build process (e.g. ``8GB``; DuckDB's buffers get most of it, see
    #: memory.buffer_pool_bytes); default PINSIGHTS_MEMORY_LIMIT, else half the machine's memory.
    memory_limit: str | None = None
    #: Publish a requested date even when its window holds no valid event (an empty snapshot).
    allow_empty: bool = False
    spark: SparkSettings = field(default_factory=SparkSettings)  # where --engine spark runs
    #: ``exact`` (SPEC §3) or ``dp``: bounded, noised and accounted counts (docs/privacy.md).
    privacy_mode: str = "exact"
    dp: DpParameters = field(default_factory=DpParameters)
    #: ``auto``: incremental when the store holds a usable refresh state, else full (and the
    #: state written); ``full``: full, the state rewritten (``--full``); ``off``: full, no state
    #: read or written (docs/engine.md, "Incremental refresh").
    refresh: str = "auto"
    environment: BuildEnvironment = field(default_factory=BuildEnvironment, repr=False)

    @property
    def memory_limit_given(self) -> str | None:
        """The limit the user gave, as an option or in the environment; None when neither."""
        return self.memory_limit or self.environment.memory_limit

    @property
    def memory_limit_in_effect(self) -> str:
        """The limit a DuckDB build runs under: the one given, else half of the machine."""
        return self.memory_limit_given or default_memory_limit()

    @property
    def duckdb_threads(self) -> int | None:
        """DuckDB's threads: the option, else PINSIGHTS_THREADS (ValueError when not a number)."""
        if self.threads is not None:
            return self.threads
        given = self.environment.threads
        return int(given) if given else None

    def privacy(self) -> PrivacyRules:
        return PrivacyRules(
            min_audience_size=self.min_audience_size,
            min_cell_size=self.min_cell_size,
            max_subcategories=self.max_subcategories,
        )

    def requested_dates(self) -> list[dt.date]:
        """The dates asked for, oldest first; empty: the date of the latest valid event."""
        return sorted({*self.dates, *([self.date] if self.date else [])})

    def problem(self) -> str | None:
        """What makes these settings unusable, in one line; None when they are fine."""
        if self.window_days < 1:
            return "--window-days must be at least 1"
        if self.retain < 1:
            return "--retain must be at least 1"
        if self.engine not in ENGINES:
            return f"unknown engine {self.engine!r}: this build runs on {', '.join(ENGINES)}"
        if self.privacy_mode not in PRIVACY_MODES:
            return f"unknown privacy mode {self.privacy_mode!r}: one of {', '.join(PRIVACY_MODES)}"
        if self.refresh not in REFRESH_MODES:
            return f"unknown refresh mode {self.refresh!r}: one of {', '.join(REFRESH_MODES)}"
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            return "--max-bad-fraction must be between 0 and 1"
        try:
            self.privacy()
        except ValueError as error:
            return str(error)
        return None
