"""The synthetic events: how many per day, and one UTC day of them at a time.

Every event is either interest-driven (a pin from one of the user's favourite categories, often
engaged with) or feed exploration (any pin, engaged with now and then when it touches one of the
user's wider interests), so engaged audiences really do over-index on an advertiser's categories.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from pinsights.data.tables import EVENT_TYPES
from pinsights.synthetic.content import Catalogue
from pinsights.synthetic.parameters import (
    ADVERTISER_OUTBOUND_BOOST,
    DAILY_GROWTH,
    DAILY_NOISE,
    ENGAGEMENT_MIX,
    ENGAGEMENT_RATE,
    INTEREST_DRIVEN_RATE,
    LOCAL_HOUR_VOLUME,
    VIDEO_VIEW_BOOST,
    WEEKDAY_VOLUME,
)
from pinsights.synthetic.sampling import FloatArray, IntArray, apportion, sample, strings
from pinsights.synthetic.users import Population


def events_per_day(rng: np.random.Generator, first_day: dt.date, days: int, total: int) -> IntArray:
    """Exactly ``total`` events over the days: weekly rhythm, slow growth, some noise."""
    weekday = np.array([(first_day + dt.timedelta(days=d)).weekday() for d in range(days)])
    volume = np.asarray(WEEKDAY_VOLUME)[weekday] * (1 + DAILY_GROWTH * np.arange(days))
    volume *= rng.lognormal(0.0, DAILY_NOISE, days)
    return apportion(volume, total)


def _event_type_table() -> FloatArray:
    """Cumulative event-type probabilities for each (engagement level, video pin, advertiser's pin),
    the engagement level indexing ``ENGAGEMENT_RATE``."""
    rows = []
    for engagement_rate in ENGAGEMENT_RATE:
        for video in (False, True):
            for owned in (False, True):
                mix = dict(ENGAGEMENT_MIX)
                mix["VIDEO_VIEW"] *= VIDEO_VIEW_BOOST if video else 0.0
                if owned:
                    mix["OUTBOUND_CLICK"] *= ADVERTISER_OUTBOUND_BOOST
                scale = engagement_rate / sum(mix.values())
                rows.append([1 - engagement_rate] + [mix[name] * scale for name in EVENT_TYPES[1:]])
    cumulative = np.cumsum(np.array(rows), axis=1)
    cumulative[:, -1] = 1.0
    return cumulative


EVENT_TYPE_CUMULATIVE = _event_type_table()


LOCAL_HOUR_CUMULATIVE = np.cumsum(LOCAL_HOUR_VOLUME)


def day_of_events(
    rng: np.random.Generator,
    day: dt.date,
    count: int,
    population: Population,
    catalogue: Catalogue,
) -> pa.Table:
    """One UTC day of events, sorted by time."""
    # Users come out in index order, which keeps the per-user lookups below cache-friendly; every
    # other draw is independent of the user, and the day is sorted by time at the end.
    user = sample(rng, population.activity_cumulative, count, shuffled=False)

    interest_driven = rng.random(count) < INTEREST_DRIVEN_RATE
    pick = (rng.random(count)[:, None] >= population.favourite_cumulative[user]).sum(axis=1)
    favourite = population.favourites[user, np.minimum(pick, 3)]
    explored = sample(rng, catalogue.exploration_cumulative, count)
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
        pin[members] = pins[sample(rng, cumulative, len(members))]
    orphans = np.flatnonzero(group == len(catalogue.group_pins))
    pin[orphans] = rng.integers(0, len(catalogue.ids), len(orphans))

    in_wider = (population.wider_interests[user] == group[:, None]).any(axis=1)
    level = np.where(interest_driven, 2, in_wider.astype(np.int64))
    row = (
        4 * level
        + 2 * catalogue.is_video[pin].astype(np.int64)
        + (catalogue.account[pin] >= 0).astype(np.int64)
    )
    event_type = (rng.random(count)[:, None] >= EVENT_TYPE_CUMULATIVE[row, :-1]).sum(axis=1)

    local_hour = sample(rng, LOCAL_HOUR_CUMULATIVE, count)
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
            "event_type": strings(EVENT_TYPES, event_type[order]),
        }
    )
