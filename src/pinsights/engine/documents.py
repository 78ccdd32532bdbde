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

from pinsights.engine.categories import (
    AudienceKey,
    CategoryWriter,
    InterestCells,
    QuotientTexts,
)
from pinsights.engine.demographics import DemographicCells, DemographicWriter
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.semantics import (
    DEMOGRAPHICS,
    PINTEREST_TOTAL_AUDIENCE,
    YOUR_ENGAGED_AUDIENCE,
    YOUR_TOTAL_AUDIENCE,
)

#: The account id under which audiences shared by every account (P) are kept: the
#: PINTEREST_TOTAL_AUDIENCE document is the same for every account and stored once.
SHARED_ACCOUNT = ""

P_KEY: AudienceKey = (SHARED_ACCOUNT, PINTEREST_TOTAL_AUDIENCE)
ACCOUNT_INSIGHT_TYPES = (YOUR_TOTAL_AUDIENCE, YOUR_ENGAGED_AUDIENCE)

AGE_ORDER = ("18-24", "25-34", "35-44", "45-49", "50-54", "55-64", "65+", "unknown")
AGE_RANK = {age: position for position, age in enumerate(AGE_ORDER)}
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
    """Exact counts per audience, cells below the privacy threshold already removed.

    The interest counts are either ``interests`` (per audience, interest id → users: the DP
    release's) or, when set, ``interest_cells``: the engine's counts kept as columns
    (:class:`~pinsights.engine.categories.InterestCells`), never made into per-cell values; the
    demographic counts likewise ``demographics`` or ``demographic_cells``
    (:class:`~pinsights.engine.demographics.DemographicCells`).
    """

    sizes: dict[AudienceKey, int]
    interests: dict[AudienceKey, dict[str, int]]
    demographics: dict[AudienceKey, dict[str, list[tuple[str, int]]]]
    interest_cells: InterestCells | None = None
    demographic_cells: DemographicCells | None = None

    def interest_rows(self) -> int:
        """Interest cells of every audience."""
        if self.interest_cells is not None:
            return len(self.interest_cells)
        return sum(len(cells) for cells in self.interests.values())

    def demographic_rows(self) -> int:
        """Demographic cells of every audience."""
        if self.demographic_cells is not None:
            return len(self.demographic_cells)
        return sum(
            len(values)
            for dimensions in self.demographics.values()
            for values in dimensions.values()
        )


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


def _json_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


class DocumentAssembler:
    """Turns :class:`Counts` into the documents of one snapshot.

    Documents are written as JSON text directly, fragment by fragment, with every id and name
    escaped once: serialising half a million small dicts with ``json.dumps`` was most of the time
    of this step. The bytes are exactly what ``json.dumps(document, ensure_ascii=False,
    separators=(",", ":"))`` gives (floats use ``repr``, as the json module does); a test holds
    the two equal.
    """

    def __init__(
        self, counts: Counts, catalogue: Catalogue, rules: PrivacyRules, date: str
    ) -> None:
        self.counts = counts
        self.catalogue = catalogue
        self.rules = rules
        self.date = date
        self.p_size = counts.sizes.get(P_KEY, 0)
        self._writer: CategoryWriter | None = None
        self._demographic_writer: DemographicWriter | None = None
        self._texts = QuotientTexts()  # shared by both writers
        self._interest_heads: dict[str, str] = {}
        self._prepared: dict[AudienceKey, tuple[str, dict[str, bytes]]] = {}
        self._prepared_demographics: dict[AudienceKey, str] = {}

    def prepare_categories(self, keys: list[AudienceKey]) -> None:
        """Write the interest part of these audiences' documents now, all at once (see
        :mod:`pinsights.engine.categories`): the build does it before the demographic counts are
        known, while the engine still counts them."""
        sizes = self.counts.sizes
        reportable = [k for k in keys if self.rules.audience_is_reportable(sizes.get(k, 0))]
        if not reportable:
            return
        if self._writer is None:
            cells = self.counts.interest_cells
            if cells is None:
                cells = InterestCells.from_mapping(self.counts.interests)
            self._writer = CategoryWriter(
                cells,
                self._interest_head,
                self.catalogue.categories,
                self.catalogue.parent_of_subcategory,
                P_KEY,
                self.p_size,
                self.rules.max_subcategories,
                self._texts,
            )
        written = self._writer.write(reportable, [sizes[k] for k in reportable])
        self._prepared.update(zip(reportable, written, strict=True))

    def prepare_demographics(self, keys: list[AudienceKey]) -> None:
        """Write the demographics of these audiences' documents now, all at once (see
        :mod:`pinsights.engine.demographics`), once the demographic counts are known."""
        sizes = self.counts.sizes
        reportable = [k for k in keys if self.rules.audience_is_reportable(sizes.get(k, 0))]
        if not reportable:
            return
        if self._demographic_writer is None:
            cells = self.counts.demographic_cells
            if cells is None:
                cells = DemographicCells.from_mapping(self.counts.demographics)
            self._demographic_writer = DemographicWriter(
                cells,
                self._demographic_head,
                [dimension for dimension, _, _ in DEMOGRAPHICS],
                AGE_RANK,
                {"countries": self.rules.max_countries, "metros": self.rules.max_metros},
                self._texts,
            )
        written = self._demographic_writer.write(reportable, [sizes[k] for k in reportable])
        self._prepared_demographics.update(zip(reportable, written, strict=True))

    def documents(self, ad_account_ids: list[str]) -> Iterator[Document]:
        """P's document once (under the shared account), then both documents of every account."""
        keys = [P_KEY, *((a, kind) for a in ad_account_ids for kind in ACCOUNT_INSIGHT_TYPES)]
        self.prepare_categories([key for key in keys if key not in self._prepared])
        self.prepare_demographics([key for key in keys if key not in self._prepared_demographics])
        for key in keys:
            yield self.document(key)

    def document(self, key: AudienceKey) -> Document:
        account, insight_type = key
        size = self.counts.sizes.get(key, 0)
        if not self.rules.audience_is_reportable(size):
            placeholder = _dumps(self.rules.placeholder(insight_type, self.date))
            return Document(account, insight_type, placeholder, {}, size, False)
        if key not in self._prepared:
            self.prepare_categories([key])
        if key not in self._prepared_demographics:
            self.prepare_demographics([key])
        categories, items = self._prepared.pop(key)
        body = (
            f'{{"type":{_json_string(insight_type)},"date":{_json_string(self.date)},'
            f'"size":{size},"size_is_upper_bound":false,"categories":[{categories}],'
            f'"demographics":{self._prepared_demographics.pop(key)}}}'
        )
        return Document(account, insight_type, body.encode(), items, size, True)

    def _interest_head(self, interest_id: str) -> str:
        """``"id":…,"key":…,"name":…`` of an interest, escaped once per build."""
        head = self._interest_heads.get(interest_id)
        if head is None:
            quoted = _json_string(interest_id)
            name = _json_string(self.catalogue.interest_names[interest_id])
            head = f'"id":{quoted},"key":{quoted},"name":{name}'
            self._interest_heads[interest_id] = head
        return head

    def _demographic_head(self, dimension: str, value: str) -> str:
        """``"key":…,"name":…`` of a demographic value (made once per value by the writer)."""
        name = _demographic_name(dimension, value, self.catalogue)
        return f'"key":{_json_string(value)},"name":{_json_string(name)}'
