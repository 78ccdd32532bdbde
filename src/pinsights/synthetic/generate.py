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

Everything is vectorised with NumPy and written with PyArrow, one UTC day of events at a time, so
memory stays flat and tens of millions of events take seconds. The same seed gives byte-identical
files: every random stream is seeded from ``(seed, stream name[, day])`` and nothing reads a clock
except the default ``end_date``.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
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

from pinsights.data.tables import AGE_BUCKETS, EVENT_TYPES, GENDERS
from pinsights.synthetic.geography import COUNTRIES, METROS
from pinsights.synthetic.taxonomy import CATEGORY_KEYS, interests

__all__ = ["GenerateSummary", "generate"]

#: The contract's devices, in the order the device shares below are listed.
DEVICES = ("iphone", "android_mobile", "web", "ipad", "web_mobile", "android_tablet")

EVENTS_PER_USER = 50
"""Default event volume: events per user over the whole window."""

PINS_PER_USER = 2
"""Content volume: enough pins per user for popular pins to stand out from a long tail."""

_COMPRESSION = "zstd"
_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]

# --- the behavioural model -------------------------------------------------------------------------
# Shares are relative weights (normalised where used); multipliers default to 1.0.

_AGE_SHARES = (0.17, 0.28, 0.22, 0.09, 0.08, 0.10, 0.06)
_GENDER_SHARES = (0.68, 0.25, 0.07)
_DEVICE_SHARES_US = (0.42, 0.22, 0.16, 0.07, 0.08, 0.05)
_DEVICE_SHARES_ELSEWHERE = (0.20, 0.45, 0.17, 0.04, 0.10, 0.04)
_DEVICE_ACTIVITY = (1.3, 1.3, 0.8, 1.0, 0.7, 1.0)
"""App users come back more often than web users."""

# Reported values go missing at these rates (the latent value still drives behaviour).
_NULL_RATE = {"age": 0.03, "gender": 0.02, "country": 0.02, "metro": 0.04, "device": 0.02}
_LOWERCASE_COUNTRY_RATE = 0.03
"""The contract allows any case for country codes; some upstream systems send lower case."""

_CATEGORY_POPULARITY = {
    "animals": 3.0,
    "architecture": 2.0,
    "art": 5.0,
    "beauty": 8.0,
    "childrens_fashion": 2.0,
    "design": 4.0,
    "diy_and_crafts": 7.0,
    "education": 2.5,
    "electronics": 2.0,
    "entertainment": 4.0,
    "event_planning": 3.0,
    "finance": 1.5,
    "food_and_drinks": 12.0,
    "gardening": 4.0,
    "health": 5.0,
    "home_decor": 12.0,
    "mens_fashion": 2.5,
    "parenting": 3.0,
    "quotes": 4.0,
    "sport": 2.5,
    "travel": 5.0,
    "vehicles": 1.5,
    "wedding": 4.0,
    "womens_fashion": 10.0,
}

_GENDER_AFFINITY: dict[str, dict[str, float]] = {
    "female": {
        "womens_fashion": 1.6,
        "beauty": 1.6,
        "wedding": 1.5,
        "childrens_fashion": 1.4,
        "home_decor": 1.3,
        "diy_and_crafts": 1.3,
        "parenting": 1.3,
        "event_planning": 1.3,
        "food_and_drinks": 1.1,
        "mens_fashion": 0.3,
        "vehicles": 0.3,
        "electronics": 0.5,
        "sport": 0.6,
        "finance": 0.7,
    },
    "male": {
        "mens_fashion": 4.0,
        "vehicles": 4.0,
        "electronics": 3.0,
        "sport": 3.0,
        "finance": 2.0,
        "architecture": 1.6,
        "entertainment": 1.4,
        "womens_fashion": 0.15,
        "beauty": 0.3,
        "wedding": 0.4,
        "childrens_fashion": 0.5,
        "parenting": 0.6,
        "diy_and_crafts": 0.7,
    },
    "unspecified": {},
}

_AGE_AFFINITY: dict[str, dict[str, float]] = {
    "18-24": {
        "quotes": 2.0,
        "education": 1.6,
        "entertainment": 1.5,
        "beauty": 1.4,
        "art": 1.3,
        "womens_fashion": 1.3,
        "parenting": 0.3,
        "childrens_fashion": 0.3,
        "finance": 0.6,
        "gardening": 0.4,
    },
    "25-34": {
        "wedding": 2.0,
        "childrens_fashion": 1.7,
        "parenting": 1.6,
        "event_planning": 1.4,
        "home_decor": 1.2,
        "finance": 1.2,
    },
    "35-44": {
        "parenting": 1.6,
        "childrens_fashion": 1.6,
        "home_decor": 1.3,
        "health": 1.2,
        "diy_and_crafts": 1.2,
        "wedding": 0.7,
    },
    "45-49": {
        "gardening": 1.4,
        "home_decor": 1.3,
        "health": 1.3,
        "finance": 1.3,
        "travel": 1.2,
        "quotes": 0.8,
        "wedding": 0.5,
    },
    "50-54": {
        "gardening": 1.6,
        "health": 1.4,
        "travel": 1.3,
        "home_decor": 1.3,
        "diy_and_crafts": 1.3,
        "beauty": 0.8,
        "quotes": 0.7,
        "parenting": 0.6,
        "wedding": 0.4,
    },
    "55-64": {
        "gardening": 2.0,
        "health": 1.5,
        "travel": 1.4,
        "diy_and_crafts": 1.4,
        "education": 0.6,
        "childrens_fashion": 0.6,
        "quotes": 0.7,
        "parenting": 0.4,
        "wedding": 0.3,
    },
    "65+": {
        "gardening": 2.2,
        "diy_and_crafts": 1.5,
        "health": 1.5,
        "animals": 1.3,
        "travel": 1.3,
        "womens_fashion": 0.7,
        "electronics": 0.5,
        "wedding": 0.3,
        "parenting": 0.2,
    },
}

_FAVOURITE_COUNT_SHARES = (0.35, 0.40, 0.25)
"""How many favourite categories a user has: 2, 3 or 4."""
_FAVOURITE_STRENGTH = (0.45, 0.28, 0.17, 0.10)
"""How a user's attention is split between their first, second, … favourite category."""
_USER_ACTIVITY_EXPONENT = 1.0
_USER_ACTIVITY_OFFSET = 0.001
"""User activity is Zipf-Mandelbrot, ``(rank + offset * users) ** -exponent``: a long tail of
occasional users and heavy users who are heavy, not bots (the offset caps the head)."""

_ADVERTISER_POPULARITY = {
    "animals": 3.0,
    "architecture": 1.0,
    "art": 2.0,
    "beauty": 9.0,
    "childrens_fashion": 3.0,
    "design": 2.0,
    "diy_and_crafts": 5.0,
    "education": 2.0,
    "electronics": 4.0,
    "entertainment": 4.0,
    "event_planning": 3.0,
    "finance": 3.0,
    "food_and_drinks": 10.0,
    "gardening": 3.0,
    "health": 5.0,
    "home_decor": 10.0,
    "mens_fashion": 4.0,
    "parenting": 4.0,
    "quotes": 1.0,
    "sport": 3.0,
    "travel": 5.0,
    "vehicles": 3.0,
    "wedding": 4.0,
    "womens_fashion": 10.0,
}
_RELATED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "animals": ("home_decor", "parenting"),
    "architecture": ("design", "home_decor"),
    "art": ("design", "diy_and_crafts"),
    "beauty": ("womens_fashion", "health"),
    "childrens_fashion": ("parenting", "event_planning"),
    "design": ("home_decor", "art"),
    "diy_and_crafts": ("home_decor", "art", "event_planning"),
    "education": ("parenting", "quotes"),
    "electronics": ("entertainment", "design"),
    "entertainment": ("electronics", "quotes"),
    "event_planning": ("food_and_drinks", "wedding"),
    "finance": ("education", "travel"),
    "food_and_drinks": ("health", "event_planning"),
    "gardening": ("home_decor", "diy_and_crafts"),
    "health": ("food_and_drinks", "sport"),
    "home_decor": ("design", "diy_and_crafts", "gardening"),
    "mens_fashion": ("sport", "beauty"),
    "parenting": ("childrens_fashion", "education"),
    "quotes": ("art", "education"),
    "sport": ("health", "mens_fashion"),
    "travel": ("vehicles", "entertainment"),
    "vehicles": ("travel", "sport"),
    "wedding": ("event_planning", "womens_fashion"),
    "womens_fashion": ("beauty", "wedding"),
}
_RELATED_CATEGORY_AFFINITY = 2.5
"""How much likelier a related category is among the tastes of someone whose first love is X."""
_SECOND_FOCUS_RATE = 0.4
_ADVERTISER_SIZE_EXPONENT = 1.1
_ADVERTISER_PIN_SHARE = 0.25
_ADVERTISER_ON_FOCUS = 0.85
"""Share of an advertiser's pins in its focus categories; the rest is anything."""
_PROMOTED_BOOST = 1.5
"""Advertisers' pins are seen more often than organic ones (they are promoted)."""

_NULL_INTEREST_RATE = 0.03
_VIDEO_PIN_RATE = 0.15
_PIN_POPULARITY_TAIL = 1.3
"""Pareto shape of pin popularity: most pins are rarely seen, a few go viral."""

_WIDER_INTERESTS = 6
"""A user's favourite categories plus the next ones in their taste ranking: what they may engage
with when the feed shows it, without seeking it out."""
_INTEREST_DRIVEN_RATE = 0.5
"""Share of events on pins from the user's favourite categories; the rest is feed exploration."""
_ENGAGEMENT_RATE = (0.002, 0.04, 0.42)
"""Probability that an event is an engagement: exploration outside the user's wider interests,
exploration within them, interest-driven. Heavy users see everything, so engagement outside a
user's interests must be rare or every heavy user ends up interested in every category."""
_ENGAGEMENT_MIX = {
    "CLOSEUP": 0.36,
    "SAVE": 0.22,
    "PIN_CLICK": 0.16,
    "OUTBOUND_CLICK": 0.10,
    "VIDEO_VIEW": 0.10,
    "COMMENT": 0.02,
    "REACTION": 0.04,
}
_VIDEO_VIEW_BOOST = 3.5
_ADVERTISER_OUTBOUND_BOOST = 2.0
"""Advertisers' pins link to their websites, so they get more outbound clicks."""

_WEEKDAY_VOLUME = (0.97, 0.96, 0.96, 0.97, 0.95, 1.04, 1.15)
"""Monday … Sunday: people plan on weekends."""
_DAILY_GROWTH = 0.002
_DAILY_NOISE = 0.03
_LOCAL_HOUR_VOLUME = (
    *(1.2, 0.7, 0.45, 0.35, 0.35, 0.5, 1.0, 1.9, 2.6, 2.9, 3.1, 3.4),
    *(3.8, 3.7, 3.5, 3.5, 3.7, 4.0, 4.6, 5.3, 5.9, 5.9, 4.7, 2.8),
)
"""Activity by local hour: a lunchtime bump and an evening peak."""

_ACCOUNT_NAME_PREFIXES = (
    *("Blue Harbor", "North Pine", "Golden Oak", "Little River", "Urban", "Wild Meadow"),
    *("Silver Birch", "Red Barn", "Cedar & Stone", "Maple Lane", "Sunset", "Coastal"),
    *("Evergreen", "Hearth", "Juniper", "Willow", "Bright", "Copper", "Ivory", "Summit"),
    *("Magnolia", "Prairie", "Aurora", "Lark", "Fern", "Olive", "Sage", "Honey", "Velvet"),
    *("Marigold", "Atlas", "Northwind", "Riverstone", "Bluebird", "Orchard", "Canyon"),
    *("Linen", "Everly", "Brookside", "Harbor"),
)
_ACCOUNT_NAME_NOUNS: dict[str, tuple[str, ...]] = {
    "animals": ("Paws", "Pet Supply", "Tails", "Kibble Co.", "Pet Care", "Critters"),
    "architecture": ("Architects", "Design Build", "Builders", "Homes", "Timber Frames", "Atelier"),
    "art": ("Art Supply", "Canvas", "Gallery", "Paint Co.", "Art Studio", "Prints"),
    "beauty": ("Beauty", "Cosmetics", "Skincare", "Salon", "Glow", "Lash Co."),
    "childrens_fashion": ("Kids", "Little Ones", "Baby Boutique", "Tots", "Kidswear", "Mini"),
    "design": ("Design Co.", "Studio", "Creative", "Type Foundry", "Design Lab", "Graphics"),
    "diy_and_crafts": ("Crafts", "Yarn Co.", "Fabrics", "Maker Supply", "Craft House", "Paper"),
    "education": ("Learning", "Academy", "Tutors", "Classroom", "Books", "Study Co."),
    "electronics": ("Electronics", "Tech", "Audio", "Gadgets", "Devices", "Labs"),
    "entertainment": ("Pictures", "Records", "Games", "Studios", "Streaming", "Media"),
    "event_planning": (
        "Party Supply",
        "Events",
        "Celebrations",
        "Balloons",
        "Party Co.",
        "Invites",
    ),
    "finance": ("Bank", "Credit Union", "Wealth", "Capital", "Finance", "Insurance"),
    "food_and_drinks": ("Kitchen", "Bakery", "Foods", "Coffee Roasters", "Pantry", "Brewing Co."),
    "gardening": ("Garden Center", "Nursery", "Seed Co.", "Greenhouse", "Plant Co.", "Landscapes"),
    "health": ("Wellness", "Fitness", "Nutrition", "Vitamins", "Health", "Yoga"),
    "home_decor": ("Home", "Furniture", "Interiors", "Living", "Rugs", "Decor"),
    "mens_fashion": ("Menswear", "Outfitters", "Tailors", "Denim Co.", "Supply Co.", "Clothiers"),
    "parenting": ("Baby", "Parenting", "Family", "Nursery Co.", "Maternity", "Kids Club"),
    "quotes": ("Prints", "Stationery", "Letterpress", "Greetings", "Paper Co.", "Posters"),
    "sport": ("Sports", "Athletics", "Outdoors", "Gear", "Running Co.", "Golf"),
    "travel": ("Travel", "Tours", "Resorts", "Hotels", "Getaways", "Adventures"),
    "vehicles": ("Motors", "Auto", "Cycles", "Automotive", "Tire Co.", "RV"),
    "wedding": ("Bridal", "Weddings", "Bride", "Rings", "Wedding Co.", "Florals"),
    "womens_fashion": ("Boutique", "Apparel", "Collective", "Jewelry", "Shoes", "Swim"),
}

# Id spaces that look like Pinterest's and never overlap each other.
_USER_ID_BASE = 549_755_813_888
_AD_ACCOUNT_ID_BASE = 549_000_000_000
_PIN_ID_BASE = 1_060_000_000_000_000_000


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

        taxonomy = _Taxonomy.build()
        _write(taxonomy.table(), out_dir / "interests.parquet")
        _write(_metros_table(), out_dir / "metros.parquet")
        bar.advance(tables_task)

        population = _Population.build(_rng(seed, "users"), users)
        _write(population.table(), out_dir / "users.parquet")
        bar.advance(tables_task)

        advertisers = _Advertisers.build(_rng(seed, "ad_accounts"), accounts)
        _write(advertisers.table(), out_dir / "ad_accounts.parquet")
        bar.advance(tables_task)

        n_pins = max(1_000, PINS_PER_USER * users, 10 * accounts)
        catalogue = _Catalogue.build(_rng(seed, "pins"), n_pins, advertisers, taxonomy)
        _write(catalogue.table(advertisers, taxonomy), out_dir / "pins.parquet")
        bar.advance(tables_task)

        day_counts = _events_per_day(_rng(seed, "volume"), first_day, days, total_events)
        events_task = bar.add_task("Events", total=total_events)
        for offset, count in enumerate(day_counts):
            day = first_day + dt.timedelta(days=offset)
            bar.update(events_task, description=f"Events {day.isoformat()}")
            if count:
                table = _day_of_events(
                    _rng(seed, "events", offset), day, int(count), population, catalogue
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


# --- randomness and output ----------------------------------------------------------------------


def _rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """An independent random stream per table (and per day), so that changing one table's model or
    size does not reshuffle the others, and days can be generated in any order."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), *extra])


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


def _strings(values: tuple[str, ...] | list[str], codes: npt.NDArray[Any]) -> pa.Array:
    """A string column from integer codes into ``values``; a negative code is a null."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.array(values, type=pa.string()).take(indices)


def _sample(
    rng: np.random.Generator, cumulative: _FloatArray, size: int, *, shuffled: bool = True
) -> _IntArray:
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


def _shares(weights: tuple[float, ...] | list[float]) -> _FloatArray:
    array = np.asarray(weights, dtype=np.float64)
    return array / array.sum()


def _metros_table() -> pa.Table:
    return pa.table(
        {
            "metro": pa.array([metro.code for metro in METROS], pa.string()),
            "name": pa.array([metro.name for metro in METROS], pa.string()),
        }
    )


# --- interests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Taxonomy:
    """The interest taxonomy as arrays, with how content spreads over each category's subtree."""

    ids: list[str]
    names: list[str]
    parent_ids: list[str | None]
    category: npt.NDArray[np.int64]
    """Index into ``CATEGORY_KEYS`` of each interest's level-1 ancestor-or-self."""
    level: npt.NDArray[np.int64]
    parent: npt.NDArray[np.int64]
    """Index of the parent interest, -1 for a category."""
    share_in_category: _FloatArray
    """Share of a category's pins that are tagged with this interest; sums to 1 per category."""

    @classmethod
    def build(cls) -> _Taxonomy:
        nodes = interests()
        index = {node.interest_id: i for i, node in enumerate(nodes)}
        category = np.array([CATEGORY_KEYS.index(node.category) for node in nodes])
        level = np.array([node.level for node in nodes])
        parent = np.array([index[node.parent_id] if node.parent_id else -1 for node in nodes])
        rank = np.array([node.rank for node in nodes], dtype=np.float64)
        has_children = np.zeros(len(nodes), dtype=bool)
        has_children[parent[parent >= 0]] = True

        # Pins are tagged with the most specific interest that fits: few with the bare category,
        # most with a subcategory, and with a level-3 interest under about half of the subcategories
        # that have them. Earlier siblings are the more popular ones.
        share = np.zeros(len(nodes))
        share[level == 1] = 0.12
        for c in range(len(CATEGORY_KEYS)):
            level2 = np.flatnonzero((level == 2) & (category == c))
            weights = 1.0 / (rank[level2] + 1.0) ** 0.7
            share[level2] = 0.88 * weights / weights.sum()
        for node in np.flatnonzero(has_children):
            children = np.flatnonzero(parent == node)
            weights = 1.0 / (rank[children] + 1.0) ** 0.5
            share[children] = 0.55 * share[node] * weights / weights.sum()
            share[node] *= 0.45
        return cls(
            ids=[node.interest_id for node in nodes],
            names=[node.name for node in nodes],
            parent_ids=[node.parent_id for node in nodes],
            category=category,
            level=level,
            parent=parent,
            share_in_category=share,
        )

    def table(self) -> pa.Table:
        return pa.table(
            {
                "interest_id": pa.array(self.ids, pa.string()),
                "name": pa.array(self.names, pa.string()),
                "parent_id": pa.array(self.parent_ids, pa.string()),
            }
        )

    def category_distribution(self, category: int) -> _FloatArray:
        """Probability over all interests of a pin of ``category`` being tagged with each."""
        return np.where(self.category == category, self.share_in_category, 0.0)


# --- users -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Population:
    """The users: reported demographics for the users table, latent tastes for the event model."""

    ids: npt.NDArray[np.int64]
    age: npt.NDArray[np.int64]
    gender: npt.NDArray[np.int64]
    country: npt.NDArray[np.int64]
    lowercase_country: npt.NDArray[np.bool_]
    metro: npt.NDArray[np.int64]
    device: npt.NDArray[np.int64]
    reported: dict[str, npt.NDArray[np.bool_]]
    """Per column, whether the value is reported (False: null in the users table)."""
    favourites: npt.NDArray[np.int64]
    """(users, 4) category indices, -1 where a user has fewer favourites."""
    favourite_cumulative: _FloatArray
    """(users, 4) cumulative attention over the favourites; the last reached column is 1.0."""
    wider_interests: npt.NDArray[np.int64]
    """(users, ``_WIDER_INTERESTS``) the user's best-liked categories, favourites first."""
    activity_cumulative: _FloatArray
    utc_offset_seconds: npt.NDArray[np.int64]

    @classmethod
    def build(cls, rng: np.random.Generator, n: int) -> _Population:
        ids = _USER_ID_BASE + np.cumsum(rng.integers(1, 2_000, n, dtype=np.int64))
        age = rng.choice(len(AGE_BUCKETS), n, p=_shares(_AGE_SHARES))
        gender = rng.choice(len(GENDERS), n, p=_shares(_GENDER_SHARES))
        country = rng.choice(len(COUNTRIES), n, p=_shares([c.weight for c in COUNTRIES]))
        lowercase_country = rng.random(n) < _LOWERCASE_COUNTRY_RATE
        in_us = country == [c.code for c in COUNTRIES].index("US")
        metro = np.full(n, -1, dtype=np.int64)
        metro[in_us] = rng.choice(
            len(METROS), int(in_us.sum()), p=_shares([m.households for m in METROS])
        )
        device = np.where(
            in_us,
            rng.choice(len(DEVICES), n, p=_shares(_DEVICE_SHARES_US)),
            rng.choice(len(DEVICES), n, p=_shares(_DEVICE_SHARES_ELSEWHERE)),
        )
        reported = {column: rng.random(n) >= rate for column, rate in _NULL_RATE.items()}

        favourites, favourite_cumulative, wider = _favourite_categories(rng, age, gender)
        rank = rng.permutation(n) + 1.0
        activity = (rank + _USER_ACTIVITY_OFFSET * n) ** -_USER_ACTIVITY_EXPONENT
        activity *= np.asarray(_DEVICE_ACTIVITY)[device]
        offsets = np.array([c.utc_offset_hours for c in COUNTRIES]) * 3600
        return cls(
            ids=ids,
            age=age,
            gender=gender,
            country=country,
            lowercase_country=lowercase_country,
            metro=metro,
            device=device,
            reported=reported,
            favourites=favourites,
            favourite_cumulative=favourite_cumulative,
            wider_interests=wider,
            activity_cumulative=np.cumsum(activity),
            utc_offset_seconds=offsets[country].astype(np.int64),
        )

    def table(self) -> pa.Table:
        codes = [c.code for c in COUNTRIES]
        country_values = codes + [code.lower() for code in codes]
        country = self.country + len(codes) * self.lowercase_country
        metro = np.where(self.reported["metro"], self.metro, -1)
        return pa.table(
            {
                "user_id": pa.array(self.ids, pa.int64()),
                "age_bucket": _strings(AGE_BUCKETS, np.where(self.reported["age"], self.age, -1)),
                "gender": _strings(GENDERS, np.where(self.reported["gender"], self.gender, -1)),
                "country": _strings(
                    country_values, np.where(self.reported["country"], country, -1)
                ),
                "metro": _strings([m.code for m in METROS], metro),
                "device": _strings(DEVICES, np.where(self.reported["device"], self.device, -1)),
            }
        )


def _favourite_categories(
    rng: np.random.Generator, age: npt.NDArray[np.int64], gender: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], _FloatArray, npt.NDArray[np.int64]]:
    """Rank the categories by taste for every user, biased by gender and age: the first 2-4 are
    the user's favourites, the first ``_WIDER_INTERESTS`` their wider interests.

    Gumbel top-k: adding Gumbel noise to log-weights and keeping the k largest samples k categories
    without replacement, proportionally to the weights, for every user at once.
    """
    popularity = np.array([_CATEGORY_POPULARITY[key] for key in CATEGORY_KEYS])
    gender_factor = np.array(
        [[_GENDER_AFFINITY[g].get(key, 1.0) for key in CATEGORY_KEYS] for g in GENDERS]
    )
    age_factor = np.array(
        [[_AGE_AFFINITY[a].get(key, 1.0) for key in CATEGORY_KEYS] for a in AGE_BUCKETS]
    )
    log_weights = np.log(popularity * gender_factor[:, None, :] * age_factor[None, :, :])
    n = len(age)
    keys = log_weights[gender, age] + rng.gumbel(size=(n, len(CATEGORY_KEYS)))
    # Tastes cluster: whoever loves food is likelier than others to like health and party planning.
    first = np.argmax(keys, axis=1)
    keys += np.log(_category_kinship())[first]
    keys[np.arange(n), first] = np.inf
    best = np.argpartition(-keys, _WIDER_INTERESTS - 1, axis=1)[:, :_WIDER_INTERESTS]
    order = np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1)
    ranked = np.take_along_axis(best, order, axis=1).astype(np.int64)

    count = 2 + rng.choice(3, n, p=_shares(_FAVOURITE_COUNT_SHARES))
    has = np.arange(4)[None, :] < count[:, None]
    favourites = np.where(has, ranked[:, :4], -1)
    attention = np.where(has, np.asarray(_FAVOURITE_STRENGTH)[None, :], 0.0)
    cumulative = np.cumsum(attention, axis=1) / attention.sum(axis=1, keepdims=True)
    cumulative[np.arange(n), count - 1] = 1.0
    cumulative[~has] = 1.0
    return favourites, cumulative, ranked


def _category_kinship() -> _FloatArray:
    """(category, category) taste multipliers: ``_RELATED_CATEGORY_AFFINITY`` between related
    categories (either way round), 1.0 otherwise."""
    kinship = np.ones((len(CATEGORY_KEYS), len(CATEGORY_KEYS)))
    for key, related in _RELATED_CATEGORIES.items():
        for other in related:
            a, b = CATEGORY_KEYS.index(key), CATEGORY_KEYS.index(other)
            kinship[a, b] = kinship[b, a] = _RELATED_CATEGORY_AFFINITY
    return kinship


# --- advertisers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Advertisers:
    """Ad accounts: ids, readable names, one or two focus categories, a Zipf-distributed size."""

    ids: list[str]
    names: list[str]
    primary: npt.NDArray[np.int64]
    secondary: npt.NDArray[np.int64]
    """-1 for an advertiser with a single focus category."""
    size: _FloatArray

    @classmethod
    def build(cls, rng: np.random.Generator, n: int) -> _Advertisers:
        numbers = _AD_ACCOUNT_ID_BASE + np.cumsum(rng.integers(1_000, 100_000, n, dtype=np.int64))
        popularity = _shares([_ADVERTISER_POPULARITY[key] for key in CATEGORY_KEYS])
        primary = rng.choice(len(CATEGORY_KEYS), n, p=popularity)
        secondary = np.full(n, -1, dtype=np.int64)
        for a in np.flatnonzero(rng.random(n) < _SECOND_FOCUS_RATE):
            related = _RELATED_CATEGORIES[CATEGORY_KEYS[primary[a]]]
            secondary[a] = CATEGORY_KEYS.index(related[rng.integers(len(related))])
        size = ((rng.permutation(n) + 1.0) ** -_ADVERTISER_SIZE_EXPONENT).astype(np.float64)
        return cls(
            ids=[str(number) for number in numbers],
            names=_account_names(rng, primary),
            primary=primary,
            secondary=secondary,
            size=size,
        )

    def table(self) -> pa.Table:
        return pa.table(
            {
                "ad_account_id": pa.array(self.ids, pa.string()),
                "name": pa.array(self.names, pa.string()),
            }
        )


def _account_names(rng: np.random.Generator, primary: npt.NDArray[np.int64]) -> list[str]:
    """Unique, readable business names that fit each advertiser's main category."""
    taken: set[str] = set()
    names: list[str] = []
    for category in primary:
        nouns = _ACCOUNT_NAME_NOUNS[CATEGORY_KEYS[category]]
        for _attempt in range(50):
            prefix = _ACCOUNT_NAME_PREFIXES[rng.integers(len(_ACCOUNT_NAME_PREFIXES))]
            name = f"{prefix} {nouns[rng.integers(len(nouns))]}"
            if name not in taken:
                break
        suffix = 2
        base = name
        while name in taken:
            name = f"{base} {suffix}"
            suffix += 1
        taken.add(name)
        names.append(name)
    return names


# --- pins ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalogue:
    """The pins, and per category the cumulative popularity used to pick what a user sees."""

    ids: npt.NDArray[np.int64]
    account: npt.NDArray[np.int64]
    """Index of the owning advertiser, -1 for organic content."""
    interest: npt.NDArray[np.int64]
    """Index into the taxonomy, -1 for an untagged pin."""
    is_video: npt.NDArray[np.bool_]
    group_pins: list[npt.NDArray[np.int64]]
    """Per category (and last: untagged pins) the indices of its pins …"""
    group_cumulative: list[_FloatArray]
    """… and their cumulative popularity."""
    exploration_cumulative: _FloatArray
    """Cumulative popularity per group: what the feed shows when it is not following interests."""

    @classmethod
    def build(
        cls, rng: np.random.Generator, n: int, advertisers: _Advertisers, taxonomy: _Taxonomy
    ) -> _Catalogue:
        n_accounts = len(advertisers.ids)
        per_account = 1 + _apportion(
            advertisers.size, max(0, round(n * _ADVERTISER_PIN_SHARE) - n_accounts)
        )
        category_popularity = _shares([_CATEGORY_POPULARITY[key] for key in CATEGORY_KEYS])
        organic = (category_popularity[taxonomy.category]) * taxonomy.share_in_category
        organic /= organic.sum()

        n_owned = int(per_account.sum())
        account = np.concatenate(
            [np.repeat(np.arange(n_accounts), per_account), np.full(n - n_owned, -1)]
        )
        interest = np.empty(n, dtype=np.int64)
        start = 0
        for a in range(n_accounts):
            count = int(per_account[a])
            focus = _focus_distribution(rng, taxonomy, advertisers, a)
            mix = _ADVERTISER_ON_FOCUS * focus + (1 - _ADVERTISER_ON_FOCUS) * organic
            interest[start : start + count] = rng.choice(len(mix), count, p=mix / mix.sum())
            start += count
        interest[n_owned:] = rng.choice(len(organic), n - n_owned, p=organic)
        interest[rng.random(n) < _NULL_INTEREST_RATE] = -1

        order = rng.permutation(n)  # interleave advertisers' and organic pins in id order
        account, interest = account[order], interest[order]
        ids = _PIN_ID_BASE + np.cumsum(rng.integers(1, 1_000_000_000, n, dtype=np.int64))
        is_video = rng.random(n) < _VIDEO_PIN_RATE
        popularity = rng.pareto(_PIN_POPULARITY_TAIL, n) + 1.0
        popularity[account >= 0] *= _PROMOTED_BOOST

        n_groups = len(CATEGORY_KEYS) + 1
        group = np.where(interest >= 0, taxonomy.category[np.maximum(interest, 0)], n_groups - 1)
        group_pins = [np.flatnonzero(group == g) for g in range(n_groups)]
        group_cumulative = [np.cumsum(popularity[pins]) for pins in group_pins]
        mass = np.array([c[-1] if len(c) else 0.0 for c in group_cumulative])
        return cls(
            ids=ids,
            account=account,
            interest=interest,
            is_video=is_video,
            group_pins=group_pins,
            group_cumulative=group_cumulative,
            exploration_cumulative=np.cumsum(mass),
        )

    def table(self, advertisers: _Advertisers, taxonomy: _Taxonomy) -> pa.Table:
        return pa.table(
            {
                "pin_id": pa.array(self.ids, pa.int64()),
                "ad_account_id": _strings(advertisers.ids, self.account),
                "interest_id": _strings(taxonomy.ids, self.interest),
            }
        )


def _focus_distribution(
    rng: np.random.Generator, taxonomy: _Taxonomy, advertisers: _Advertisers, account: int
) -> _FloatArray:
    """What an advertiser's on-focus pins are about: its main category, concentrated on one to
    three specialty subcategories (a food brand that is mostly about baking), plus its second
    focus category if it has one."""
    primary = taxonomy.category_distribution(int(advertisers.primary[account]))
    level2 = np.flatnonzero(
        (taxonomy.category == advertisers.primary[account]) & (taxonomy.level == 2)
    )
    specialties = min(len(level2), int(rng.integers(1, 4)))
    chosen = rng.choice(level2, size=specialties, replace=False)
    in_specialty = np.isin(np.arange(len(primary)), chosen) | np.isin(taxonomy.parent, chosen)
    specialty = np.where(in_specialty, taxonomy.share_in_category, 0.0)
    main = 0.5 * primary + 0.5 * specialty / specialty.sum()
    if advertisers.secondary[account] < 0:
        return main
    second = taxonomy.category_distribution(int(advertisers.secondary[account]))
    return 0.7 * main + 0.3 * second


def _apportion(weights: _FloatArray, total: int) -> _IntArray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder), exactly."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    remainder = total - int(counts.sum())
    if remainder:
        counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    return counts


# --- events ----------------------------------------------------------------------------------------


def _events_per_day(
    rng: np.random.Generator, first_day: dt.date, days: int, total: int
) -> _IntArray:
    """Exactly ``total`` events over the days: weekly rhythm, slow growth, some noise."""
    weekday = np.array([(first_day + dt.timedelta(days=d)).weekday() for d in range(days)])
    volume = np.asarray(_WEEKDAY_VOLUME)[weekday] * (1 + _DAILY_GROWTH * np.arange(days))
    volume *= rng.lognormal(0.0, _DAILY_NOISE, days)
    return _apportion(volume, total)


def _event_type_table() -> _FloatArray:
    """Cumulative event-type probabilities for each (engagement level, video pin, advertiser's pin),
    the engagement level indexing ``_ENGAGEMENT_RATE``."""
    rows = []
    for engagement_rate in _ENGAGEMENT_RATE:
        for video in (False, True):
            for owned in (False, True):
                mix = dict(_ENGAGEMENT_MIX)
                mix["VIDEO_VIEW"] *= _VIDEO_VIEW_BOOST if video else 0.0
                if owned:
                    mix["OUTBOUND_CLICK"] *= _ADVERTISER_OUTBOUND_BOOST
                scale = engagement_rate / sum(mix.values())
                rows.append([1 - engagement_rate] + [mix[name] * scale for name in EVENT_TYPES[1:]])
    cumulative = np.cumsum(np.array(rows), axis=1)
    cumulative[:, -1] = 1.0
    return cumulative


_EVENT_TYPE_CUMULATIVE = _event_type_table()
_LOCAL_HOUR_CUMULATIVE = np.cumsum(_LOCAL_HOUR_VOLUME)


def _day_of_events(
    rng: np.random.Generator,
    day: dt.date,
    count: int,
    population: _Population,
    catalogue: _Catalogue,
) -> pa.Table:
    """One UTC day of events, sorted by time."""
    # Users come out in index order, which keeps the per-user lookups below cache-friendly; every
    # other draw is independent of the user, and the day is sorted by time at the end.
    user = _sample(rng, population.activity_cumulative, count, shuffled=False)

    interest_driven = rng.random(count) < _INTEREST_DRIVEN_RATE
    pick = (rng.random(count)[:, None] >= population.favourite_cumulative[user]).sum(axis=1)
    favourite = population.favourites[user, np.minimum(pick, 3)]
    explored = _sample(rng, catalogue.exploration_cumulative, count)
    group = np.where(interest_driven, favourite, explored)

    pin = np.empty(count, dtype=np.int64)
    for g, (pins, cumulative) in enumerate(
        zip(catalogue.group_pins, catalogue.group_cumulative, strict=True)
    ):
        members = np.flatnonzero(group == g)
        if not len(members):
            continue
        if not len(pins):  # a category without content in a tiny dataset: show anything
            group[members] = len(catalogue.group_pins)
            continue
        pin[members] = pins[_sample(rng, cumulative, len(members))]
    orphans = np.flatnonzero(group == len(catalogue.group_pins))
    pin[orphans] = rng.integers(0, len(catalogue.ids), len(orphans))

    in_wider = (population.wider_interests[user] == group[:, None]).any(axis=1)
    level = np.where(interest_driven, 2, in_wider.astype(np.int64))
    row = (
        4 * level
        + 2 * catalogue.is_video[pin].astype(np.int64)
        + (catalogue.account[pin] >= 0).astype(np.int64)
    )
    event_type = (rng.random(count)[:, None] >= _EVENT_TYPE_CUMULATIVE[row, :-1]).sum(axis=1)

    local_hour = _sample(rng, _LOCAL_HOUR_CUMULATIVE, count)
    local_millis = local_hour * 3_600_000 + rng.integers(0, 3_600_000, count)
    utc_millis = (local_millis - population.utc_offset_seconds[user] * 1000) % 86_400_000
    day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    micros = int(day_start.timestamp()) * 1_000_000 + utc_millis * 1000

    order = np.argsort(micros, kind="stable")
    return pa.table(
        {
            "event_time": pa.array(micros[order], pa.timestamp("us", tz="UTC")),
            "user_id": pa.array(population.ids[user[order]], pa.int64()),
            "pin_id": pa.array(catalogue.ids[pin[order]], pa.int64()),
            "event_type": _strings(EVENT_TYPES, event_type[order]),
        }
    )
