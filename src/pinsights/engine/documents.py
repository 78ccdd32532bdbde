"""Assembling the served JSON documents from exact counts (SPEC §3 "Response content").

Counts arrive from the engine already stripped of cells below ``min_cell_size``; here they become
ratios and indexes with exact integer arithmetic, in the SPEC's order, serialised deterministically
(the same counts always give the same bytes).

Why integers and not floats: ``round(x, 4)`` of the *exact* quotient differs from rounding a double
when the quotient sits on a tie (1/20000 is 0.00005 exactly, its double is a hair above). We compute
``round(a/b, 4)`` with Python's own rule, round-half-even, on the rational a/b, then take the nearest
double, which prints as the 4-decimal value (``1.0``, never ``1``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import pycountry

from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.semantics import (
    DEMOGRAPHICS,
    PINTEREST_TOTAL_AUDIENCE,
    YOUR_ENGAGED_AUDIENCE,
    YOUR_TOTAL_AUDIENCE,
)
from pinsights.store import SHARED_ACCOUNT

AudienceKey = tuple[str, str]  # (ad_account_id, insight_type); P is (SHARED_ACCOUNT, P)
P_KEY: AudienceKey = (SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE)
ACCOUNT_INSIGHT_TYPES = (YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE)

AGE_ORDER = ("18-24", "25-34", "35-44", "45-49", "50-54", "55-64", "65+", "unknown")
UNKNOWN_NAME = "Unknown"
GENDER_NAMES = {"female": "Female", "male": "Male", "unspecified": "Unspecified"}
DEVICE_NAMES = {
    "android_mobile": "Android mobile",
    "android_tablet": "Android tablet",
    "ipad": "iPad",
    "iphone": "iPhone",
    "web": "Web",
    "web_mobile": "Mobile web",
}


def rounded_ratio(numerator: int, denominator: int) -> float:
    """``round(numerator / denominator, 4)`` on the exact rational, half to even, as a float."""
    quotient, remainder = divmod(numerator * 10_000, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient / 10_000


@cache
def country_name(key: str) -> str:
    """ISO 3166 English short name of a lower-case alpha-2 key."""
    country = pycountry.countries.get(alpha_2=key.upper())
    return UNKNOWN_NAME if country is None else str(country.name)


@dataclass
class Catalogue:
    """What names things: interests (levels 1 and 2) and metros."""

    interest_names: dict[str, str]
    categories: set[str]  # level-1 interest ids
    parent_of_subcategory: dict[str, str]  # level-2 id → its level-1 id
    metro_names: dict[str, str] = field(default_factory=dict)


@dataclass
class Counts:
    """Exact counts per audience, cells below the privacy threshold already removed."""

    sizes: dict[AudienceKey, int]
    interests: dict[AudienceKey, dict[str, int]]
    demographics: dict[AudienceKey, dict[str, list[tuple[str, int]]]]


@dataclass(frozen=True)
class Document:
    ad_account_id: str
    insight_type: str
    body: bytes
    #: Body of the deprecated category operation for every category the document lists.
    category_items: dict[str, bytes]
    size: int
    reportable: bool


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _demographic_name(dimension: str, key: str, catalogue: Catalogue) -> str:
    if key == "unknown":
        return UNKNOWN_NAME
    if dimension == "ages":
        return key
    if dimension == "genders":
        return GENDER_NAMES.get(key, key)
    if dimension == "countries":
        return country_name(key)
    if dimension == "metros":
        return catalogue.metro_names.get(key, key)
    return DEVICE_NAMES.get(key, key)


class DocumentAssembler:
    """Turns :class:`Counts` into the documents of one snapshot."""

    def __init__(
        self, counts: Counts, catalogue: Catalogue, rules: PrivacyRules, date: str
    ) -> None:
        self.counts = counts
        self.catalogue = catalogue
        self.rules = rules
        self.date = date
        self.p_size = counts.sizes.get(P_KEY, 0)
        self.p_interests = counts.interests.get(P_KEY, {})

    def documents(self, ad_account_ids: list[str]) -> Iterator[Document]:
        """P's document once (under the shared account), then both documents of every account."""
        yield self.document(P_KEY)
        for account in ad_account_ids:
            for insight_type in ACCOUNT_INSIGHT_TYPES:
                yield self.document((account, insight_type))

    def document(self, key: AudienceKey) -> Document:
        account, insight_type = key
        size = self.counts.sizes.get(key, 0)
        if not self.rules.audience_is_reportable(size):
            body = _dumps(self.rules.placeholder(insight_type, self.date))
            return Document(account, insight_type, body, {}, size, False)
        categories, items = self._categories(key, size)
        body = _dumps(
            {
                "type": insight_type,
                "date": self.date,
                "size": size,
                "size_is_upper_bound": False,
                "categories": categories,
                "demographics": self._demographics(key, size),
            }
        )
        return Document(account, insight_type, body, items, size, True)

    def _categories(
        self, key: AudienceKey, size: int
    ) -> tuple[list[dict[str, object]], dict[str, bytes]]:
        counts = self.counts.interests.get(key, {})
        catalogue = self.catalogue
        children: dict[str, list[tuple[str, int]]] = {}
        top: list[tuple[str, int]] = []
        for interest_id, users in counts.items():
            if interest_id in catalogue.categories:
                top.append((interest_id, users))
            elif interest_id in catalogue.parent_of_subcategory:
                parent = catalogue.parent_of_subcategory[interest_id]
                children.setdefault(parent, []).append((interest_id, users))
        top.sort(key=lambda item: (-item[1], item[0]))
        categories: list[dict[str, object]] = []
        items: dict[str, bytes] = {}
        for category_id, n_category in top:
            n_category_p = self.p_interests[category_id]
            subcategories = []
            for sub_id, n_sub in sorted(
                children.get(category_id, []), key=lambda item: (-item[1], item[0])
            ):
                subcategories.append(
                    {
                        "id": sub_id,
                        "key": sub_id,
                        "name": catalogue.interest_names[sub_id],
                        "ratio": rounded_ratio(n_sub, n_category),
                        "index": rounded_ratio(
                            n_sub * n_category_p, n_category * self.p_interests[sub_id]
                        ),
                    }
                )
            items[category_id] = _dumps({"items": subcategories})
            categories.append(
                {
                    "id": category_id,
                    "key": category_id,
                    "name": catalogue.interest_names[category_id],
                    "ratio": rounded_ratio(n_category, size),
                    "index": rounded_ratio(n_category * self.p_size, size * n_category_p),
                    "subcategories": subcategories[: self.rules.max_subcategories],
                }
            )
        return categories, items

    def _demographics(self, key: AudienceKey, size: int) -> dict[str, list[dict[str, object]]]:
        per_dimension = self.counts.demographics.get(key, {})
        limits = {"countries": self.rules.max_countries, "metros": self.rules.max_metros}
        result: dict[str, list[dict[str, object]]] = {}
        for dimension, _, _ in DEMOGRAPHICS:
            values = per_dimension.get(dimension, [])
            if dimension == "ages":
                rank = {age: position for position, age in enumerate(AGE_ORDER)}
                values = sorted(values, key=lambda item: rank.get(item[0], len(rank)))
            else:
                values = sorted(values, key=lambda item: (-item[1], item[0]))
            if dimension in limits:
                values = values[: limits[dimension]]
            result[dimension] = [
                {
                    "key": value,
                    "name": _demographic_name(dimension, value, self.catalogue),
                    "ratio": rounded_ratio(users, size),
                }
                for value, users in values
            ]
        return result
