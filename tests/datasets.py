"""Small platforms for the engine's tests: writers for every input format, hypothesis strategies,
and helpers that run the engine and compare it with the independent reference (tests/reference.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

from tests.reference import (
    AGE_BUCKETS,
    DEVICES,
    EVENT_TYPES,
    GENDERS,
    INSIGHT_TYPES,
    Reference,
)

FORMATS = ("parquet", "csv", "jsonl")
COLUMNS: dict[str, tuple[str, ...]] = {
    "interests": ("interest_id", "name", "parent_id"),
    "ad_accounts": ("ad_account_id", "name"),
    "users": ("user_id", "age_bucket", "gender", "country", "metro", "device"),
    "metros": ("metro", "name"),
    "pins": ("pin_id", "ad_account_id", "interest_id"),
    "events": ("event_time", "user_id", "pin_id", "event_type"),
}
#: Columns a table's files may lack (SPEC §2): written only where some row of the table has them.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"ad_accounts": ("country", "currency")}
INT_COLUMNS = {
    ("users", "user_id"),
    ("pins", "pin_id"),
    ("events", "user_id"),
    ("events", "pin_id"),
}
TIME_COLUMNS = {("events", "event_time")}

Tables = dict[str, list[dict[str, Any]]]


# ---------------------------------------------------------------------------------------------
# Writers


def render_time(moment: dt.datetime) -> str:
    """ISO 8601 text: `Z` for UTC, the offset otherwise, a space and no offset for naive (UTC)."""
    if moment.tzinfo is None:
        return moment.isoformat(sep=" ")
    if moment.utcoffset() == dt.timedelta(0):
        return moment.replace(tzinfo=None).isoformat() + "Z"
    return moment.isoformat()


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return render_time(value)
    return value


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return render_time(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _arrow_table(table: str, rows: list[dict[str, Any]], columns: list[str]) -> pa.Table:
    arrays = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if (table, column) in INT_COLUMNS:
            for value in values:
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"{table}.{column}={value!r} is not representable in Parquet")
            arrays[column] = pa.array(values, type=pa.int64())
        elif (table, column) in TIME_COLUMNS:
            moments = []
            for value in values:
                if value is None:
                    moments.append(None)
                elif isinstance(value, dt.datetime):
                    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
                    moments.append(aware.astimezone(dt.UTC))
                else:
                    raise ValueError(f"{table}.{column}={value!r} is not representable in Parquet")
            arrays[column] = pa.array(moments, type=pa.timestamp("us", tz="UTC"))
        else:
            arrays[column] = pa.array(
                [None if v is None else str(v) for v in values], type=pa.string()
            )
    return pa.table(arrays)


TEXT_FORMATS = ("csv", "jsonl")
COMPRESSIONS = ("", ".gz", ".zst")
#: Every file name ending the contract accepts.
SUFFIXES = ("parquet", *(f"{fmt}{c}" for fmt in TEXT_FORMATS for c in COMPRESSIONS))
BOM = b"\xef\xbb\xbf"


def suffix_of(path: Path) -> str:
    """`csv.gz` for `users.csv.gz`: the format and compression of a dataset file."""
    return next(s for s in SUFFIXES if path.name.endswith("." + s))


def compress(data: bytes, suffix: str) -> bytes:
    if suffix.endswith(".gz"):
        return gzip.compress(data, mtime=0)
    if suffix.endswith(".zst"):
        return bytes(pa.compress(data, codec="zstd", asbytes=True))
    return data


def text_lines(
    fmt: str, table: str, rows: list[dict[str, Any]], columns: list[str], padded: bool = False
) -> list[str]:
    """The lines of a CSV (header first) or JSON Lines file, without line ends. ``padded``: every
    non-empty CSV field of a row quoted, with a space before and one or two after (the contract
    ignores them: ``1, "x" ,2`` reads ``x``); a name with two spaces before (read as written)."""
    if fmt == "jsonl":
        return [
            json.dumps({c: _text(row.get(c)) for c in columns}, ensure_ascii=False) for row in rows
        ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    if padded:
        lines = buffer.getvalue().split("\n")[:1]
        for row in rows:
            fields = [_csv_field(row.get(column)) for column in columns]
            lines.append(
                ",".join(_padded(f, i, columns[i] == "name") for i, f in enumerate(fields))
            )
        return lines
    for row in rows:
        writer.writerow([_csv_field(row.get(column)) for column in columns])
    return buffer.getvalue().split("\n")[:-1]


def _padded(field: str, index: int, name: bool) -> str:
    """A CSV field quoted between spaces (an empty field, a null, stays empty). A name without a
    comma gets two spaces before its quote: then the quote is an ordinary character and the name
    is read as written, spaces and quotes included (docs/data-contract.md); only a name can hold
    that text, and a comma would end the field there."""
    if field == "":
        return field
    before = "  " if name and "," not in field else " "
    return before + '"' + field.replace('"', '""') + '"' + " " * (1 + index % 2)


@dataclass(frozen=True)
class TextStyle:
    """How a text file is exported: a byte-order mark, CRLF line ends, CSV fields quoted between
    spaces, and broken lines."""

    bom: bool = False
    crlf: bool = False
    padded: bool = False
    #: (position among the data lines, raw bytes of a line that cannot be read as a row)
    malformed: tuple[tuple[int, bytes], ...] = ()


def write_file(
    path: Path,
    table: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    style: TextStyle = TextStyle(),
) -> list[tuple[int, bytes]]:
    """Writes one file in the format its name says; returns the line number (1-based, a CSV
    header is line 1) and bytes of every `style.malformed` line written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix_of(path)
    if suffix == "parquet":
        assert not style.malformed, "a Parquet file has no lines to break"
        pq.write_table(_arrow_table(table, rows, columns), path)
        return []
    fmt = suffix.split(".")[0]
    lines: list[tuple[bytes, bool]] = [
        (line.encode(), False) for line in text_lines(fmt, table, rows, columns, style.padded)
    ]
    header = 1 if fmt == "csv" else 0
    for position, raw in sorted(style.malformed, key=lambda item: -item[0]):
        lines.insert(header + min(position, len(lines) - header), (raw, True))
    end = b"\r\n" if style.crlf else b"\n"
    data = b"".join(line + end for line, _broken in lines)
    path.write_bytes(compress((BOM if style.bom else b"") + data, suffix))
    return [(i + 1, line) for i, (line, broken) in enumerate(lines) if broken]


@dataclass
class Written:
    """Where each row of a dataset went, and where the malformed lines were written."""

    root: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    source: dict[tuple[str, int], Path] = field(default_factory=dict)
    #: (table, file, line number, raw bytes) of every malformed line written
    malformed: list[tuple[str, Path, int, bytes]] = field(default_factory=list)


def columns_of(table: str, rows: list[dict[str, Any]]) -> list[str]:
    """The columns a table's files get: the contract's, and the optional ones some row has."""
    optional = [c for c in OPTIONAL_COLUMNS.get(table, ()) if any(c in row for row in rows)]
    return [*COLUMNS[table], *optional]


def write_dataset(
    tables: Tables,
    root: Path,
    fmt: str | Mapping[str, str],
    *,
    partitioned: bool = False,
    extra_columns: bool = False,
    omit_column: tuple[str, str] | None = None,
    anchor: dt.date | None = None,
    styles: Mapping[str, TextStyle] | None = None,
) -> Written:
    """Writes every table in `tables` to `root`: `<table>.<suffix>`, or when partitioned a
    directory `<table>/` of two part files (events in Hive folders `events/date=YYYY-MM-DD/`).

    `fmt` is one suffix for every table or one per table (`parquet`, `csv`, `jsonl.gz`, …); a
    suffix pair such as `parquet+csv` writes the table as a directory mixing both formats, rows
    alternating between them. `styles` gives a table's text files a BOM, CRLF or malformed lines
    (those go to the table's first text file). `omit_column` = (table, column) leaves it out."""
    root.mkdir(parents=True, exist_ok=True)
    written = Written(root)
    for table, rows in tables.items():
        spec = fmt if isinstance(fmt, str) else fmt[table]
        kinds = spec.split("+")
        style = (styles or {}).get(table, TextStyle())
        columns = [c for c in columns_of(table, rows) if omit_column != (table, c)]
        if extra_columns:
            columns = ["note", *columns, "extra_number"]
            rows = [{"note": f"extra {i}", "extra_number": i, **row} for i, row in enumerate(rows)]
        groups: dict[Path, list[int]] = {}
        for index, row in enumerate(rows):
            if len(kinds) > 1:
                path = root / table / f"part-{index % len(kinds)}.{kinds[index % len(kinds)]}"
            elif not partitioned:
                path = root / f"{table}.{spec}"
            elif table == "events":
                moment = row.get("event_time")
                if isinstance(moment, dt.datetime):
                    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
                    day = aware.astimezone(dt.UTC).date()
                else:
                    day = anchor or dt.date(2000, 1, 1)
                path = root / table / f"date={day.isoformat()}" / f"part-0.{spec}"
            else:
                path = root / table / f"part-{index % 2}.{spec}"
            groups.setdefault(path, []).append(index)
        text_kinds = [(i, k) for i, k in enumerate(kinds) if not k.startswith("parquet")]
        if not rows:
            first = text_kinds[0][1] if style.malformed and text_kinds else kinds[0]
            groups[root / f"{table}.{first}"] = []
        elif style.malformed and text_kinds and not any(suffix_of(p) != "parquet" for p in groups):
            # A mixed directory whose few rows all went to Parquet: its text file holds only the
            # broken lines.
            i, kind = text_kinds[0]
            groups[root / table / f"part-{i}.{kind}"] = []
        if style.malformed and not any(suffix_of(p) != "parquet" for p in groups):
            raise ValueError(f"{table}: malformed lines need a text file")
        broken = False
        for path, indexes in sorted(groups.items()):
            text = suffix_of(path) != "parquet"
            file_style = style
            if not text or broken:
                file_style = TextStyle(bom=style.bom, crlf=style.crlf, padded=style.padded)
            lines = write_file(path, table, [rows[i] for i in indexes], columns, file_style)
            written.malformed.extend((table, path, number, raw) for number, raw in lines)
            broken = broken or bool(lines)
            written.files.setdefault(table, []).append(path)
            for i in indexes:
                written.source[(table, i)] = path
    return written


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file below root, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# ---------------------------------------------------------------------------------------------
# Strategies


@dataclass
class Platform:
    """A random small platform, as written in one format or one per table."""

    tables: Tables
    fmt: str | dict[str, str]
    anchor: dt.date
    window_days: int

    def describe(self) -> str:
        lines = [f"fmt={self.fmt} anchor={self.anchor} window_days={self.window_days}"]
        for table, rows in self.tables.items():
            lines.append(f"{table}:")
            lines.extend(f"  {row!r}" for row in rows)
        return "\n".join(lines)


NAMES = ("Food, drinks", 'Say "hi"', "Café", "Home décor", "Travel", "DIY", "家", "Art")
#: Names beyond ASCII and Latin-1 for every named thing (accounts, metros, interests): CJK, Greek,
#: right-to-left, a combining accent, an emoji outside the BMP, a no-break space.
UNICODE_NAMES = (
    "東京 café",
    "Ελλάδα",
    "مرحبا",
    "Cafe\u0301",
    "Fête 🎉",
    "Zürich\u00a0ZH",
    "Ødegård",
)
COUNTRIES = ("US", "us", "Us", "uS", "GB", "gb", "FR", "de", "JP")
BAD_COUNTRIES = ("UK", "XX", "usa")
#: An ad account's country and currency (optional columns), as the v5 enums have them in any
#: case, and values they do not have (KP: an ISO code outside the v5 enum; Kelvin sign + R).
ACCOUNT_COUNTRIES = ("US", "us", "Gb", "FR", "de")
BAD_ACCOUNT_COUNTRIES = ("UK", "KP", "usa", "\u212ar")
CURRENCIES = ("USD", "eur", "Gbp", "UNK", "JPY")
BAD_CURRENCIES = ("XYZ", "US$", "usd ", "EURO")
METRO_KEYS = ("501", "803", "0602", "abc")
METRO_NAMES = {"501": "New York, NY", "803": "Los Angeles, CA", "0602": "Chicago, IL", "abc": "A"}
EDGE_DAYS = (
    dt.date(2026, 11, 1),
    dt.date(2026, 12, 31),
    dt.date(2027, 1, 1),
    dt.date(2027, 1, 2),
    dt.date(2027, 3, 1),
    dt.date(2028, 2, 29),
    dt.date(2026, 11, 30),
)
ZONES = (
    dt.UTC,
    None,
    dt.timezone(dt.timedelta(hours=2)),
    dt.timezone(-dt.timedelta(hours=5, minutes=30)),
)
ENGAGEMENTS = tuple(t for t in EVENT_TYPES if t != "IMPRESSION")
MICROSECOND = dt.timedelta(microseconds=1)


def bad_int_values(fmt: str) -> st.SearchStrategy[Any]:
    """Values of an int64 column that break its type, in a format that can hold them."""
    if fmt == "csv":
        return st.sampled_from(["abc", "1.5", "1e3", "+5", "9223372036854775808", "0x1F"])
    if fmt == "jsonl":
        return st.sampled_from(["abc", 1.5, "1e3", 2**63])
    return st.nothing()


def int_text(draw: st.DrawFn, fmt: str, number: int) -> Any:
    """An int64 value as a dataset may hold it: CSV may pad it with zeros."""
    if fmt == "csv" and number >= 0 and draw(st.integers(0, 4)) == 0:
        return "00" + str(number)
    return number


def _maybe(draw: st.DrawFn, probability_in_8: int) -> bool:
    """True with about that probability; shrinks towards False."""
    return draw(st.integers(0, 7)) >= 8 - probability_in_8


@st.composite
def interests_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    if _maybe(draw, 1):
        return []  # an empty table: no interest, so no category anywhere
    count = draw(st.integers(1, 7))
    roots = draw(st.integers(1, min(3, count)))
    rows: list[dict[str, Any]] = []
    ids: list[str] = []
    for i in range(count):
        number = 10 + i
        interest_id = ("0" if draw(st.booleans()) else "") + str(number)
        if interest_id in ids:
            interest_id = str(number)
        parent = None if i < roots else draw(st.sampled_from(ids))
        ids.append(interest_id)
        rows.append(
            {
                "interest_id": interest_id,
                "name": f"{draw(st.sampled_from(NAMES + UNICODE_NAMES))} {i}",
                "parent_id": parent,
            }
        )
    if _maybe(draw, 2):  # "7" and "07" are two interests
        rows.append({"interest_id": "0" + ids[0], "name": "Zero padded", "parent_id": None})
    if _maybe(draw, 2):
        rows.append(
            draw(
                st.sampled_from(
                    [
                        {"interest_id": "12a", "name": "Bad id", "parent_id": None},
                        {"interest_id": None, "name": "No id", "parent_id": None},
                        {"interest_id": "-3", "name": "Negative", "parent_id": None},
                        {"interest_id": "90", "name": None, "parent_id": None},
                        {"interest_id": "91", "name": "Bad parent", "parent_id": "x1"},
                    ]
                )
            )
        )
    if _maybe(draw, 2):  # duplicate: both rows are quarantined, and everything below them
        victim = draw(st.sampled_from(rows[: len(ids)]))
        rows.append({**victim, "name": "Duplicate"})
    if _maybe(draw, 2):
        rows.append({"interest_id": "92", "name": "Orphan", "parent_id": "999999"})
    if _maybe(draw, 1):
        rows.append({"interest_id": "93", "name": "Self", "parent_id": "93"})
    if _maybe(draw, 1):
        rows.append({"interest_id": "94", "name": "Cycle a", "parent_id": "95"})
        rows.append({"interest_id": "95", "name": "Cycle b", "parent_id": "94"})
        if _maybe(draw, 4):
            rows.append({"interest_id": "96", "name": "Below cycle", "parent_id": "95"})
    return draw(st.permutations(rows))


@st.composite
def ad_account_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-4 accounts mostly, up to 50 at times, none at all (an empty table) now and then."""
    if _maybe(draw, 1):
        return []
    count = draw(st.integers(5, 50)) if _maybe(draw, 1) else draw(st.integers(1, 4))
    choices = ["1", "007", "7", "549755885175", "123456789012345678", "42", "900"]
    ids = draw(
        st.lists(
            st.one_of(st.sampled_from(choices), st.integers(1, 10**18 - 1).map(str)),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    rows = [
        {"ad_account_id": i, "name": f"{draw(st.sampled_from(('Advertiser', *UNICODE_NAMES)))} {i}"}
        for i in ids
    ]
    if _maybe(draw, 2):
        rows.append(
            draw(
                st.sampled_from(
                    [
                        {"ad_account_id": "1234567890123456789", "name": "Too long"},
                        {"ad_account_id": "12-3", "name": "Dash"},
                        {"ad_account_id": None, "name": "No id"},
                        {"ad_account_id": "77", "name": None},
                    ]
                )
            )
        )
    if _maybe(draw, 2):
        rows.append({**draw(st.sampled_from(rows[:count])), "name": "Duplicate"})
    for column, values, bad in (
        ("country", ACCOUNT_COUNTRIES, BAD_ACCOUNT_COUNTRIES),
        ("currency", CURRENCIES, BAD_CURRENCIES),
    ):
        if _maybe(draw, 4):  # the optional column is in the files half the time
            for row in rows:
                wrong = _maybe(draw, 1)
                row[column] = draw(st.sampled_from(bad if wrong else (*values, None)))
    return draw(st.permutations(rows))


@st.composite
def user_rows(draw: st.DrawFn, fmt: str) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.integers(-3, 120), min_size=5, max_size=30, unique=True))

    def pick(values: tuple[Any, ...], bad: tuple[Any, ...]) -> Any:
        if bad and draw(st.integers(0, 30)) == 30:
            return draw(st.sampled_from(bad))
        return draw(st.sampled_from((*values, None)))

    rows = []
    for user_id in ids:
        rows.append(
            {
                "user_id": int_text(draw, fmt, user_id),
                "age_bucket": pick(AGE_BUCKETS[:3], ("17", "65 +")),
                "gender": pick(GENDERS, ("Female", "x")),
                "country": pick(COUNTRIES, BAD_COUNTRIES),
                "metro": pick(METRO_KEYS, ()),
                "device": pick(DEVICES[2:5], ("iPhone", "tv")),
            }
        )
    if _maybe(draw, 2):
        rows.append({**rows[0], "user_id": None})
    if _maybe(draw, 2) and fmt != "parquet":
        rows.append({**rows[0], "user_id": draw(bad_int_values(fmt))})
    if _maybe(draw, 2):
        victim = draw(st.sampled_from(rows[: len(ids)]))
        rows.append({**victim, "gender": "female"})
    return draw(st.permutations(rows))


@st.composite
def metro_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    keys = draw(
        st.lists(st.sampled_from([*METRO_KEYS, "999"]), min_size=1, max_size=4, unique=True)
    )
    if _maybe(draw, 1):
        return []  # an empty table: a header-only CSV, an empty JSON Lines file, 0-row Parquet
    rows = [
        {"metro": key, "name": draw(st.sampled_from([METRO_NAMES.get(key, key), *UNICODE_NAMES]))}
        for key in keys
    ]
    if _maybe(draw, 2):
        rows.append({"metro": keys[0], "name": "Duplicate"})
    if _maybe(draw, 1):
        rows.append({"metro": "803" if "803" not in keys else "777", "name": None})
    return draw(st.permutations(rows))


@st.composite
def pin_rows(
    draw: st.DrawFn, fmt: str, account_ids: list[Any], interest_ids: list[Any]
) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.integers(1000, 1100), min_size=4, max_size=30, unique=True))

    def reference(known: list[Any], dangling: tuple[str, ...]) -> Any:
        roll = draw(st.integers(0, 9))
        if roll < 6 and known:
            return draw(st.sampled_from(known))
        if roll < 9:
            return None
        return draw(st.sampled_from(dangling))

    rows = []
    for pin_id in ids:
        rows.append(
            {
                "pin_id": int_text(draw, fmt, pin_id),
                "ad_account_id": reference(account_ids, ("999999", "abc", "0007")),
                "interest_id": reference(interest_ids, ("424242",)),
            }
        )
    if _maybe(draw, 2):
        rows.append({"pin_id": None, "ad_account_id": None, "interest_id": None})
    if _maybe(draw, 2) and fmt != "parquet":
        rows.append(
            {"pin_id": draw(bad_int_values(fmt)), "ad_account_id": None, "interest_id": None}
        )
    if _maybe(draw, 2):
        rows.append({**draw(st.sampled_from(rows[: len(ids)])), "interest_id": None})
    return draw(st.permutations(rows))


@st.composite
def event_time(draw: st.DrawFn, fmt: str, anchor: dt.date, window_days: int) -> Any:
    start = dt.datetime.combine(anchor - dt.timedelta(days=window_days - 1), dt.time(), dt.UTC)
    end = dt.datetime.combine(anchor + dt.timedelta(days=1), dt.time(), dt.UTC)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        moment = start
    elif kind == 1:
        moment = start - MICROSECOND
    elif kind == 2:
        moment = end - MICROSECOND
    elif kind == 3:
        moment = end
    else:
        span = (end - start).total_seconds() + 2 * 86400
        seconds = draw(st.integers(0, int(span)))
        moment = start - dt.timedelta(days=1) + dt.timedelta(seconds=seconds)
    zone = draw(st.sampled_from(ZONES))
    if zone is None:
        return moment.replace(tzinfo=None)
    return moment.astimezone(zone)


def ids_of(rows: list[dict[str, Any]], column: str) -> list[Any]:
    return [row[column] for row in rows if row[column] is not None]


@st.composite
def event_rows(
    draw: st.DrawFn,
    fmt: str,
    anchor: dt.date,
    window_days: int,
    user_ids: list[Any],
    pin_ids: list[Any],
) -> list[dict[str, Any]]:
    count = draw(st.integers(10, 80))
    types = st.one_of(st.just("IMPRESSION"), st.sampled_from(ENGAGEMENTS))
    valid_users = [u for u in user_ids if re.fullmatch(r"-?[0-9]+", str(u))]
    valid_pins = [p for p in pin_ids if re.fullmatch(r"-?[0-9]+", str(p))]
    if fmt == "parquet":  # ids written as text elsewhere ("007") are int64 here, if they fit
        valid_users = [int(u) for u in valid_users if -(2**63) <= int(u) < 2**63]
        valid_pins = [int(p) for p in valid_pins if -(2**63) <= int(p) < 2**63]
    rows = []
    for _ in range(count):
        rows.append(
            {
                "event_time": draw(event_time(fmt, anchor, window_days)),
                "user_id": draw(st.sampled_from(valid_users)),
                "pin_id": draw(st.sampled_from(valid_pins)),
                "event_type": draw(types),
            }
        )
    bad_rows = draw(st.integers(0, 3))
    for _ in range(bad_rows):
        row = dict(draw(st.sampled_from(rows)))
        kind = draw(st.integers(0, 6))
        if kind == 0:
            row["event_type"] = draw(st.sampled_from(["impression", "CLICK", None]))
        elif kind == 1:
            row["event_time"] = None
        elif kind == 2 and fmt != "parquet":
            row["event_time"] = draw(st.sampled_from(["not a time", "2026-13-01T00:00:00", ""]))
        elif kind == 3:
            row["user_id"] = 99999
        elif kind == 4:
            row["pin_id"] = 99999
        elif kind == 5 and fmt != "parquet":
            row["user_id"] = draw(bad_int_values(fmt))
        else:
            row["user_id"] = None
        rows.append(row)
    return draw(st.permutations(rows))


@st.composite
def platforms(draw: st.DrawFn, fmt: str | Mapping[str, str]) -> Platform:
    """A small random platform: a few interests on 1-3 levels (or none), 1-4 ad accounts (up to
    50, or none), 5-40 users, a generation date anywhere in 2026-2028 (month and year ends
    often), a window of 1-30 days,
    pins with and without account and interest, events around the window's edges, and a sprinkle
    of bad rows of every rule. `fmt` is the dataset's format, or one per table (a `+`-joined mix
    such as `parquet+csv.gz` for a directory mixing formats): rows are drawn so that every format
    of their table can hold them."""

    def rows_for(table: str) -> str:
        spec = fmt if isinstance(fmt, str) else fmt[table]
        kinds = [kind.split(".")[0] for kind in spec.split("+")]
        return "parquet" if "parquet" in kinds else kinds[0]

    anchor = draw(
        st.one_of(
            st.sampled_from(EDGE_DAYS),  # windows and days that cross a month's or a year's end
            st.dates(dt.date(2025, 12, 1), dt.date(2028, 3, 31)),
        )
    )
    window_days = draw(st.one_of(st.integers(1, 4), st.integers(5, 30)))
    interests = draw(interests_rows())
    accounts = draw(ad_account_rows())
    users = draw(user_rows(rows_for("users")))
    pins = draw(
        pin_rows(
            rows_for("pins"), ids_of(accounts, "ad_account_id"), ids_of(interests, "interest_id")
        )
    )
    events = draw(
        event_rows(
            rows_for("events"),
            anchor,
            window_days,
            ids_of(users, "user_id"),
            ids_of(pins, "pin_id"),
        )
    )
    tables: Tables = {"interests": interests, "ad_accounts": accounts, "users": users}
    if draw(st.booleans()):
        tables["metros"] = draw(metro_rows())
    tables["pins"] = pins
    tables["events"] = events
    return Platform(tables, fmt if isinstance(fmt, str) else dict(fmt), anchor, window_days)


def malformed_lines(fmt: str, columns: int) -> st.SearchStrategy[bytes]:
    """Lines that cannot be read as a row of a table with `columns` columns, of every kind the
    contract names, that every CSV reader reads the same way. A quote left open is one of them:
    CSV would take the lines after it into the same record, but it is malformed on its own line
    and the next line is read as a row, as a line-by-line reader reads it."""
    if fmt == "csv":
        return st.sampled_from(
            [
                b"lonely",  # too few fields
                b'"open' + b"," * (columns - 1),  # a quote never closed, before any row
                b",".join([b"1"] * (columns + 2)),  # too many fields
                b'"7"x' + b"," * (columns - 1),  # text after a closing quote
                b' "7" x' + b"," * (columns - 1),  # … after a quoted field and its spaces
                b",".join([b"caf\xe9"] * columns),  # Latin-1, not UTF-8
                b"\xff\xfe" + b"," * (columns - 1),  # bytes that are no text at all
            ]
        )
    return st.sampled_from(
        [
            b"[1, 2]",
            b"42",
            b'"a string"',
            b"null",
            b'{"user_id": 1,',
            b"{'single': 'quotes'}",
            b'{"name": "caf\xe9"}',
            b"\xff\xfe",
        ]
    )


@st.composite
def export_layouts(
    draw: st.DrawFn, tables: tuple[str, ...] = tuple(COLUMNS)
) -> tuple[dict[str, str], dict[str, TextStyle]]:
    """Per table, independently: its format (any suffix, or a directory mixing two), and for its
    text files a byte-order mark, CRLF line ends, CSV fields quoted between spaces and up to two
    malformed lines."""
    formats: dict[str, str] = {}
    styles: dict[str, TextStyle] = {}
    for table in tables:
        first = draw(st.sampled_from(SUFFIXES))
        if _maybe(draw, 2):
            second = draw(st.sampled_from([s for s in SUFFIXES if s != first]))
            formats[table] = f"{first}+{second}"
        else:
            formats[table] = first
        texts = [kind.split(".")[0] for kind in formats[table].split("+") if kind != "parquet"]
        if not texts:
            continue
        # with or without the optional columns (drawn later), a line must be malformed
        optional = len(OPTIONAL_COLUMNS.get(table, ()))
        broken = draw(
            st.lists(malformed_lines(texts[0], len(COLUMNS[table]) + optional), max_size=2)
            if _maybe(draw, 4)
            else st.just([])
        )
        styles[table] = TextStyle(
            bom=draw(st.booleans()),
            crlf=draw(st.booleans()),
            padded=_maybe(draw, 2),
            malformed=tuple((draw(st.integers(0, 40)), raw) for raw in broken),
        )
    return formats, styles


Build = tuple[Platform, dict[str, TextStyle], dict[str, Any], bool]


@st.composite
def random_builds(draw: st.DrawFn, **fixed_options: Any) -> Build:
    """A random platform exported as real systems export it (each table in a format of its own,
    compressed text, BOM, CRLF, malformed lines), build options at small thresholds (so that
    small platforms still publish categories), and whether tables come partitioned.
    ``fixed_options`` are added to the drawn options (e.g. ``max_bad_fraction``)."""
    formats, styles = draw(export_layouts())
    platform = draw(platforms(formats))
    options = {
        "date": draw(st.sampled_from([None, platform.anchor])),
        "window_days": platform.window_days,
        # small thresholds mostly (so small platforms publish categories), the defaults too
        "min_audience_size": draw(st.one_of(st.integers(1, 3), st.integers(4, 12), st.just(100))),
        "min_cell_size": draw(st.one_of(st.integers(1, 2), st.integers(3, 10))),
        "max_subcategories": draw(st.one_of(st.integers(0, 2), st.just(10))),
        **fixed_options,
    }
    return platform, styles, options, draw(st.booleans())


def write_build(build: Build, data_dir: Path) -> Written:
    """Writes the export a :func:`random_builds` example describes into ``data_dir``."""
    platform, styles, _options, partitioned = build
    return write_dataset(
        platform.tables,
        data_dir,
        platform.fmt,
        partitioned=partitioned,
        anchor=platform.anchor,
        styles=styles,
    )


# ---------------------------------------------------------------------------------------------
# Running the engine and comparing it with the reference


@dataclass
class EngineOutcome:
    report: dict[str, Any] | None
    error: Exception | None
    date: dt.date | None
    raw_documents: dict[tuple[str, str], bytes | None]
    category_items: dict[tuple[str, str, str], dict[str, Any] | None]
    quarantine: list[Any]
    #: every table of the published snapshot (:func:`snapshot_tables`); empty if none
    tables: dict[str, Any] = field(default_factory=dict)

    @property
    def documents(self) -> dict[tuple[str, str], dict[str, Any] | None]:
        return {
            key: None if raw is None else json.loads(raw) for key, raw in self.raw_documents.items()
        }


def run_engine(
    data_dir: Path,
    store_dir: Path,
    *,
    accounts: list[str],
    categories: list[str],
    max_bad_fraction: float = 1.0,
    **options: Any,
) -> EngineOutcome:
    """Builds with the engine and reads back every document and category list of `accounts`."""
    from pinsights.engine.build import BuildError
    from pinsights.engine.settings import BuildSettings
    from pinsights.store import Store
    from pinsights.store.publish import build

    error: Exception | None = None
    report = None
    try:
        report = build(
            BuildSettings(
                data_dir=data_dir,
                store_dir=store_dir,
                max_bad_fraction=max_bad_fraction,
                engine="duckdb",
                **options,
            )
        )
    except BuildError as failure:
        error = failure
    store = Store(store_dir)
    snapshot = store.latest()
    documents: dict[tuple[str, str], bytes | None] = {}
    items: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    if snapshot is not None:
        for account in accounts:
            for insight_type in INSIGHT_TYPES:
                documents[(account, insight_type)] = snapshot.document(account, insight_type)
                for category in categories:
                    raw = snapshot.category_items(account, insight_type, category)
                    items[(account, insight_type, category)] = (
                        None if raw is None else json.loads(raw)
                    )
    return EngineOutcome(
        report=report,
        error=error,
        date=None if snapshot is None else snapshot.date,
        raw_documents=documents,
        category_items=items,
        quarantine=store.quarantine_rows(),
        tables={} if snapshot is None else snapshot_tables(snapshot.path),
    )


def snapshot_tables(path: Path) -> dict[str, Any]:
    """Every table of a snapshot file as plain values: sets of key rows, dicts key -> value.

    ``meta`` is left out but its date: a build id and a report's timings differ between builds.
    """
    import contextlib

    from pinsights.store.snapshot import SnapshotFile

    with contextlib.closing(SnapshotFile(path).connection()) as con:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return con.execute(sql).fetchall()

        return {
            "date": rows("SELECT value FROM meta WHERE key = 'date'"),
            "accounts": sorted(r[0] for r in rows("SELECT ad_account_id FROM accounts")),
            "account_details": {
                account: (name, country, currency)
                for account, name, country, currency in rows(
                    "SELECT ad_account_id, name, country, currency FROM accounts"
                )
            },
            "level1_interests": sorted(
                r[0] for r in rows("SELECT interest_id FROM level1_interests")
            ),
            "audiences": {
                (a, t): (size, qualifies)
                for a, t, size, qualifies in rows(
                    "SELECT ad_account_id, insight_type, size, qualifies FROM audiences"
                )
            },
            "documents": {(a, t): bytes(b) for a, t, b in rows("SELECT * FROM documents")},
            "category_items": {
                (a, t, c): bytes(b) for a, t, c, b in rows("SELECT * FROM category_items")
            },
        }


def assert_snapshot_tables_match(reference: Reference, tables: dict[str, Any]) -> None:
    """Every table of the snapshot equals what the reference says, row for row: the accounts, the
    level-1 interests, each audience's size and whether it qualifies (what the definitions
    operation lists), each stored document and each stored category list (none missing, none
    extra: an unlisted category is served as empty, so only those may be left out)."""
    assert reference.date is not None
    assert tables["date"] == [(reference.date.isoformat(),)]
    assert tables["accounts"] == reference.ad_accounts, _differs(
        "accounts table", tables["accounts"], reference.ad_accounts
    )
    assert tables["account_details"] == reference.ad_account_details, _differs(
        "accounts' names, countries and currencies",
        tables["account_details"],
        reference.ad_account_details,
    )
    assert tables["level1_interests"] == reference.level1_interests, _differs(
        "level1_interests table", tables["level1_interests"], reference.level1_interests
    )
    expected_audiences = {
        key: (size, size >= reference.min_audience_size)
        for key, size in reference.audience_sizes.items()
    }
    assert tables["audiences"] == expected_audiences, _differs(
        "audiences table", tables["audiences"], expected_audiences
    )
    stored = {key: json.loads(body) for key, body in tables["documents"].items()}
    expected_documents = {
        key: document
        for key, document in reference.documents.items()
        if key[1] != "PINTEREST_TOTAL_AUDIENCE"
    }
    expected_documents[("", "PINTEREST_TOTAL_AUDIENCE")] = reference.pinterest_document
    assert stored.keys() == expected_documents.keys(), _differs(
        "documents table keys", sorted(stored), sorted(expected_documents)
    )
    for key, document in expected_documents.items():
        assert stored[key] == document, _differs(f"documents table {key}", stored[key], document)
    expected_items = {
        key: items
        for key, items in reference.category_items.items()
        if key[1] != "PINTEREST_TOTAL_AUDIENCE"
    }
    for category, items in reference.pinterest_items.items():
        expected_items[("", "PINTEREST_TOTAL_AUDIENCE", category)] = items
    stored_items = {key: json.loads(body) for key, body in tables["category_items"].items()}
    for key, items in stored_items.items():
        assert key in expected_items, f"category_items table: {key} is not a level-1 interest"
        assert items == expected_items[key], _differs(
            f"category_items table {key}", items, expected_items[key]
        )
    for key, items in expected_items.items():
        if items["items"]:
            assert key in stored_items, f"category_items table: no row for {key}"


def assert_ratios_are_floats(value: Any, where: str = "$") -> None:
    """Every `ratio` and `index` must be a JSON number with a fraction (`1.0`, never `1`)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("ratio", "index"):
                assert isinstance(inner, float), f"{where}.{key} = {inner!r} is not a float"
                assert math.isfinite(inner), f"{where}.{key} = {inner!r}"
            assert_ratios_are_floats(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            assert_ratios_are_floats(inner, f"{where}[{i}]")


def report_quarantined(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    """table -> rule -> count of the build report, without zero counts."""
    return {
        table: {rule: n for rule, n in entry.get("quarantined", {}).items() if n}
        for table, entry in report["tables"].items()
        if any(entry.get("quarantined", {}).values())
    }


def _differs(what: str, actual: Any, expected: Any) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, dict):  # keys may be tuples (a table's key columns)
            value = {str(key): item for key, item in value.items()}
        return json.dumps(value, ensure_ascii=False, default=str)

    return f"{what} differs\n  engine:    {shown(actual)}\n  reference: {shown(expected)}"


def assert_engine_matches(reference: Reference, outcome: EngineOutcome) -> None:
    """The engine's build equals the reference in every respect the tests can observe."""
    if reference.failed:
        assert outcome.error is not None, "no valid event in the window: the build must fail"
        assert outcome.date is None, "a failed build published a snapshot"
        return
    assert outcome.error is None, f"build failed: {outcome.error}"
    assert outcome.report is not None
    report = outcome.report
    window = {"start": reference.window_start.isoformat(), "end": reference.date.isoformat()}
    assert report["date"] == reference.date.isoformat(), _differs(
        "date", report["date"], reference.date.isoformat()
    )
    actual_window = {key: report["window"].get(key) for key in window}
    assert actual_window == window, _differs("window", actual_window, window)
    counts = {t: (e["read"], e["used"]) for t, e in report["tables"].items() if t in reference.read}
    expected_counts = {t: (reference.read[t], reference.used[t]) for t in reference.read}
    assert counts == expected_counts, _differs("(read, used) per table", counts, expected_counts)
    quarantined = report_quarantined(report)
    assert quarantined == reference.quarantined(), _differs(
        "report's quarantined", quarantined, reference.quarantined()
    )
    quarantine = Counter(f"{row.table}.{row.rule}" for row in outcome.quarantine)
    expected = Counter(f"{table}.{rule}" for table, _index, rule in reference.verdicts)
    expected.update(f"{table}.malformed" for table, _file, _line in reference.malformed)
    assert quarantine == expected, _differs("quarantine rows", quarantine, expected)
    lines = sorted(
        (row.table, str(Path(row.source_file).resolve()), row.line)
        for row in outcome.quarantine
        if row.rule == "malformed"
    )
    expected_lines = sorted(
        (table, str(Path(file).resolve()), line) for table, file, line in reference.malformed
    )
    assert lines == expected_lines, _differs("malformed lines", lines, expected_lines)
    assert outcome.date == reference.date
    assert_snapshot_tables_match(reference, outcome.tables)

    documents = outcome.documents
    for key, raw in outcome.raw_documents.items():
        if key not in reference.documents:
            assert raw is None, f"{key}: a document for an account that is not used"
    for key, actual_items in outcome.category_items.items():
        if key not in reference.category_items and key[0] in reference.ad_accounts:
            assert actual_items is None, f"{key}: items for what is not a level-1 interest"
    for key, expected_document in reference.documents.items():
        assert outcome.raw_documents.get(key) is not None, f"no document for {key}"
        assert_ratios_are_floats(documents[key], str(key))
        assert documents[key] == expected_document, _differs(
            f"document {key}", documents[key], expected_document
        )
    for key, expected_items in reference.category_items.items():
        if key not in outcome.category_items:
            continue
        actual = outcome.category_items[key]
        assert actual is not None, f"no category items for {key}"
        assert_ratios_are_floats(actual, str(key))
        assert actual == expected_items, _differs(f"category items {key}", actual, expected_items)


def engine_agrees(
    tmp_path: Path,
    tables: Tables,
    reference: Reference,
    *,
    fmt: str = "parquet",
    partitioned: bool = False,
    max_bad_fraction: float = 1.0,
    **options: Any,
) -> EngineOutcome:
    """Writes `tables`, builds them with the engine and asserts that it agrees with `reference`
    (computed with the same options) on every document and category list."""
    data_dir = tmp_path / f"data-{fmt}-{'partitioned' if partitioned else 'single'}"
    write_dataset(tables, data_dir, fmt, partitioned=partitioned)
    outcome = run_engine(
        data_dir,
        tmp_path / f"store-{fmt}-{'partitioned' if partitioned else 'single'}",
        accounts=[*reference.ad_accounts, "31337"],
        categories=[*reference.used_interests, "424242"],
        max_bad_fraction=max_bad_fraction,
        **options,
    )
    assert_engine_matches(reference, outcome)
    return outcome


# ---------------------------------------------------------------------------------------------
# Hand-made platforms for the named edge cases

D = dt.date(2026, 11, 1)


def at(day: dt.date = D, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


def interest(interest_id: str, name: str, parent_id: str | None = None) -> dict[str, Any]:
    return {"interest_id": interest_id, "name": name, "parent_id": parent_id}


def account(ad_account_id: str, name: str | None = None, **details: str | None) -> dict[str, Any]:
    """An ad account row; ``details`` (country, currency) become optional columns of the file."""
    return {
        "ad_account_id": ad_account_id,
        "name": name or f"Advertiser {ad_account_id}",
        **details,
    }


def user(
    user_id: Any,
    age_bucket: str | None = None,
    gender: str | None = None,
    country: str | None = None,
    metro: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "age_bucket": age_bucket,
        "gender": gender,
        "country": country,
        "metro": metro,
        "device": device,
    }


def pin(pin_id: Any, ad_account_id: str | None = None, interest_id: str | None = None) -> dict:
    return {"pin_id": pin_id, "ad_account_id": ad_account_id, "interest_id": interest_id}


def event(user_id: Any, pin_id: Any, event_type: str = "SAVE", event_time: Any = None) -> dict:
    return {
        "event_time": at() if event_time is None else event_time,
        "user_id": user_id,
        "pin_id": pin_id,
        "event_type": event_type,
    }


def accounts_platform(accounts: list[dict[str, Any]]) -> Tables:
    """A platform of these ad accounts, each with a pin one user saved: an account quarantined
    shows in its pin's ``unknown_reference`` too, and every used account gets its documents."""
    return platform(
        interests=[interest("1", "Food")],
        ad_accounts=accounts,
        users=[user(1, "18-24", "female", "US")],
        pins=[pin(10 + i, row["ad_account_id"], "1") for i, row in enumerate(accounts)],
        events=[event(1, 10 + i) for i in range(len(accounts))],
    )


def platform(
    *,
    interests: list[dict[str, Any]],
    ad_accounts: list[dict[str, Any]],
    users: list[dict[str, Any]],
    pins: list[dict[str, Any]],
    events: list[dict[str, Any]],
    metros: list[dict[str, Any]] | None = None,
) -> Tables:
    tables: Tables = {"interests": interests, "ad_accounts": ad_accounts, "users": users}
    if metros is not None:
        tables["metros"] = metros
    tables["pins"] = pins
    tables["events"] = events
    return tables
