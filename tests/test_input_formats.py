"""Real exports as they arrive (SPEC §2): a format per table, compressed text, a byte-order mark and
CRLF, directories mixing formats, malformed lines quarantined with file, line and raw text, and
files that cannot be read at all. Every build is compared with the independent reference and with
the documents of a clean Parquet copy of the same rows."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pinsights.store import Store
from tests.datasets import (
    SUFFIXES,
    D,
    TextStyle,
    assert_engine_matches,
    write_dataset,
)
from tests.reference import TABLE_ORDER, reference_build
from tests.test_input_contract import SMALL, bad_platform, build, contract_tables

MALFORMED_CSV = {
    # users has 6 columns: each of these lines cannot be read as a users row
    "too few fields": b"41,18-24,female",
    "too many fields": b"42,18-24,female,US,501,iphone,surplus",
    "broken quoting": b'43,"18-24"x,female,US,501,iphone',
    "not UTF-8": b"44,18-24,f\xe9male,US,501,iphone",
}
MALFORMED_JSONL = {
    "an array": b"[45, 2]",
    "a number": b"46",
    "cut short": b'{"user_id": 47, "age_bucket": "18-',
    "not UTF-8": b'{"user_id": 48, "gender": "f\xe9male"}',
    "a string": b'"user 49"',
}


def clean_documents(tmp_path: Path, tables: dict[str, Any]) -> dict[Any, bytes | None]:
    write_dataset(tables, tmp_path / "clean", "parquet")
    outcome = build(tmp_path / "clean", tmp_path / "store-clean")
    assert outcome.error is None
    return outcome.raw_documents


def accounted(report: dict[str, Any]) -> None:
    """Nothing lost: every line read is used or quarantined under exactly one rule."""
    for table, entry in report["tables"].items():
        quarantined = sum(entry["quarantined"].values())
        assert entry["read"] == entry["used"] + quarantined, f"{table}: {entry}"


def test_tables_in_different_formats_with_bad_rows_in_several_tables_build(
    tmp_path: Path,
) -> None:
    """The crash of the issue: users in CSV, pins in JSON Lines, events in Parquet, each with bad
    rows, quarantined together in one store."""
    tables = bad_platform()
    reference = reference_build(tables, window_days=3, **SMALL)
    formats = dict.fromkeys(TABLE_ORDER, "parquet") | {"users": "csv", "pins": "jsonl"}
    formats["metros"] = "jsonl.gz"
    write_dataset(tables, tmp_path / "data", formats)
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert_engine_matches(reference, outcome)
    assert outcome.report is not None
    accounted(outcome.report)
    assert {row.table for row in outcome.quarantine} >= {"users", "pins", "events"}


@pytest.mark.parametrize("suffix", [s for s in SUFFIXES if s != "parquet"])
def test_compressed_text_with_bom_and_crlf_gives_the_documents_of_a_clean_copy(
    tmp_path: Path, suffix: str
) -> None:
    tables = contract_tables()
    expected = clean_documents(tmp_path, tables)
    style = TextStyle(bom=True, crlf=True)
    write_dataset(tables, tmp_path / "data", suffix, styles=dict.fromkeys(tables, style))
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert outcome.error is None, outcome.error
    assert outcome.raw_documents == expected


def test_a_directory_mixing_formats_and_tables_in_every_format_give_the_same_documents(
    tmp_path: Path,
) -> None:
    tables = contract_tables()
    expected = clean_documents(tmp_path, tables)
    formats = {
        "interests": "csv.zst",
        "ad_accounts": "jsonl",
        "users": "jsonl.gz+csv+parquet",
        "metros": "csv.gz",
        "pins": "parquet+jsonl.zst",
        "events": "parquet+csv.gz",
    }
    written = write_dataset(tables, tmp_path / "data", formats, extra_columns=True)
    assert {p.name for p in written.files["events"]} == {"part-0.parquet", "part-1.csv.gz"}
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert outcome.error is None, outcome.error
    assert outcome.raw_documents == expected


@pytest.mark.parametrize(
    ("suffix", "lines"),
    [
        ("csv", MALFORMED_CSV),
        ("csv.gz", MALFORMED_CSV),
        ("jsonl", MALFORMED_JSONL),
        ("jsonl.zst", MALFORMED_JSONL),
    ],
)
def test_malformed_lines_are_quarantined_with_file_line_and_raw_text(
    tmp_path: Path, suffix: str, lines: dict[str, bytes]
) -> None:
    tables = contract_tables()
    expected = clean_documents(tmp_path, tables)
    broken = tuple((position * 2, raw) for position, raw in enumerate(lines.values()))
    styles = {
        "users": TextStyle(malformed=broken, crlf=True),
        "events": TextStyle(malformed=((3, lines["not UTF-8"]),)),
    }
    written = write_dataset(tables, tmp_path / "data", suffix, styles=styles)
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert outcome.error is None, outcome.error
    assert outcome.raw_documents == expected, "malformed lines must not change any document"
    assert outcome.report is not None
    accounted(outcome.report)
    users = outcome.report["tables"]["users"]
    assert users["read"] == len(tables["users"]) + len(lines)
    assert users["quarantined"] == {"malformed": len(lines)}
    assert outcome.report["tables"]["events"]["quarantined"] == {"malformed": 1}

    quarantined = sorted((r.table, r.source_file, r.line) for r in outcome.quarantine)
    assert quarantined == sorted((t, str(path), line) for t, path, line, _raw in written.malformed)
    by_line = {(r.table, r.line): r for r in outcome.quarantine}
    for table, _path, line, raw in written.malformed:
        row = by_line[(table, line)]
        assert row.rule == "malformed" and row.row is None
        try:
            assert row.text == raw.decode("utf-8")
        except UnicodeDecodeError:  # the raw text keeps every byte that is text
            assert row.text.startswith(raw.split(b"\xe9")[0].decode())


def test_the_quarantine_lists_malformed_lines_in_file_order(tmp_path: Path) -> None:
    """`pinsights quarantine` shows a file's broken lines in the order a user reads the file."""
    tables = contract_tables()
    raws = list(MALFORMED_CSV.values()) * 3
    styles = {"users": TextStyle(malformed=tuple(enumerate(raws)))}
    written = write_dataset(tables, tmp_path / "data", "csv", styles=styles)
    outcome = build(tmp_path / "data", tmp_path / "store", max_bad_fraction=1.0)
    assert outcome.error is None
    shown = [r.line for r in Store(tmp_path / "store").quarantine_rows() if r.rule == "malformed"]
    assert shown == sorted(line for _t, _p, line, _raw in written.malformed)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_malformed_lines_count_against_the_bad_fraction(tmp_path: Path, suffix: str) -> None:
    tables = contract_tables()
    raw = MALFORMED_CSV["too many fields"] if suffix == "csv" else MALFORMED_JSONL["an array"]
    styles = {"events": TextStyle(malformed=((0, raw),))}
    write_dataset(tables, tmp_path / "data", suffix, styles=styles)
    failed = build(tmp_path / "data", tmp_path / "store", max_bad_fraction=0.01)
    assert failed.error is not None
    assert "events: 1 of 25 rows quarantined" in str(failed.error)
    assert "malformed: 1" in str(failed.error)
    assert failed.date is None


OPEN_QUOTE = b'50,"18-24,female,US,501,iphone'  # a quote never closed
STRAY_QUOTE = b'51,18-24",female,US,501'  # 5 fields; its quote closes an open one read as CSV


@pytest.mark.parametrize("suffix", ["csv", "csv.zst"])
@pytest.mark.parametrize("crlf", [False, True])
def test_an_unterminated_quote_is_malformed_on_its_own_line_and_the_next_lines_are_rows(
    tmp_path: Path, suffix: str, crlf: bool
) -> None:
    """CSV lets a quoted field hold line breaks, so the reader takes every line after a quote
    never closed (or up to a stray quote lines later) into one broken record; counted as one
    line, it would hide them all from `read` and from the bad-row limit. Each such line is
    malformed on its own, with its own number, and the lines after it are read as rows."""
    tables = contract_tables()
    broken = ((1, OPEN_QUOTE), (3, STRAY_QUOTE), (5, OPEN_QUOTE), (8, OPEN_QUOTE))
    styles = {"users": TextStyle(bom=crlf, crlf=crlf, malformed=broken)}
    written = write_dataset(tables, tmp_path / "data", suffix, styles=styles)
    outcome = build(tmp_path / "data", tmp_path / "store", max_bad_fraction=1.0)
    assert outcome.report is not None, outcome.error
    accounted(outcome.report)
    users = outcome.report["tables"]["users"]
    assert users == {"read": 12, "used": 8, "quarantined": {"malformed": 4}}
    rows = sorted((r.line, r.text) for r in outcome.quarantine if r.table == "users")
    assert rows == sorted((line, raw.decode()) for _t, _p, line, raw in written.malformed)
    assert outcome.raw_documents == clean_documents(tmp_path, tables)


def test_the_lines_after_an_unterminated_quote_count_against_the_bad_fraction(
    tmp_path: Path,
) -> None:
    """The audit's case: a quote left open, then rows with a bad value. They are 6 of 14 rows,
    over the limit; read as one broken record they were 1 of 9, under it, and published."""
    tables = contract_tables()
    written = write_dataset(tables, tmp_path / "data", "csv")
    (users_csv,) = written.files["users"]
    bad = [f"{100 + i},99-99,female,US,501,iphone".encode() for i in range(5)]
    users_csv.write_bytes(users_csv.read_bytes() + b"\n".join([b'"broken,quote', *bad]) + b"\n")
    failed = build(tmp_path / "data", tmp_path / "store", max_bad_fraction=0.2)
    assert failed.error is not None and failed.date is None
    assert "users: 6 of 14 rows quarantined" in str(failed.error)
    assert "malformed: 1, bad_value: 5" in str(failed.error)


def test_a_file_with_too_many_unterminated_quotes_is_refused_naming_it(tmp_path: Path) -> None:
    """Each quote left open costs a pass over the rest of the file: past 100 in one file, the
    build stops with a message naming the file, and publishes nothing."""
    tables = contract_tables()
    lines = ((i, OPEN_QUOTE) for i in range(102))  # the last, at the end, needs no cut
    styles = {"users": TextStyle(malformed=tuple(lines))}
    written = write_dataset(tables, tmp_path / "data", "csv", styles=styles)
    failed = build(tmp_path / "data", tmp_path / "store", max_bad_fraction=1.0)
    assert failed.error is not None and failed.date is None
    (users_csv,) = written.files["users"]
    assert f"cannot read {users_csv}: more than 100 of its lines open a quote" in str(failed.error)


def test_a_quoted_field_holding_a_line_break_is_one_row(tmp_path: Path) -> None:
    """A quote closed lines later in a well-formed record is CSV, not damage: one row, read and
    used, and the lines after it are numbered as before (the record counts as one line)."""
    tables = contract_tables()
    written = write_dataset(tables, tmp_path / "data", "csv")
    (users_csv,) = written.files["users"]
    lines = users_csv.read_bytes() + b'9,18-24,female,US,"50\n1",iphone\n' + OPEN_QUOTE + b"\n"
    users_csv.write_bytes(lines + b"10,18-24,female,US,501,iphone\n")
    outcome = build(tmp_path / "data", tmp_path / "store")
    assert outcome.report is not None, outcome.error
    assert outcome.report["tables"]["users"] == {
        "read": 11,
        "used": 10,
        "quarantined": {"malformed": 1},
    }
    (row,) = [r for r in outcome.quarantine if r.table == "users"]
    assert (row.line, row.text) == (11, OPEN_QUOTE.decode())


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _break_parquet_footer(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-8] + b"\0" * 8)


def _break_parquet_page(path: Path) -> None:
    """Garble compressed data inside the file; the footer stays valid, so the damage only shows
    when the rows are read."""
    data = bytearray(path.read_bytes())
    for i in range(4, 4 + 64):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("suffix", "damage"),
    [
        ("csv.gz", _truncate),
        ("jsonl.gz", _truncate),
        ("csv.zst", _truncate),
        ("jsonl.zst", _truncate),
        ("parquet", _break_parquet_footer),
        ("parquet", _break_parquet_page),
    ],
)
def test_a_file_that_cannot_be_read_stops_the_build_naming_it(
    tmp_path: Path, suffix: str, damage: Any
) -> None:
    tables = contract_tables()
    tables["events"] = tables["events"] * 200  # a gzip stream long enough to cut in the middle
    write_dataset(tables, tmp_path / "good", "parquet")
    first = build(tmp_path / "good", tmp_path / "store", date=D)
    assert first.error is None

    written = write_dataset(tables, tmp_path / "data", {t: suffix for t in tables})
    damaged = written.files["events"][0]
    damage(damaged)
    failed = build(tmp_path / "data", tmp_path / "store", date=D + dt.timedelta(days=1))
    assert failed.error is not None
    assert f"cannot read {damaged}" in str(failed.error)
    assert "export it again" in str(failed.error)
    assert failed.date == D, "the previous snapshot stays"

    cli = subprocess.run(
        [
            *(sys.executable, "-m", "pinsights.cli", "build"),
            *("--data", str(tmp_path / "data"), "--store", str(tmp_path / "store-cli")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 1
    assert str(damaged) in cli.stderr.replace("\n", "")  # the console wraps long lines
    assert "Traceback" not in cli.stderr


def test_pinsights_quarantine_shows_malformed_lines_with_file_and_line(tmp_path: Path) -> None:
    tables = contract_tables()
    styles = {"users": TextStyle(malformed=((2, MALFORMED_CSV["too few fields"]),))}
    written = write_dataset(tables, tmp_path / "data", "csv.gz", styles=styles)
    (table, path, line, raw) = written.malformed[0]

    def pinsights(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pinsights.cli", *args, "--store", str(tmp_path / "s")]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    built = pinsights(
        "build", "--data", str(tmp_path / "data"), "--json", "--max-bad-fraction", "1"
    )
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["tables"]["users"]["quarantined"] == {"malformed": 1}
    assert report["tables"]["users"]["read"] == len(tables["users"]) + 1

    shown = json.loads(pinsights("quarantine", "--json").stdout)
    assert shown["summary"] == {"users": {"malformed": 1}}
    (row,) = shown["rows"]
    assert row == {
        "table": table,
        "source_file": str(path),
        "line": line,
        "rule": "malformed",
        "row": None,
        "text": raw.decode(),
    }
    text = pinsights("quarantine").stderr
    assert "malformed" in text and raw.decode() in text


GOOD_TIMES = [
    "2026-11-01T12:00:00Z",
    "2026-11-01T14:00:00.250+02:00",
    "2026-11-01 12:00:00",
    "2026-11-01T12:00Z",
    "2026-11-01T13:00:00+0100",
    "2026-11-01T13:00:00+01",
    "2026-11-01T12:00:00.123456789Z",
    "2026-11-01",
]
BAD_TIMES = [
    " 2026-11-01T12:00:00Z",
    "2026-11-01T24:00:00Z",
    "20261101T120000Z",
    "2026-11-01t12:00:00z",
    "2026-11-01T12:00:00 Z",
    "01/11/2026 12:00",
]


@pytest.mark.parametrize("suffix", ["csv", "jsonl.gz"])
def test_event_times_are_iso_8601_with_z_or_an_offset_with_or_without_fractions(
    tmp_path: Path, suffix: str
) -> None:
    tables = contract_tables()
    tables["events"] += [
        {"event_time": text, "user_id": 1, "pin_id": 10, "event_type": "SAVE"}
        for text in GOOD_TIMES + BAD_TIMES
    ]
    reference = reference_build(tables, window_days=3, **SMALL)
    assert reference.quarantined() == {"events": {"bad_value": len(BAD_TIMES)}}
    write_dataset(tables, tmp_path / "data", suffix)
    assert_engine_matches(reference, build(tmp_path / "data", tmp_path / "store"))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_one_broken_line_in_twenty_thousand_is_quarantined_not_fatal(
    tmp_path: Path, suffix: str
) -> None:
    """The issue's report: one line with a wrong field count in a 20,000-line export stopped the
    build with DuckDB's advice. Now it is one malformed line, at its exact line number."""
    tables = contract_tables()
    tables["events"] = tables["events"] * 834  # 20,016 events
    expected = clean_documents(tmp_path, tables)
    raw = MALFORMED_CSV["too many fields"] if suffix == "csv" else MALFORMED_JSONL["cut short"]
    styles = {"events": TextStyle(malformed=((10_000, raw), (20_015, raw)))}
    written = write_dataset(tables, tmp_path / "data", suffix, styles=styles)
    outcome = build(tmp_path / "data", tmp_path / "store", max_bad_fraction=0.01)
    assert outcome.error is None, outcome.error
    assert outcome.raw_documents == expected
    assert outcome.report is not None
    assert outcome.report["tables"]["events"] == {
        "read": 20_018,
        "used": 20_016,
        "quarantined": {"malformed": 2},
    }
    header = 1 if suffix == "csv" else 0
    assert [line for *_, line, _raw in written.malformed] == [10_001 + header, 20_017 + header]
    assert sorted(r.line for r in outcome.quarantine) == [10_001 + header, 20_017 + header]
