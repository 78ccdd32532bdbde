"""The synthetic users: reported demographics for the users table, latent tastes for the events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pinsights.data.tables import AGE_BUCKETS, GENDERS
from pinsights.synthetic.geography import COUNTRIES, METROS
from pinsights.synthetic.parameters import (
    AGE_AFFINITY,
    AGE_SHARES,
    CATEGORY_POPULARITY,
    DEVICE_ACTIVITY,
    DEVICE_SHARES_ELSEWHERE,
    DEVICE_SHARES_US,
    DEVICES,
    FAVOURITE_COUNT_SHARES,
    FAVOURITE_STRENGTH,
    GENDER_AFFINITY,
    GENDER_SHARES,
    LOWERCASE_COUNTRY_RATE,
    NULL_RATE,
    RELATED_CATEGORIES,
    RELATED_CATEGORY_AFFINITY,
    USER_ACTIVITY_EXPONENT,
    USER_ACTIVITY_OFFSET,
    USER_ID_BASE,
    WIDER_INTERESTS,
)
from pinsights.synthetic.sampling import FloatArray, shares, strings
from pinsights.synthetic.taxonomy import CATEGORY_KEYS


def metros_table() -> pa.Table:
    return pa.table(
        {
            "metro": pa.array([metro.code for metro in METROS], pa.string()),
            "name": pa.array([metro.name for metro in METROS], pa.string()),
        }
    )


@dataclass(frozen=True)
class Population:
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
    favourite_cumulative: FloatArray
    """(users, 4) cumulative attention over the favourites; the last reached column is 1.0."""
    wider_interests: npt.NDArray[np.int64]
    """(users, ``WIDER_INTERESTS``) the user's best-liked categories, favourites first."""
    activity_cumulative: FloatArray
    utc_offset_seconds: npt.NDArray[np.int64]

    @classmethod
    def build(cls, rng: np.random.Generator, n: int) -> Population:
        ids = USER_ID_BASE + np.cumsum(rng.integers(1, 2_000, n, dtype=np.int64))
        age = rng.choice(len(AGE_BUCKETS), n, p=shares(AGE_SHARES))
        gender = rng.choice(len(GENDERS), n, p=shares(GENDER_SHARES))
        country = rng.choice(len(COUNTRIES), n, p=shares([c.weight for c in COUNTRIES]))
        lowercase_country = rng.random(n) < LOWERCASE_COUNTRY_RATE
        in_us = country == [c.code for c in COUNTRIES].index("US")
        metro = np.full(n, -1, dtype=np.int64)
        metro[in_us] = rng.choice(
            len(METROS), int(in_us.sum()), p=shares([m.households for m in METROS])
        )
        device = np.where(
            in_us,
            rng.choice(len(DEVICES), n, p=shares(DEVICE_SHARES_US)),
            rng.choice(len(DEVICES), n, p=shares(DEVICE_SHARES_ELSEWHERE)),
        )
        reported = {column: rng.random(n) >= rate for column, rate in NULL_RATE.items()}

        favourites, favourite_cumulative, wider = _favourite_categories(rng, age, gender)
        rank = rng.permutation(n) + 1.0
        activity = (rank + USER_ACTIVITY_OFFSET * n) ** -USER_ACTIVITY_EXPONENT
        activity *= np.asarray(DEVICE_ACTIVITY)[device]
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
                "age_bucket": strings(AGE_BUCKETS, np.where(self.reported["age"], self.age, -1)),
                "gender": strings(GENDERS, np.where(self.reported["gender"], self.gender, -1)),
                "country": strings(country_values, np.where(self.reported["country"], country, -1)),
                "metro": strings([m.code for m in METROS], metro),
                "device": strings(DEVICES, np.where(self.reported["device"], self.device, -1)),
            }
        )


def _favourite_categories(
    rng: np.random.Generator, age: npt.NDArray[np.int64], gender: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], FloatArray, npt.NDArray[np.int64]]:
    """Rank the categories by taste for every user, biased by gender and age: the first 2-4 are
    the user's favourites, the first ``WIDER_INTERESTS`` their wider interests.

    Gumbel top-k: adding Gumbel noise to log-weights and keeping the k largest samples k categories
    without replacement, proportionally to the weights, for every user at once.
    """
    popularity = np.array([CATEGORY_POPULARITY[key] for key in CATEGORY_KEYS])
    gender_factor = np.array(
        [[GENDER_AFFINITY[g].get(key, 1.0) for key in CATEGORY_KEYS] for g in GENDERS]
    )
    age_factor = np.array(
        [[AGE_AFFINITY[a].get(key, 1.0) for key in CATEGORY_KEYS] for a in AGE_BUCKETS]
    )
    log_weights = np.log(popularity * gender_factor[:, None, :] * age_factor[None, :, :])
    n = len(age)
    keys = log_weights[gender, age] + rng.gumbel(size=(n, len(CATEGORY_KEYS)))
    # Tastes cluster: whoever loves food is likelier than others to like health and party planning.
    first = np.argmax(keys, axis=1)
    keys += np.log(_category_kinship())[first]
    keys[np.arange(n), first] = np.inf
    best = np.argpartition(-keys, WIDER_INTERESTS - 1, axis=1)[:, :WIDER_INTERESTS]
    order = np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1)
    ranked = np.take_along_axis(best, order, axis=1).astype(np.int64)

    count = 2 + rng.choice(3, n, p=shares(FAVOURITE_COUNT_SHARES))
    has = np.arange(4)[None, :] < count[:, None]
    favourites = np.where(has, ranked[:, :4], -1)
    attention = np.where(has, np.asarray(FAVOURITE_STRENGTH)[None, :], 0.0)
    cumulative = np.cumsum(attention, axis=1) / attention.sum(axis=1, keepdims=True)
    cumulative[np.arange(n), count - 1] = 1.0
    cumulative[~has] = 1.0
    return favourites, cumulative, ranked


def _category_kinship() -> FloatArray:
    """(category, category) taste multipliers: ``RELATED_CATEGORY_AFFINITY`` between related
    categories (either way round), 1.0 otherwise."""
    kinship = np.ones((len(CATEGORY_KEYS), len(CATEGORY_KEYS)))
    for key, related in RELATED_CATEGORIES.items():
        for other in related:
            a, b = CATEGORY_KEYS.index(key), CATEGORY_KEYS.index(other)
            kinship[a, b] = kinship[b, a] = RELATED_CATEGORY_AFFINITY
    return kinship
