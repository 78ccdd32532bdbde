"""An ad account's optional ``country`` and ``currency`` columns (SPEC §2, issue 21): read when a
table's files have them (any format, any mix), null when they do not, checked against the v5
``Country`` and ``Currency`` enums (a value outside them quarantines the row as ``bad_value``), and
carried into the snapshot's accounts table — compared with the independent reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pinsights.contract import AD_ACCOUNT_COUNTRIES, AD_ACCOUNT_CURRENCIES
from pinsights.data.tables import TABLES_BY_NAME
from tests.datasets import (
    COLUMNS,
    Tables,
    account,
    accounts_platform,
    assert_engine_matches,
    run_engine,
    write_dataset,
)
from tests.reference import reference_build

SMALL = {"min_audience_size": 1, "min_cell_size": 1, "max_subcategories": 10, "window_days": 3}
CONTRACT = Path(__file__).parent / "fixtures" / "ad-accounts.openapi.json"


def test_the_value_sets_are_the_v5_enums() -> None:
    schemas = json.loads(CONTRACT.read_text())["components"]["schemas"]
    assert tuple(schemas["Country"]["enum"]) == AD_ACCOUNT_COUNTRIES
    assert tuple(schemas["Currency"]["enum"]) == AD_ACCOUNT_CURRENCIES
    table = TABLES_BY_NAME["ad_accounts"]
    assert table.column("country").allowed == AD_ACCOUNT_COUNTRIES
    assert table.column("currency").allowed == AD_ACCOUNT_CURRENCIES
    assert table.needed_column_names == ("ad_account_id", "name")
    assert table.absent_columns({"ad_account_id", "name", "currency"}) == ("country",)


DETAILED = [
    account("100", country="US", currency="USD"),
    account("200", country="gb", currency="gbp"),  # any case, kept upper case
    account("300", country="Fr", currency=None),
    account("400", country=None, currency="UNK"),
    account("500", country="KP", currency="EUR"),  # an ISO code the v5 enum does not have
    account("600", country="DE", currency="XYZ"),  # no such currency
    account("700", country="usa", currency="USD"),
    account("800", country="\u212ar", currency="KRW"),  # Kelvin sign: lower-cases to 'kr'
    account("900", country=" US", currency="USD"),  # the contract does not trim
]
SERVED = {
    "100": ("Advertiser 100", "US", "USD"),
    "200": ("Advertiser 200", "GB", "GBP"),
    "300": ("Advertiser 300", "FR", None),
    "400": ("Advertiser 400", None, "UNK"),
}


def build(tables: Tables, tmp_path: Path, fmt: str, **write: Any) -> Any:
    reference = reference_build(tables, **SMALL)
    write_dataset(tables, tmp_path / "data", fmt, **write)
    outcome = run_engine(
        tmp_path / "data",
        tmp_path / "store",
        accounts=sorted({row["ad_account_id"] for row in tables["ad_accounts"]}),
        categories=["1"],
        **SMALL,
    )
    assert_engine_matches(reference, outcome)
    return outcome


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "csv.gz", "jsonl.zst", "parquet+csv"])
def test_countries_and_currencies_are_read_checked_and_kept(tmp_path: Path, fmt: str) -> None:
    outcome = build(accounts_platform(DETAILED), tmp_path, fmt)
    assert outcome.tables["account_details"] == SERVED
    quarantined = {
        (row.table, row.rule, row.row["ad_account_id"])
        for row in outcome.quarantine
        if row.table == "ad_accounts"
    }
    assert quarantined == {
        ("ad_accounts", "bad_value", a) for a in ("500", "600", "700", "800", "900")
    }
    bad_pins = [row for row in outcome.quarantine if row.table == "pins"]
    assert {row.rule for row in bad_pins} == {"unknown_reference"} and len(bad_pins) == 5


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_without_the_columns_accounts_have_no_country_or_currency(tmp_path: Path, fmt: str) -> None:
    """Files without the columns build as before; a quarantined account's row shows only the
    columns its file has (no country or currency made up as null)."""
    accounts = [account("100"), account("200"), {"ad_account_id": "12-3", "name": "Bad id"}]
    outcome = build(accounts_platform(accounts), tmp_path, fmt, extra_columns=True)
    assert outcome.tables["account_details"] == {
        "100": ("Advertiser 100", None, None),
        "200": ("Advertiser 200", None, None),
    }
    (bad,) = [row for row in outcome.quarantine if row.table == "ad_accounts"]
    assert bad.rule == "bad_value"
    if fmt != "jsonl":  # a JSON line is kept as its text
        assert set(bad.row) == {*COLUMNS["ad_accounts"], "note", "extra_number"}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_one_column_without_the_other(tmp_path: Path, fmt: str) -> None:
    accounts = [account("100", currency="usd"), account("200", currency=None)]
    outcome = build(accounts_platform(accounts), tmp_path, fmt)
    assert outcome.tables["account_details"] == {
        "100": ("Advertiser 100", None, "USD"),
        "200": ("Advertiser 200", None, None),
    }


def test_json_lines_may_hold_the_field_on_some_lines_only(tmp_path: Path) -> None:
    tables = accounts_platform([account("100"), account("200"), account("300")])
    write_dataset(tables, tmp_path / "data", "parquet")
    (tmp_path / "data" / "ad_accounts.parquet").unlink()
    (tmp_path / "data" / "ad_accounts.jsonl").write_text(
        '{"ad_account_id": "100", "name": "A", "country": "ca"}\n'
        '{"ad_account_id": "200", "name": "B"}\n'
        '{"ad_account_id": "300", "name": "C", "country": "CA", "currency": null}\n'
    )
    outcome = run_engine(
        tmp_path / "data", tmp_path / "store", accounts=["100"], categories=["1"], **SMALL
    )
    assert outcome.error is None
    assert outcome.tables["account_details"] == {
        "100": ("A", "CA", None),
        "200": ("B", None, None),
        "300": ("C", "CA", None),
    }


def test_a_directory_where_only_some_files_have_the_column(tmp_path: Path) -> None:
    """A migration half done: the new Parquet file has the column, the old CSV file does not."""
    tables = accounts_platform([account("100"), account("200")])
    write_dataset(tables, tmp_path / "data", "parquet")
    (tmp_path / "data" / "ad_accounts.parquet").unlink()
    folder = tmp_path / "data" / "ad_accounts"
    write_dataset(
        {"ad_accounts": [account("100", country="JP", currency="JPY")]}, folder / "new", "parquet"
    )
    write_dataset({"ad_accounts": [account("200")]}, folder / "old", "csv")
    outcome = run_engine(
        tmp_path / "data", tmp_path / "store", accounts=["100"], categories=["1"], **SMALL
    )
    assert outcome.error is None
    assert outcome.tables["account_details"] == {
        "100": ("Advertiser 100", "JP", "JPY"),
        "200": ("Advertiser 200", None, None),
    }


def test_a_missing_name_column_still_fails_when_the_optional_ones_are_there(
    tmp_path: Path,
) -> None:
    tables = accounts_platform([account("100", country="US", currency="USD")])
    write_dataset(tables, tmp_path / "data", "csv", omit_column=("ad_accounts", "name"))
    outcome = run_engine(
        tmp_path / "data", tmp_path / "store", accounts=["100"], categories=["1"], **SMALL
    )
    assert outcome.error is not None
    assert "table 'ad_accounts' is missing column(s) name" in str(outcome.error)
    assert outcome.date is None
