"""The input data contract (SPEC §2) as data: tables, columns, types, rules.

Everything that checks input — the portable validation expressions, the loaders, the docs — reads the
rules from here, so a rule changes in exactly one place.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from enum import StrEnum

import pycountry

from pinsights.contract import AD_ACCOUNT_COUNTRIES, AD_ACCOUNT_CURRENCIES


class Kind(StrEnum):
    """How a column's values are typed and checked."""

    DIGITS = "digits"  # a non-empty string of 0-9 (ids that must stay strings, even in CSV)
    STRING = "string"
    INT64 = "int64"
    TIMESTAMP = "timestamp"  # UTC; ISO 8601 text in CSV/JSONL, offsets converted to UTC


class Case(StrEnum):
    """How a column's text is normalised before it is compared with its value set (and kept)."""

    LOWER = "lower"  # users' countries: the demographics' keys are lower case
    UPPER = "upper"  # ad accounts' countries and currencies: served as the v5 enums spell them


class Rule(StrEnum):
    """Why a row was quarantined; a row gets the first rule it breaks, in this order."""

    MALFORMED = "malformed"
    BAD_VALUE = "bad_value"
    DUPLICATE_KEY = "duplicate_key"
    UNKNOWN_REFERENCE = "unknown_reference"


AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-49", "50-54", "55-64", "65+")
GENDERS = ("female", "male", "unspecified")
DEVICES = ("android_mobile", "android_tablet", "ipad", "iphone", "web", "web_mobile")
EVENT_TYPES = (
    "IMPRESSION",
    "CLOSEUP",
    "SAVE",
    "PIN_CLICK",
    "OUTBOUND_CLICK",
    "VIDEO_VIEW",
    "COMMENT",
    "REACTION",
)
#: Every event type except this one is an engagement.
NOT_ENGAGEMENT = "IMPRESSION"
#: ISO 3166-1 alpha-2 codes, lower case (the contract accepts any case).
COUNTRY_CODES = tuple(sorted(c.alpha_2.lower() for c in pycountry.countries))


@dataclass(frozen=True)
class Column:
    """One column of an input table.

    ``required`` is about values (a null breaks the row); ``optional`` is about the column itself:
    a table's files may lack it altogether, and every value is then null. A column that is not
    optional must be in the files, even if all its values are null.
    """

    name: str
    kind: Kind
    required: bool = False
    allowed: tuple[str, ...] | None = None  # the value set, compared after ``case``
    case: Case | None = None  # any case accepted, normalised to this one (and kept so)
    max_length: int | None = None
    references: str | None = None  # table whose primary key a non-null value must name
    optional: bool = False

    @functools.cached_property
    def accepted(self) -> tuple[str, ...] | None:
        """The values the input may hold: ``allowed``, in every ASCII case when ``case`` is set.

        Spelled out rather than compared after lower() or upper(): those follow Unicode, so
        ``"\u212ar"`` (Kelvin sign) would lower to ``kr`` and ``"ß"`` upper to ``SS`` (on Spark),
        which no one means as a country code.
        """
        if self.allowed is None or self.case is None:
            return self.allowed
        spellings = (
            "".join(letters)
            for value in self.allowed
            for letters in itertools.product(*({c.lower(), c.upper()} for c in value))
        )
        return tuple(sorted(set(spellings)))


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: str | None = None
    optional: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def needed_column_names(self) -> tuple[str, ...]:
        """The columns the files must have (a table lacking one is refused)."""
        return tuple(c.name for c in self.columns if not c.optional)

    def absent_columns(self, present: set[str]) -> tuple[str, ...]:
        """The optional columns not among ``present``: every value of theirs is null."""
        return tuple(c.name for c in self.columns if c.optional and c.name not in present)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


INTERESTS = Table(
    "interests",
    (
        Column("interest_id", Kind.DIGITS, required=True),
        Column("name", Kind.STRING, required=True),
        # A parent must be another used interest; checked as reachability from the categories, so
        # cycles and chains to quarantined interests are unknown_reference too (see engine docs).
        Column("parent_id", Kind.DIGITS, references="interests"),
    ),
    primary_key="interest_id",
)
AD_ACCOUNTS = Table(
    "ad_accounts",
    (
        Column("ad_account_id", Kind.DIGITS, required=True, max_length=18),
        Column("name", Kind.STRING, required=True),
        # What ad_accounts/get says of the account where the input knows it; a value outside the
        # v5 enum is a bad_value like any other (the row is used whole or not at all).
        Column(
            "country", Kind.STRING, allowed=AD_ACCOUNT_COUNTRIES, case=Case.UPPER, optional=True
        ),
        Column(
            "currency", Kind.STRING, allowed=AD_ACCOUNT_CURRENCIES, case=Case.UPPER, optional=True
        ),
    ),
    primary_key="ad_account_id",
)
USERS = Table(
    "users",
    (
        Column("user_id", Kind.INT64, required=True),
        Column("age_bucket", Kind.STRING, allowed=AGE_BUCKETS),
        Column("gender", Kind.STRING, allowed=GENDERS),
        Column("country", Kind.STRING, allowed=COUNTRY_CODES, case=Case.LOWER),
        Column("metro", Kind.STRING),
        Column("device", Kind.STRING, allowed=DEVICES),
    ),
    primary_key="user_id",
)
METROS = Table(
    "metros",
    (
        Column("metro", Kind.STRING, required=True),
        Column("name", Kind.STRING, required=True),
    ),
    primary_key="metro",
    optional=True,
)
PINS = Table(
    "pins",
    (
        Column("pin_id", Kind.INT64, required=True),
        Column("ad_account_id", Kind.STRING, references="ad_accounts"),
        Column("interest_id", Kind.STRING, references="interests"),
    ),
    primary_key="pin_id",
)
EVENTS = Table(
    "events",
    (
        Column("event_time", Kind.TIMESTAMP, required=True),
        Column("user_id", Kind.INT64, required=True, references="users"),
        Column("pin_id", Kind.INT64, required=True, references="pins"),
        Column("event_type", Kind.STRING, required=True, allowed=EVENT_TYPES),
    ),
)

#: What the input may say of an ad account beside its id (``name``, and ``country`` and
#: ``currency`` where the table has such columns): carried into each snapshot's accounts table.
ACCOUNT_DETAILS = ("name", "country", "currency")

#: Columns every engine's reader adds to a raw table (see pinsights.data.sources), never part of
#: a row's values: the file a row came from; for lines that cannot be read as a row, a flag (every
#: contract column is null then), the raw text (also of every JSON line, null for CSV and Parquet
#: rows) and the line number in the file (1-based; a CSV header is line 1).
SOURCE_FILE = "__source_file"
MALFORMED = "__malformed"
TEXT = "__text"
LINE = "__line"
READER_COLUMNS = frozenset({SOURCE_FILE, MALFORMED, TEXT, LINE})

#: In the order rows are judged: a reference is checked against the used rows of an earlier table.
TABLES: tuple[Table, ...] = (INTERESTS, AD_ACCOUNTS, USERS, METROS, PINS, EVENTS)
TABLES_BY_NAME = {t.name: t for t in TABLES}
