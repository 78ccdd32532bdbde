"""A brute-force reference of the SPEC (§2 input rules, §3 semantics), independent of the engine.

It is written from the SPEC alone with plain sets, dicts and fractions, and never imports
pinsights, so that it can disagree with the engine. Rows are given as written to a dataset:
values may be strings (CSV/JSONL text), ints, floats, None or datetimes (Parquet timestamps).
:func:`read_dataset` reads a dataset directory itself — Parquet with pyarrow, CSV with Python's
csv module (the header) and :func:`csv_fields` (each line, by the contract's rules) and JSON
Lines with its json module, line by line, gzip and zstd included — and finds
the malformed lines on its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pycountry

TABLE_ORDER = ("interests", "ad_accounts", "users", "metros", "pins", "events")
INSIGHT_TYPES = ("YOUR_TOTAL_AUDIENCE", "YOUR_ENGAGED_AUDIENCE", "PINTEREST_TOTAL_AUDIENCE")

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
GENDER_NAMES = {"female": "Female", "male": "Male", "unspecified": "Unspecified"}
DEVICE_NAMES = {
    "android_mobile": "Android mobile",
    "android_tablet": "Android tablet",
    "ipad": "iPad",
    "iphone": "iPhone",
    "web": "Web",
    "web_mobile": "Mobile web",
}
UNKNOWN = "unknown"
UNKNOWN_NAME = "Unknown"
MAX_COUNTRIES = 50
MAX_METROS = 50

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INT_TEXT = re.compile(r"-?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")

#: The v5 enums an ad account's country and currency come from, read from the wire contract itself.
_AD_ACCOUNT_SCHEMAS = json.loads(
    (Path(__file__).parent / "fixtures" / "ad-accounts.openapi.json").read_text()
)["components"]["schemas"]
AD_ACCOUNT_COUNTRIES = frozenset(_AD_ACCOUNT_SCHEMAS["Country"]["enum"])
AD_ACCOUNT_CURRENCIES = frozenset(_AD_ACCOUNT_SCHEMAS["Currency"]["enum"])

MALFORMED = "malformed"
BAD_VALUE = "bad_value"
DUPLICATE_KEY = "duplicate_key"
UNKNOWN_REFERENCE = "unknown_reference"


class _Bad(Exception):
    """A value breaks its column's type, set or pattern (or is a null in a required column)."""


# ---------------------------------------------------------------------------------------------
# Column parsers: each returns the value the semantics use, or raises _Bad.


def _is_null(value: Any) -> bool:
    return value is None


def parse_int64(value: Any) -> int:
    if _is_null(value) or isinstance(value, bool):
        raise _Bad
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value):
        number = int(value)
    else:
        raise _Bad
    if not INT64_MIN <= number <= INT64_MAX:
        raise _Bad
    return number


def parse_digits(value: Any, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise _Bad
    if max_length is not None and len(value) > max_length:
        raise _Bad
    return value


def parse_string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad
    return value


def parse_optional(parser: Any, value: Any) -> Any:
    return None if _is_null(value) else parser(value)


def parse_choice(choices: tuple[str, ...], value: Any) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _Bad
    return value


def parse_code(codes: frozenset[str], value: Any) -> str:
    """An upper-case code of ``codes`` (the v5 enums) given in any ASCII case."""
    if not isinstance(value, str) or not value.isascii() or value.upper() not in codes:
        raise _Bad
    return value.upper()


def parse_country(value: Any) -> str:
    """Returns the lower-case alpha-2 code of a valid ISO 3166-1 alpha-2 code given in any case."""
    if not isinstance(value, str) or len(value) != 2 or not value.isascii():
        raise _Bad
    if pycountry.countries.get(alpha_2=value.upper()) is None:
        raise _Bad
    return value.lower()


#: The ISO 8601 text the SPEC means: extended format, a date with an optional time and offset.
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?", re.ASCII
)


def parse_event_time(value: Any) -> dt.datetime:
    """An aware UTC datetime. Text is ISO 8601; without an offset it is UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        if not _ISO_8601.fullmatch(value):
            raise _Bad
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError as error:
            raise _Bad from error
    else:
        raise _Bad
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def country_name(key: str) -> str:
    country = pycountry.countries.get(alpha_2=key.upper())
    assert country is not None
    return str(country.name)


# ---------------------------------------------------------------------------------------------
# Result


@dataclass
class Reference:
    """What a build of the given rows must produce."""

    verdicts: list[tuple[str, int, str]]  # (table, row index, rule) of every quarantined row
    read: dict[str, int]
    used: dict[str, int]
    date: dt.date | None  # None: no valid event in the window (and no --allow-empty): must fail
    window_start: dt.date | None = None
    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # (ad_account_id, insight_type, category_id) -> {"items": [...]}; only known level-1 interests
    category_items: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    level1_interests: list[str] = field(default_factory=list)
    used_interests: list[str] = field(default_factory=list)
    ad_accounts: list[str] = field(default_factory=list)
    #: ad_account_id -> (name, country, currency) in the input (what the ad accounts' operations
    #: serve); country and currency upper case, None where the input has none
    ad_account_details: dict[str, tuple[str, str | None, str | None]] = field(default_factory=dict)
    #: (ad_account_id, insight_type) -> n(A), of every account's own audiences; P's (the same for
    #: every account) under the account id "" (the snapshot's audiences table)
    audience_sizes: dict[tuple[str, str], int] = field(default_factory=dict)
    min_audience_size: int = 100
    #: P's document and category lists (also under every account in the two fields above)
    pinterest_document: dict[str, Any] | None = None
    pinterest_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (table, file, line number) of every malformed line
    malformed: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.date is None

    def quarantined(self) -> dict[str, dict[str, int]]:
        """table -> rule -> count, only non-zero counts."""
        counts: dict[str, dict[str, int]] = {}
        rules = [(table, MALFORMED) for table, _file, _line in self.malformed]
        for table, rule in rules + [(table, rule) for table, _index, rule in self.verdicts]:
            counts.setdefault(table, {}).setdefault(rule, 0)
            counts[table][rule] += 1
        return counts

    def bad_fraction_exceeded(self, max_bad_fraction: float) -> list[str]:
        """The tables whose quarantined share is strictly above max_bad_fraction."""
        per_table = Counter(table for table, _index, _rule in self.verdicts)
        per_table.update(table for table, _file, _line in self.malformed)
        return [
            table
            for table, read in self.read.items()
            if read and Fraction(per_table[table], read) > Fraction(max_bad_fraction)
        ]


# ---------------------------------------------------------------------------------------------
# Validation, table by table in the SPEC's order


class _Judge:
    """Collects the verdict of every row of one table."""

    def __init__(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.table = table
        self.rows = rows
        self.verdict: dict[int, str] = {}
        self.parsed: dict[int, dict[str, Any]] = {}

    def bad_values(self, parse_row: Any) -> None:
        for index, row in enumerate(self.rows):
            try:
                self.parsed[index] = parse_row(row)
            except _Bad:
                self.verdict[index] = BAD_VALUE

    def duplicates(self, key: str) -> None:
        counts = Counter(parsed[key] for parsed in self.parsed.values())
        for index, parsed in list(self.parsed.items()):
            if counts[parsed[key]] > 1:
                self.verdict[index] = DUPLICATE_KEY
                del self.parsed[index]

    def unknown_reference(self, index: int) -> None:
        self.verdict[index] = UNKNOWN_REFERENCE
        del self.parsed[index]

    def used(self) -> dict[int, dict[str, Any]]:
        return dict(self.parsed)


def _parse_interest(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "interest_id": parse_digits(row.get("interest_id")),
        "name": parse_string(row.get("name")),
        "parent_id": parse_optional(parse_digits, row.get("parent_id")),
    }


def _parse_ad_account(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "ad_account_id": parse_digits(row.get("ad_account_id"), max_length=18),
        "name": parse_string(row.get("name")),
        # optional columns: a row without them (a file without the column) has them null
        "country": parse_optional(
            lambda v: parse_code(AD_ACCOUNT_COUNTRIES, v), row.get("country")
        ),
        "currency": parse_optional(
            lambda v: parse_code(AD_ACCOUNT_CURRENCIES, v), row.get("currency")
        ),
    }


def _parse_user(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": parse_int64(row.get("user_id")),
        "age_bucket": parse_optional(lambda v: parse_choice(AGE_BUCKETS, v), row.get("age_bucket")),
        "gender": parse_optional(lambda v: parse_choice(GENDERS, v), row.get("gender")),
        "country": parse_optional(parse_country, row.get("country")),
        "metro": parse_optional(parse_string, row.get("metro")),
        "device": parse_optional(lambda v: parse_choice(DEVICES, v), row.get("device")),
    }


def _parse_metro(row: dict[str, Any]) -> dict[str, Any]:
    return {"metro": parse_string(row.get("metro")), "name": parse_string(row.get("name"))}


def _parse_pin(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "pin_id": parse_int64(row.get("pin_id")),
        "ad_account_id": parse_optional(parse_string, row.get("ad_account_id")),
        "interest_id": parse_optional(parse_string, row.get("interest_id")),
    }


def _parse_event(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_time": parse_event_time(row.get("event_time")),
        "user_id": parse_int64(row.get("user_id")),
        "pin_id": parse_int64(row.get("pin_id")),
        "event_type": parse_choice(EVENT_TYPES, row.get("event_type")),
    }


@dataclass
class _Interest:
    interest_id: str
    name: str
    parent_id: str | None
    level: int = 0


def _validate(
    tables: dict[str, list[dict[str, Any]]],
) -> tuple[dict[str, _Judge], dict[str, _Interest]]:
    judges = {table: _Judge(table, tables.get(table, [])) for table in TABLE_ORDER}

    interests = judges["interests"]
    interests.bad_values(_parse_interest)
    interests.duplicates("interest_id")
    candidates = {parsed["interest_id"]: index for index, parsed in interests.parsed.items()}
    # An interest is used when its chain of parents reaches a root through used interests only.
    used_ids: dict[str, _Interest] = {}
    grew = True
    while grew:
        grew = False
        for interest_id, index in candidates.items():
            if interest_id in used_ids:
                continue
            parsed = interests.parsed[index]
            parent = parsed["parent_id"]
            if parent is None or (parent != interest_id and parent in used_ids):
                level = 1 if parent is None else used_ids[parent].level + 1
                used_ids[interest_id] = _Interest(interest_id, parsed["name"], parent, level)
                grew = True
    for interest_id, index in candidates.items():
        if interest_id not in used_ids:
            interests.unknown_reference(index)

    accounts = judges["ad_accounts"]
    accounts.bad_values(_parse_ad_account)
    accounts.duplicates("ad_account_id")

    users = judges["users"]
    users.bad_values(_parse_user)
    users.duplicates("user_id")

    metros = judges["metros"]
    metros.bad_values(_parse_metro)
    metros.duplicates("metro")

    pins = judges["pins"]
    pins.bad_values(_parse_pin)
    pins.duplicates("pin_id")
    account_ids = {parsed["ad_account_id"] for parsed in accounts.used().values()}
    for index, parsed in pins.used().items():
        account = parsed["ad_account_id"]
        interest = parsed["interest_id"]
        if (account is not None and account not in account_ids) or (
            interest is not None and interest not in used_ids
        ):
            pins.unknown_reference(index)

    events = judges["events"]
    events.bad_values(_parse_event)
    user_ids = {parsed["user_id"] for parsed in users.used().values()}
    pin_ids = {parsed["pin_id"] for parsed in pins.used().values()}
    for index, parsed in events.used().items():
        if parsed["user_id"] not in user_ids or parsed["pin_id"] not in pin_ids:
            events.unknown_reference(index)
    return judges, used_ids


# ---------------------------------------------------------------------------------------------
# Semantics


def _rounded(value: Fraction) -> float:
    return float(round(value, 4))


def _placeholder(insight_type: str, date: dt.date, min_audience_size: int) -> dict[str, Any]:
    return {
        "type": insight_type,
        "date": date.isoformat(),
        "size": min_audience_size,
        "size_is_upper_bound": True,
        "categories": [],
        "demographics": {"ages": [], "genders": [], "countries": [], "metros": [], "devices": []},
    }


def reference_build(
    tables: dict[str, list[dict[str, Any]]],
    *,
    malformed: list[tuple[str, str, int]] | None = None,
    date: dt.date | None = None,
    window_days: int = 30,
    min_audience_size: int = 100,
    min_cell_size: int = 10,
    max_subcategories: int = 10,
    allow_empty: bool = False,
) -> Reference:
    judges, interests = _validate(tables)
    verdicts = sorted(
        (table, index, rule)
        for table, judge in judges.items()
        for index, rule in judge.verdict.items()
    )
    malformed = malformed or []
    lines = Counter(table for table, _file, _line in malformed)
    read = {table: len(tables[table]) + lines[table] for table in TABLE_ORDER if table in tables}
    used = {table: len(judges[table].used()) for table in TABLE_ORDER if table in tables}
    accounts = sorted(parsed["ad_account_id"] for parsed in judges["ad_accounts"].used().values())
    account_details = {
        parsed["ad_account_id"]: (parsed["name"], parsed["country"], parsed["currency"])
        for parsed in judges["ad_accounts"].used().values()
    }
    users = {parsed["user_id"]: parsed for parsed in judges["users"].used().values()}
    metro_names = {parsed["metro"]: parsed["name"] for parsed in judges["metros"].used().values()}
    pins = {parsed["pin_id"]: parsed for parsed in judges["pins"].used().values()}
    events = list(judges["events"].used().values())
    level1 = sorted(i for i, interest in interests.items() if interest.level == 1)

    result = Reference(
        verdicts=verdicts,
        read=read,
        used=used,
        date=None,
        level1_interests=level1,
        used_interests=sorted(interests),
        ad_accounts=accounts,
        ad_account_details=account_details,
        malformed=sorted(malformed),
        min_audience_size=min_audience_size,
    )
    if date is None:
        if not events:
            return result
        date = max(event["event_time"] for event in events).date()
    result.date = date
    start_day = date - dt.timedelta(days=window_days - 1)
    result.window_start = start_day
    start = dt.datetime.combine(start_day, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    in_window = [event for event in events if start <= event["event_time"] < end]
    if not in_window and not allow_empty:
        result.date = result.window_start = None  # an empty window is refused, not published
        return result

    def level1_and_level2(interest_id: str) -> set[str]:
        found: set[str] = set()
        current: str | None = interest_id
        while current is not None:
            interest = interests[current]
            if interest.level <= 2:
                found.add(current)
            current = interest.parent_id
        return found

    everyone: set[int] = set()
    total: dict[str, set[int]] = {account: set() for account in accounts}
    engaged: dict[str, set[int]] = {account: set() for account in accounts}
    user_interests: dict[int, set[str]] = {}
    for event in in_window:
        user = event["user_id"]
        pin = pins[event["pin_id"]]
        is_engagement = event["event_type"] != "IMPRESSION"
        everyone.add(user)
        account = pin["ad_account_id"]
        if account is not None:
            total[account].add(user)
            if is_engagement:
                engaged[account].add(user)
        if is_engagement and pin["interest_id"] is not None:
            user_interests.setdefault(user, set()).update(level1_and_level2(pin["interest_id"]))

    def count(audience: set[int], interest_id: str) -> int:
        return sum(1 for user in audience if interest_id in user_interests.get(user, set()))

    def children(parent_id: str) -> list[str]:
        return sorted(i for i, interest in interests.items() if interest.parent_id == parent_id)

    def subcategory_items(audience: set[int], category_id: str, cap: int | None) -> list[dict]:
        n_c = count(audience, category_id)
        n_c_p = count(everyone, category_id)
        items = []
        for sub_id in children(category_id):
            n_s = count(audience, sub_id)
            if n_s < min_cell_size:
                continue
            ratio = Fraction(n_s, n_c)
            index = ratio / Fraction(count(everyone, sub_id), n_c_p)
            items.append((n_s, sub_id, ratio, index))
        items.sort(key=lambda item: (-item[0], item[1]))
        if cap is not None:
            items = items[:cap]
        return [
            {
                "id": sub_id,
                "key": sub_id,
                "name": interests[sub_id].name,
                "ratio": _rounded(ratio),
                "index": _rounded(index),
            }
            for _n, sub_id, ratio, index in items
        ]

    def shown_categories(audience: set[int]) -> list[str]:
        counted = [(count(audience, c), c) for c in level1]
        counted = [(n, c) for n, c in counted if n >= min_cell_size]
        counted.sort(key=lambda item: (-item[0], item[1]))
        return [c for _n, c in counted]

    def demographic(
        audience: set[int], values: list[str], names: dict[str, str], order: list[str] | None
    ) -> list[dict[str, Any]]:
        n = len(audience)
        counts = Counter(values)
        kept = [(key, c) for key, c in counts.items() if c >= min_cell_size]
        if order is not None:
            kept.sort(key=lambda item: order.index(item[0]))
        else:
            kept.sort(key=lambda item: (-item[1], item[0]))
        return [
            {"key": key, "name": names[key], "ratio": _rounded(Fraction(c, n))} for key, c in kept
        ]

    def document(audience: set[int], insight_type: str) -> dict[str, Any]:
        n = len(audience)
        if n < min_audience_size:
            return _placeholder(insight_type, date, min_audience_size)
        categories = []
        for c in shown_categories(audience):
            ratio = Fraction(count(audience, c), n)
            index = ratio / Fraction(count(everyone, c), len(everyone))
            categories.append(
                {
                    "id": c,
                    "key": c,
                    "name": interests[c].name,
                    "ratio": _rounded(ratio),
                    "index": _rounded(index),
                    "subcategories": subcategory_items(audience, c, max_subcategories),
                }
            )
        members = [users[user] for user in audience]
        ages = [m["age_bucket"] or UNKNOWN for m in members]
        genders = [m["gender"] or "unspecified" for m in members]
        countries = [m["country"] or UNKNOWN for m in members]
        metros = [m["metro"] if m["metro"] is not None else UNKNOWN for m in members]
        devices = [m["device"] or UNKNOWN for m in members]
        age_names = {bucket: bucket for bucket in AGE_BUCKETS} | {UNKNOWN: UNKNOWN_NAME}
        country_names = {key: country_name(key) for key in set(countries) if key != UNKNOWN}
        metro_key_names = {key: metro_names.get(key, key) for key in metros}
        metro_key_names[UNKNOWN] = UNKNOWN_NAME
        return {
            "type": insight_type,
            "date": date.isoformat(),
            "size": n,
            "size_is_upper_bound": False,
            "categories": categories,
            "demographics": {
                "ages": demographic(audience, ages, age_names, [*AGE_BUCKETS, UNKNOWN]),
                "genders": demographic(audience, genders, GENDER_NAMES, None),
                "countries": demographic(
                    audience, countries, country_names | {UNKNOWN: UNKNOWN_NAME}, None
                )[:MAX_COUNTRIES],
                "metros": demographic(audience, metros, metro_key_names, None)[:MAX_METROS],
                "devices": demographic(
                    audience, devices, DEVICE_NAMES | {UNKNOWN: UNKNOWN_NAME}, None
                ),
            },
        }

    def items(audience: set[int], category_id: str) -> dict[str, Any]:
        if len(audience) < min_audience_size or category_id not in shown_categories(audience):
            return {"items": []}
        return {"items": subcategory_items(audience, category_id, None)}

    audiences_by_type: dict[str, dict[str, set[int]]] = {
        account: {
            "YOUR_TOTAL_AUDIENCE": total[account],
            "YOUR_ENGAGED_AUDIENCE": engaged[account],
            "PINTEREST_TOTAL_AUDIENCE": everyone,
        }
        for account in accounts
    }
    result.audience_sizes[("", "PINTEREST_TOTAL_AUDIENCE")] = len(everyone)
    for account in accounts:
        result.audience_sizes[(account, "YOUR_TOTAL_AUDIENCE")] = len(total[account])
        result.audience_sizes[(account, "YOUR_ENGAGED_AUDIENCE")] = len(engaged[account])
    everyone_document = document(everyone, "PINTEREST_TOTAL_AUDIENCE")
    everyone_items = {c: items(everyone, c) for c in level1}
    result.pinterest_document, result.pinterest_items = everyone_document, everyone_items
    for account, audiences in audiences_by_type.items():
        for insight_type, audience in audiences.items():
            if insight_type == "PINTEREST_TOTAL_AUDIENCE":
                result.documents[(account, insight_type)] = everyone_document
                for c in level1:
                    result.category_items[(account, insight_type, c)] = everyone_items[c]
                continue
            result.documents[(account, insight_type)] = document(audience, insight_type)
            for c in level1:
                result.category_items[(account, insight_type, c)] = items(audience, c)
    return result


# ---------------------------------------------------------------------------------------------
# Reading a dataset directory, independently of the engine

SUFFIXES = ("parquet", "csv", "csv.gz", "csv.zst", "jsonl", "jsonl.gz", "jsonl.zst")


@dataclass
class ReadDataset:
    """The rows of every table as its files hold them, and the lines that are not rows."""

    tables: dict[str, list[dict[str, Any]]]
    sources: dict[tuple[str, int], str]  # (table, row index) -> file
    malformed: list[tuple[str, str, int]]  # (table, file, line number)


def _suffix(path: Path) -> str | None:
    return next((s for s in SUFFIXES if path.name.endswith("." + s)), None)


def _table_files(root: Path, table: str) -> list[Path]:
    single = [root / f"{table}.{suffix}" for suffix in SUFFIXES]
    found = [path for path in single if path.is_file()]
    directory = root / table
    if directory.is_dir():
        found += [
            path
            for path in sorted(directory.rglob("*"))
            if path.is_file()
            and _suffix(path) is not None
            and not any(p.startswith((".", "_")) for p in path.relative_to(directory).parts)
        ]
    return found


def _decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return bytes(pa.CompressedInputStream(pa.BufferReader(data), "zstd").read())
    return data


def _lines(path: Path, blank: bytes) -> list[tuple[int, bytes]]:
    """(line number, bytes) of every line that is not blank, without its line end or a BOM.

    A blank line is empty once the characters in ``blank`` are stripped: in JSON Lines spaces and
    tabs are insignificant, in CSV a line of spaces is a row of one field.
    """
    data = _decompressed(path).removeprefix(b"\xef\xbb\xbf")
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return [
        (number, piece.removesuffix(b"\r"))
        for number, piece in enumerate(pieces, start=1)
        if piece.removesuffix(b"\r").strip(blank)
    ]


def csv_fields(line: str) -> list[str] | None:
    """The fields of one CSV line as docs/data-contract.md defines them; None when malformed.

    A field is quoted when it starts with ``"``, or with one space and ``"``: it runs to the next
    quote that is not doubled, and spaces after it are ignored (``1, "x" ,2`` reads ``x``);
    anything else before the next comma (text, a tab) or no closing quote is malformed. Any other
    field is read as written, spaces and quotes included (``ab"c``, and ``1,  "x"`` reads
    ``  "x"``: two spaces before a quote make it an ordinary character).
    """
    fields: list[str] = []
    at = 0
    while True:
        start = at + 1 if line.startswith(' "', at) else at
        if start < len(line) and line[start] == '"':
            value, cursor = [], start + 1
            while True:
                closing = line.find('"', cursor)
                if closing < 0:
                    return None  # a quote never closed
                value.append(line[cursor:closing])
                if line.startswith('"', closing + 1):
                    value.append('"')
                    cursor = closing + 2
                    continue
                break
            end = closing + 1
            while end < len(line) and line[end] == " ":
                end += 1
            fields.append("".join(value))
            if end == len(line):
                return fields
            if line[end] != ",":
                return None  # text after a closing quote
            at = end + 1
        else:
            comma = line.find(",", at)
            if comma < 0:
                fields.append(line[at:])
                return fields
            fields.append(line[at:comma])
            at = comma + 1


def _json_text(value: Any) -> Any:
    """A JSON Lines field as the contract reads it: text, whether string or number."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def read_dataset(root: Path) -> ReadDataset:
    """Reads every table of a dataset directory (SPEC §2) the way a user would expect."""
    result = ReadDataset({}, {}, [])
    for table in TABLE_ORDER:
        files = _table_files(root, table)
        if not files:
            continue
        rows = result.tables.setdefault(table, [])
        for path in files:
            suffix = _suffix(path)
            assert suffix is not None
            parsed: list[dict[str, Any] | None] = []
            numbers: list[int] = []
            if suffix == "parquet":
                parsed = list(pq.read_table(path).to_pylist())
                numbers = [0] * len(parsed)
            elif suffix.startswith("csv"):
                lines = _lines(path, blank=b"")
                header = next(csv.reader([lines[0][1].decode()])) if lines else []
                for number, raw in lines[1:]:
                    numbers.append(number)
                    try:
                        fields = csv_fields(raw.decode("utf-8"))
                    except UnicodeDecodeError:
                        fields = None
                    if fields is None or len(fields) != len(header):
                        parsed.append(None)
                        continue
                    parsed.append(
                        {c: (v if v != "" else None) for c, v in zip(header, fields, strict=True)}
                    )
            else:
                for number, raw in _lines(path, blank=b" \t\r"):
                    numbers.append(number)
                    try:
                        value = json.loads(raw.decode("utf-8"))
                    except (UnicodeDecodeError, ValueError):
                        value = None
                    if not isinstance(value, dict):
                        parsed.append(None)
                        continue
                    parsed.append({k: _json_text(v) for k, v in value.items()})
            for number, row in zip(numbers, parsed, strict=True):
                if row is None:
                    result.malformed.append((table, str(path), number))
                    continue
                result.sources[(table, len(rows))] = str(path)
                rows.append(row)
    return result
