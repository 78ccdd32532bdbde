"""A realistic synthetic platform in the input contract (SPEC §2), for demos, tests and benchmarks.

Audience insights are only worth looking at when audiences differ, so the generator is a small
behavioural model rather than uniform noise:

- users have demographics like a visual-discovery platform's (mostly female, 25-44, US-heavy with a
  long tail of countries, US users in Nielsen DMAs) and 2-4 favourite categories drawn with a bias
  from their gender and age;
- advertisers focus on one or two categories (and a few subcategories within them) and their sizes
  follow a Zipf law;
- every event is either interest-driven (a pin from one of the user's favourite categories, often
  engaged with) or feed exploration (any pin, engaged with now and then when it touches one of the
  user's wider interests, hardly ever otherwise), so the people who engage with a food advertiser
  really do over-index on food, a wedding advertiser's audience is really younger and more female
  than the platform's, and unrelated categories under-index.

The model's parts: ``parameters.py`` (its numbers), ``taxonomy.py`` and ``geography.py`` (interests,
countries, metros), ``users.py``, ``content.py`` (advertisers and pins), ``events.py``, and
``sampling.py`` (the random streams they draw from); this module runs them and writes the tables.

Everything is vectorised with NumPy and written with PyArrow, one UTC day of events at a time, so
memory stays flat and tens of millions of events take seconds. The same seed gives byte-identical
files: every random stream is seeded from ``(seed, stream name[, day])`` and nothing reads a clock
except the default ``end_date``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pinsights.synthetic.content import Advertisers, Catalogue
from pinsights.synthetic.events import day_of_events, events_per_day
from pinsights.synthetic.geography import METROS
from pinsights.synthetic.parameters import EVENTS_PER_USER, PINS_PER_USER
from pinsights.synthetic.sampling import random_stream
from pinsights.synthetic.taxonomy import InterestArrays
from pinsights.synthetic.users import Population, metros_table

__all__ = ["GenerateSummary", "generate"]

_COMPRESSION = "zstd"


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote: table sizes, the event window, and the advertisers biggest first."""

    out_dir: Path
    seed: int
    users: int
    accounts: int
    pins: int
    interests: int
    metros: int
    events: int
    start_date: dt.date
    end_date: dt.date
    ad_account_ids: list[str]
    """Every ad account id, by descending number of pins (ties by id), so demos can show big ones."""

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (``pinsights generate --json``)."""
        return {
            "out_dir": str(self.out_dir),
            "seed": self.seed,
            "users": self.users,
            "accounts": self.accounts,
            "pins": self.pins,
            "interests": self.interests,
            "metros": self.metros,
            "events": self.events,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "ad_account_ids": list(self.ad_account_ids),
        }


def default_end_date() -> dt.date:
    """Yesterday in UTC: the newest complete day a platform would have logs for."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def generate(
    out_dir: Path,
    *,
    users: int = 20_000,
    accounts: int = 50,
    days: int = 30,
    end_date: dt.date | None = None,
    seed: int = 0,
    events: int | None = None,
    progress: bool = False,
) -> GenerateSummary:
    """Write a synthetic dataset in the input contract (SPEC §2) into ``out_dir``.

    ``events`` is the exact number of events to write (default ``EVENTS_PER_USER`` per user), spread
    over the ``days`` UTC days ending with ``end_date`` (default: yesterday). The generator replaces
    its own outputs (the ``<table>.parquet`` files and ``events/date=*/part-0.parquet``, including
    partitions left from an earlier window) and leaves anything else in ``out_dir`` alone; refusing
    a non-empty directory is the CLI's job. ``progress`` shows a Rich progress bar on stderr.
    """
    if users < 1 or accounts < 1 or days < 1:
        raise ValueError("users, accounts and days must be at least 1")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    total_events = EVENTS_PER_USER * users if events is None else events
    if total_events < 1:
        raise ValueError("events must be at least 1")
    last_day = end_date if end_date is not None else default_end_date()
    first_day = last_day - dt.timedelta(days=days - 1)
    out_dir = Path(out_dir)

    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not progress) as bar:
        tables_task = bar.add_task("Users, advertisers, pins", total=4)
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_previous_events(out_dir / "events")

        taxonomy = InterestArrays.build()
        _write(taxonomy.table(), out_dir / "interests.parquet")
        _write(metros_table(), out_dir / "metros.parquet")
        bar.advance(tables_task)

        population = Population.build(random_stream(seed, "users"), users)
        _write(population.table(), out_dir / "users.parquet")
        bar.advance(tables_task)

        advertisers = Advertisers.build(random_stream(seed, "ad_accounts"), accounts)
        _write(advertisers.table(), out_dir / "ad_accounts.parquet")
        bar.advance(tables_task)

        n_pins = max(1_000, PINS_PER_USER * users, 10 * accounts)
        catalogue = Catalogue.build(random_stream(seed, "pins"), n_pins, advertisers, taxonomy)
        _write(catalogue.table(advertisers, taxonomy), out_dir / "pins.parquet")
        bar.advance(tables_task)

        day_counts = events_per_day(random_stream(seed, "volume"), first_day, days, total_events)
        events_task = bar.add_task("Events", total=total_events)
        for offset, count in enumerate(day_counts):
            day = first_day + dt.timedelta(days=offset)
            bar.update(events_task, description=f"Events {day.isoformat()}")
            if count:
                table = day_of_events(
                    random_stream(seed, "events", offset), day, int(count), population, catalogue
                )
                path = out_dir / "events" / f"date={day.isoformat()}" / "part-0.parquet"
                _write(table, path, dictionary=["event_type"])
            bar.advance(events_task, int(count))

    pins_per_account = np.bincount(
        catalogue.account[catalogue.account >= 0], minlength=accounts
    ).tolist()
    biggest_first = sorted(
        range(accounts), key=lambda a: (-pins_per_account[a], advertisers.ids[a])
    )
    return GenerateSummary(
        out_dir=out_dir,
        seed=seed,
        users=users,
        accounts=accounts,
        pins=n_pins,
        interests=len(taxonomy.ids),
        metros=len(METROS),
        events=total_events,
        start_date=first_day,
        end_date=last_day,
        ad_account_ids=[advertisers.ids[a] for a in biggest_first],
    )


def _write(table: pa.Table, path: Path, *, dictionary: bool | list[str] = True) -> None:
    """Write one Parquet file; the writer embeds no clock or host, so output is reproducible.

    ``dictionary`` names the columns worth dictionary-encoding: for event files only
    ``event_type``, since trying it on millions of distinct ids costs time and gains nothing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression=_COMPRESSION, use_dictionary=dictionary)


def _remove_previous_events(events_dir: Path) -> None:
    """Remove event partitions this generator wrote before, so an older window cannot leak into the
    new dataset; any other file under ``events/`` is left where it is."""
    if not events_dir.is_dir():
        return
    for partition in events_dir.glob("date=*"):
        part = partition / "part-0.parquet"
        if part.is_file():
            part.unlink()
        if partition.is_dir() and not any(partition.iterdir()):
            partition.rmdir()
