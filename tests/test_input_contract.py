"""The input data contract (SPEC §2): every format and layout, ids as text, missing tables and
columns, the quarantine and the bad-row threshold, and input files left untouched."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.datasets import (
    COLUMNS,
    FORMATS,
    D,
    Tables,
    account,
    assert_engine_matches,
    at,
    event,
    hash_tree,
    interest,
    pin,
    platform,
    render_time,
    run_engine,
    user,
    write_dataset,
)
from tests.reference import INSIGHT_TYPES, TABLE_ORDER, reference_build

SMALL = {"min_audience_size": 2, "min_cell_size": 1, "max_subcategories": 10}
ACCOUNTS = ["100", "200", "31337"]
CATEGORIES = ["1", "2", "11", "424242"]
REQUIRED_TABLES = [t for t in TABLE_ORDER if t != "metros"]


def contract_tables() -> Tables:
    """A clean platform over three days, with every kind of value the contract allows."""
    zones = [dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(-dt.timedelta(hours=5))]
    users = [
        user(1, "18-24", "female", "US", "501", "iphone"),
        user(2, "25-34", "male", "us", "501", "android_mobile"),
        user(3, "65+", None, "FR", "803", "web"),
        user(4, None, "unspecified", "de", None, None),
        user(5, "35-44", "female", None, "0602", "ipad"),
        user(6, "45-49", "male", "GB", "999", "web_mobile"),
        user(7, "50-54", "female", "Jp", "501", "android_tablet"),
        user(-8, "55-64", None, "US", "501", "iphone"),
    ]
    events = []
    for i, u in enumerate([1, 2, 3, 4, 5, 6, 7, -8] * 3):
        day = D - dt.timedelta(days=i % 3)
        moment = dt.datetime.combine(day, dt.time(i % 24, i), dt.UTC).astimezone(zones[i % 3])
        pin_id = [10, 11, 20, 30][i % 4]
        event_type = ["IMPRESSION", "SAVE", "CLOSEUP", "OUTBOUND_CLICK"][(i // 2) % 4]
        events.append(event(u, pin_id, event_type, moment))
    return platform(
        interests=[
            interest("1", "Food, drinks"),
            interest("2", 'Say "travel"'),
            interest("11", "Recipes", "1"),
            interest("12", "Café", "1"),
            interest("111", "Vegan", "11"),
            interest("21", "Beaches", "2"),
        ],
        ad_accounts=[account("100"), account("200")],
        users=users,
        metros=[{"metro": "501", "name": "New York, NY"}, {"metro": "0602", "name": "Chicago, IL"}],
        pins=[pin(10, "100", "111"), pin(11, "100"), pin(20, "200", "21"), pin(30, None, "12")],
        events=events,
    )


def build(data_dir: Path, store_dir: Path, **options: Any) -> Any:
    return run_engine(
        data_dir,
        store_dir,
        accounts=ACCOUNTS,
        categories=CATEGORIES,
        **({"window_days": 3, **SMALL} | options),
    )


LAYOUTS = [(fmt, partitioned) for fmt in FORMATS for partitioned in (False, True)]


def test_every_format_and_layout_gives_the_same_documents(tmp_path: Path) -> None:
    tables = contract_tables()
    reference = reference_build(tables, window_days=3, **SMALL)
    documents = {}
    for fmt, partitioned in LAYOUTS:
        name = f"{fmt}-{'partitioned' if partitioned else 'single'}"
        written = write_dataset(tables, tmp_path / name, fmt, partitioned=partitioned)
        if partitioned:
            assert len(written.files["events"]) == 3
            assert all("date=" in path.parent.name for path in written.files["events"])
        outcome = build(tmp_path / name, tmp_path / f"store-{name}")
        assert_engine_matches(reference, outcome)
        documents[name] = outcome.raw_documents
    first = documents["parquet-single"]
    for name, raw in documents.items():
        assert raw == first, f"{name} gives other bytes than parquet-single"


@pytest.mark.parametrize("fmt", FORMATS)
def test_digit_string_ids_stay_strings(tmp_path: Path, fmt: str) -> None:
    tables = platform(
        interests=[
            interest("007", "Double-oh"),
            interest("7", "Seven"),
            interest("0070", "Sub", "007"),
        ],
        ad_accounts=[account("007"), account("0")],
        users=[user(1, metro="0501"), user(2, metro="0501")],
        pins=[pin(1, "007", "0070"), pin(2, "0", "7")],
        events=[event(1, 1), event(2, 1), event(2, 2)],
    )
    reference = reference_build(tables, **SMALL)
    write_dataset(tables, tmp_path / "data", fmt)
    outcome = run_engine(
        tmp_path / "data",
        tmp_path / "store",
        accounts=["007", "7", "0"],
        categories=["007", "7", "0070", "70"],
        **SMALL,
    )
    assert_engine_matches(reference, outcome)
    document = json.loads(outcome.raw_documents[("007", "YOUR_TOTAL_AUDIENCE")] or b"null")
    assert [c["id"] for c in document["categories"]] == ["007", "7"]
    assert document["categories"][0]["subcategories"][0]["id"] == "0070"
    assert document["demographics"]["metros"][0]["key"] == "0501"
    assert outcome.raw_documents[("7", "YOUR_TOTAL_AUDIENCE")] is None
    assert outcome.category_items[("007", "YOUR_TOTAL_AUDIENCE", "70")] is None


@pytest.mark.parametrize("table", REQUIRED_TABLES)
def test_a_missing_table_fails_naming_it_and_the_previous_snapshot_stays(
    tmp_path: Path, table: str
) -> None:
    tables = contract_tables()
    write_dataset(tables, tmp_path / "data", "csv")
    first = build(tmp_path / "data", tmp_path / "store", date=D)
    assert first.error is None and first.date == D

    (tmp_path / "data" / f"{table}.csv").unlink()
    failed = build(tmp_path / "data", tmp_path / "store", date=D + dt.timedelta(days=1))
    assert failed.error is not None
    assert table in str(failed.error)
    assert failed.date == D
    assert failed.raw_documents == first.raw_documents


def test_a_missing_table_publishes_nothing_in_a_new_store(tmp_path: Path) -> None:
    tables = contract_tables()
    del tables["events"]
    write_dataset(tables, tmp_path / "data", "parquet")
    outcome = build(tmp_path / "data", tmp_path / "store", date=D)
    assert outcome.error is not None and "events" in str(outcome.error)
    assert outcome.date is None


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("events", "event_type"),
        ("events", "event_time"),
        ("users", "country"),
        ("interests", "parent_id"),
        ("pins", "interest_id"),
        ("ad_accounts", "name"),
        ("metros", "name"),
    ],
)
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_missing_column_fails_naming_it(
    tmp_path: Path, table: str, column: str, fmt: str
) -> None:
    tables = contract_tables()
    write_dataset(tables, tmp_path / "good", fmt)
    first = build(tmp_path / "good", tmp_path / "store", date=D)
    assert first.error is None

    write_dataset(tables, tmp_path / "bad", fmt, omit_column=(table, column))
    failed = build(tmp_path / "bad", tmp_path / "store", date=D + dt.timedelta(days=1))
    assert failed.error is not None
    assert column in str(failed.error)
    assert failed.date == D


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_metros_table_is_optional(tmp_path: Path, fmt: str) -> None:
    tables = contract_tables()
    del tables["metros"]
    reference = reference_build(tables, window_days=3, **SMALL)
    write_dataset(tables, tmp_path / "data", fmt, partitioned=True)
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert_engine_matches(reference, outcome)
    metros = reference.documents[("100", "PINTEREST_TOTAL_AUDIENCE")]["demographics"]["metros"]
    assert {"key": "501", "name": "501", "ratio": 0.5} in metros


@pytest.mark.parametrize("fmt", FORMATS)
def test_extra_columns_are_ignored(tmp_path: Path, fmt: str) -> None:
    tables = contract_tables()
    write_dataset(tables, tmp_path / "plain", fmt)
    write_dataset(tables, tmp_path / "extra", fmt, extra_columns=True)
    plain = build(tmp_path / "plain", tmp_path / "store-plain")
    extra = build(tmp_path / "extra", tmp_path / "store-extra")
    assert plain.error is None and extra.error is None
    assert extra.raw_documents == plain.raw_documents


def bad_platform() -> Tables:
    """contract_tables with one bad row of every rule and table (events: 2 of 26)."""
    tables = contract_tables()
    tables["interests"].append(interest("5", "Orphan", "999"))
    tables["ad_accounts"].append({"ad_account_id": "1234567890123456789", "name": "Too long"})
    tables["users"].extend([user(1, "18-24"), user(20, gender="Female")])
    tables["metros"].append({"metro": "803", "name": None})
    tables["pins"].append(pin(40, "999", None))
    tables["events"].extend(
        [event(1, 40), event(2, 10, "CLICK"), {**event(3, 10), "event_time": None}]
    )
    return tables


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_many_bad_rows_fail_with_a_per_rule_summary_and_publish_nothing(
    tmp_path: Path, fmt: str
) -> None:
    write_dataset(contract_tables(), tmp_path / "good", fmt)
    first = build(tmp_path / "good", tmp_path / "store", date=D)
    assert first.error is None

    tables = bad_platform()
    reference = reference_build(tables, window_days=3, **SMALL)
    write_dataset(tables, tmp_path / "bad", fmt)
    failed = build(tmp_path / "bad", tmp_path / "store", max_bad_fraction=0.01)
    assert failed.error is not None
    message = str(failed.error)
    for table, rules in reference.quarantined().items():
        assert table in message
        for rule in rules:
            assert rule in message
    assert failed.date == D
    assert failed.raw_documents == first.raw_documents
    inspected = sorted((row.table, row.rule) for row in failed.quarantine)
    assert inspected == sorted((table, rule) for table, _i, rule in reference.verdicts)


def test_a_bad_fraction_equal_to_the_limit_does_not_fail(tmp_path: Path) -> None:
    tables = contract_tables()
    tables["events"] = [event(1, 10, event_time=at(hour=h % 24)) for h in range(99)]
    tables["events"].append(event(1, 10, "CLICK"))
    reference = reference_build(tables, **SMALL)
    write_dataset(tables, tmp_path / "data", "parquet")
    outcome = build(tmp_path / "data", tmp_path / "store", window_days=30, max_bad_fraction=0.01)
    assert outcome.error is None
    assert_engine_matches(reference, outcome)

    tables["events"].append(event(1, 10, "CLICK"))
    write_dataset(tables, tmp_path / "more", "parquet")
    failed = build(tmp_path / "more", tmp_path / "store", window_days=30, max_bad_fraction=0.01)
    assert failed.error is not None


def _as_read(value: Any) -> str | None:
    """A value as the quarantine shows it, compared as text; an empty CSV field is null."""
    if value is None or value == "":
        return None
    return str(value)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_quarantine_holds_each_bad_row_whole_with_table_source_file_and_rule(
    tmp_path: Path, fmt: str
) -> None:
    tables = bad_platform()
    tables["users"].append(user("1.5", "18-24"))
    tables["events"].append(event(99, 10))
    reference = reference_build(tables, window_days=3, **SMALL)
    written = write_dataset(tables, tmp_path / "data", fmt, partitioned=True)
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert_engine_matches(reference, outcome)

    def text_of(table: str, row: dict[str, Any]) -> list[str | None]:
        values = []
        for column in COLUMNS[table]:
            value = row[column]
            if isinstance(value, dt.datetime):
                value = render_time(value)
            values.append(_as_read(value))
        return values

    expected = sorted(
        (
            table,
            rule,
            str(written.source[(table, index)].resolve()),
            json.dumps(text_of(table, tables[table][index])),
        )
        for table, index, rule in reference.verdicts
    )
    for row in outcome.quarantine:
        assert set(COLUMNS[row.table]) <= set(row.row), f"{row.table} row not whole: {row.row}"
    actual = sorted(
        (
            row.table,
            row.rule,
            str(Path(row.source_file).resolve()),
            json.dumps([_as_read(row.row[column]) for column in COLUMNS[row.table]]),
        )
        for row in outcome.quarantine
    )
    assert actual == expected


@pytest.mark.parametrize(("fmt", "partitioned"), LAYOUTS)
def test_input_files_are_byte_identical_after_a_build(
    tmp_path: Path, fmt: str, partitioned: bool
) -> None:
    tables = bad_platform()
    write_dataset(tables, tmp_path / "data", fmt, partitioned=partitioned)
    before = hash_tree(tmp_path / "data")
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert outcome.error is None
    assert hash_tree(tmp_path / "data") == before


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_int64_text_that_is_not_an_integer_is_a_bad_value(tmp_path: Path, fmt: str) -> None:
    bad = ["abc", "1e3", "9223372036854775808"] + (["1.5", "+5"] if fmt == "csv" else [1.5])
    tables = contract_tables()
    tables["users"].extend(user(value) for value in bad)
    tables["users"].append(user("-0042" if fmt == "csv" else -42))
    tables["events"].append(event(-42, 10, event_time=at(hour=1)))
    reference = reference_build(tables, window_days=3, **SMALL)
    assert reference.quarantined() == {"users": {"bad_value": len(bad)}}
    write_dataset(tables, tmp_path / "data", fmt)
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert_engine_matches(reference, outcome)


def test_the_build_report_lists_every_table_with_read_used_and_rules(tmp_path: Path) -> None:
    tables = bad_platform()
    write_dataset(tables, tmp_path / "data", "parquet")
    outcome = build(tmp_path / "data", tmp_path / "store")
    report = outcome.report
    assert report is not None
    assert report["engine"] == "duckdb"
    assert set(TABLE_ORDER) <= set(report["tables"])
    for table in TABLE_ORDER:
        entry = report["tables"][table]
        assert entry["read"] == len(tables[table])
        assert entry["used"] + sum(entry["quarantined"].values()) == entry["read"]
    assert report["tables"]["pins"]["quarantined"]["unknown_reference"] == 1
    assert all(isinstance(seconds, int | float) for seconds in report["timings"].values())
    for insight_type in INSIGHT_TYPES:
        assert outcome.raw_documents[("100", insight_type)] is not None
