"""The snapshot format made for point lookups (SQLite, formats 2 to 4): what a reader relies on at its edges.

Keyed reads that never scan (the query plans say so), a missing account or date, publishes while
readers read, a truncated file found by ``store check``, a store written by an older pinsights
(format 1, DuckDB) served as it is and converted by ``store check`` — byte for byte the same answers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from pinsights.store import EMPTY_ITEMS, Snapshot, SnapshotInfo, Store, bodies
from pinsights.store.bodies import SLOT, TABLE_HEADER
from pinsights.store.legacy_snapshot import write_legacy_snapshot_file
from pinsights.store.snapshot import (
    FORMAT,
    LEGACY_FORMAT,
    SnapshotFile,
    SnapshotFileError,
    write_snapshot_file,
)
from tests.conftest import (
    INSIGHT_TYPES,
    RunningServer,
    insight_document,
    mint,
    write_snapshot,
)
from tests.processes import pinsights

DAY = dt.date(2026, 11, 20)
INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type={type}"
AUDIENCES = {
    "1001": {"YOUR_TOTAL_AUDIENCE": 1500, "YOUR_ENGAGED_AUDIENCE": 300},
    "1002": {"YOUR_TOTAL_AUDIENCE": 90},
}


def newest(store: Path) -> Snapshot:
    snapshot = Store(store).latest()
    assert snapshot is not None
    return snapshot


def every_document(store: Path) -> dict[tuple[str, str, str], bytes]:
    """What a reader serves for every account and type of every retained date."""
    documents = {}
    for snapshot in Store(store).all_snapshots():
        for record in snapshot.accounts():
            for kind in INSIGHT_TYPES:
                body = snapshot.document(record.ad_account_id, kind)
                assert body is not None
                documents[(snapshot.date.isoformat(), record.ad_account_id, kind)] = body
    return documents


def check(store: Path, *extra: str) -> tuple[int, dict]:
    result = pinsights("store", "check", "--store", str(store), "--json", *extra)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_snapshot_is_an_owner_only_sqlite_file_of_the_format_the_manifest_names(
    tmp_path: Path,
) -> None:
    info = write_snapshot(tmp_path, DAY, AUDIENCES)
    path = tmp_path / info.file
    assert path.suffix == ".sqlite" and info.format == FORMAT
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["snapshots"][0]["format"] == FORMAT
    with sqlite3.connect(path.as_uri() + "?mode=ro", uri=True) as con:
        assert con.execute("PRAGMA quick_check").fetchall() == [("ok",)]


def test_every_read_of_the_serving_path_is_keyed_never_a_scan(tmp_path: Path) -> None:
    """The statements a request runs, as SQLite plans them: SEARCH on a key, never SCAN."""
    write_snapshot(tmp_path, DAY, AUDIENCES)
    snapshot = newest(tmp_path)
    statements: list[str] = []
    con = snapshot._cursor()
    con.set_trace_callback(statements.append)
    snapshot.account_document("1001", "YOUR_TOTAL_AUDIENCE")
    snapshot.document("1001", "PINTEREST_TOTAL_AUDIENCE")
    snapshot.category_items("1001", "YOUR_TOTAL_AUDIENCE", "10")
    snapshot.qualifying_audiences("1001")
    snapshot.account("1001")
    snapshot.accounts_after(None, 25)
    snapshot.accounts_after("1001", 25)
    con.set_trace_callback(None)
    assert len(statements) >= 7
    for statement in statements:
        plan = [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + statement).fetchall()]
        assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)
        scans = [
            s
            for s in plan
            if s.startswith("SCAN") and s != "SCAN CONSTANT ROW" and not s.startswith("SCAN (")
        ]
        # an index walked in order is a range only when a LIMIT ends it (a page of the list)
        ranges = [s for s in scans if "USING" in s and "INDEX" in s and "LIMIT" in statement]
        assert scans == ranges, (statement, plan)


def test_missing_account_date_audience_and_category(tmp_path: Path) -> None:
    write_snapshot(tmp_path, DAY, AUDIENCES)
    snapshot = newest(tmp_path)
    assert snapshot.account_document("999", "YOUR_TOTAL_AUDIENCE") == (False, None)
    assert snapshot.document("999", "PINTEREST_TOTAL_AUDIENCE") is None, "shared, but not for 999"
    assert snapshot.category_items("999", "YOUR_TOTAL_AUDIENCE", "10") is None
    assert snapshot.qualifying_audiences("999") == []
    assert snapshot.account("999") is None
    assert snapshot.category_items("1001", "YOUR_TOTAL_AUDIENCE", "424242") is None
    assert snapshot.category_items("1001", "YOUR_TOTAL_AUDIENCE", "30") == EMPTY_ITEMS
    assert snapshot.qualifying_audiences("1002") == ["PINTEREST_TOTAL_AUDIENCE"]
    assert Store(tmp_path).snapshot(DAY - dt.timedelta(days=1)) is None


def test_the_account_list_pages_in_numeric_order(tmp_path: Path) -> None:
    accounts = ["7", "10", "9", "100", "11", "8"]
    write_snapshot(tmp_path, DAY, {a: {} for a in accounts}, details={"10": {"name": "Ten"}})
    snapshot = newest(tmp_path)
    pages, after = [], None
    while page := snapshot.accounts_after(after, 2):
        pages.append([record.ad_account_id for record in page])
        after = page[-1].ad_account_id
    assert pages == [["7", "8"], ["9", "10"], ["11", "100"]]
    ten = snapshot.account("10")
    assert ten is not None and ten.name == "Ten" and ten.country is None


def test_readers_across_publishes_see_whole_documents_of_one_snapshot(tmp_path: Path) -> None:
    """Threads read the newest document while snapshots are published (retain 1: every older
    file is unlinked under them); each answer is a complete document of one published date."""
    days = [DAY + dt.timedelta(days=i) for i in range(8)]
    write_snapshot(tmp_path, days[0], AUDIENCES, retain=1)
    expected = {
        json.dumps(
            insight_document("YOUR_TOTAL_AUDIENCE", day, 1500), separators=(",", ":")
        ).encode()
        for day in days
    }
    stop, errors, answers = threading.Event(), [], []
    store = Store(tmp_path)

    def read() -> None:
        try:
            while not stop.is_set():
                snapshot = store.latest()
                assert snapshot is not None
                answers.append(snapshot.document("1001", "YOUR_TOTAL_AUDIENCE"))
        except Exception as error:  # reported below, with the answers so far
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for day in days[1:]:
            write_snapshot(tmp_path, day, AUDIENCES, retain=1)
            # Counted once the publish has returned: answers read while it ran are of the date
            # before, and at most one a reader (3) can still be in flight.
            seen = len(answers)
            while len(answers) < seen + 20 and not errors:
                stop.wait(0.001)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    assert set(answers) <= expected and len(set(answers)) >= 3
    newest_body = max(expected, key=lambda body: json.loads(body)["date"])
    assert newest_body in answers[-20:], "the last publish was read"
    assert len(list((tmp_path / "snapshots").iterdir())) == 1


def test_a_thread_reading_a_snapshot_another_thread_opened_follows_the_manifest_when_it_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the test above met under load, made deterministic: thread A opened the newest
    snapshot; thread B read the manifest; a publish (retain 1) unlinked that file; B then asks
    for the newest snapshot, gets A's open one from the store's cache, and has no connection of
    its own to it. B must get the new snapshot, not SnapshotFileGone."""
    write_snapshot(tmp_path, DAY, AUDIENCES, retain=1)
    store = Store(tmp_path)
    assert store.latest() is not None  # opened on this thread (A)
    seen_by_b = store.snapshots()  # the manifest as B read it, before the publish
    write_snapshot(tmp_path, DAY + dt.timedelta(days=1), AUDIENCES, retain=1)
    refresh = store._refresh
    monkeypatch.setattr(
        store, "_refresh", lambda force=False: refresh(force=True) if force else seen_by_b
    )
    read: list[object] = []

    def thread_b() -> None:
        try:
            snapshot = store.latest()
            assert snapshot is not None
            read.append((snapshot.date, snapshot.document("1001", "YOUR_TOTAL_AUDIENCE")))
        except Exception as error:
            read.append(error)

    b = threading.Thread(target=thread_b)
    b.start()
    b.join()
    [answer] = read
    assert not isinstance(answer, Exception), answer
    assert answer[0] == DAY + dt.timedelta(days=1)


def test_a_truncated_snapshot_is_found_by_store_check_and_set_aside(tmp_path: Path) -> None:
    write_snapshot(tmp_path, DAY - dt.timedelta(days=1), AUDIENCES)
    info = write_snapshot(tmp_path, DAY, AUDIENCES)
    path = tmp_path / info.file
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)

    status, findings = check(tmp_path, "--no-repair")
    assert status == 6
    assert any(f"snapshot {DAY}" in problem for problem in findings["problems"]), findings
    status, findings = check(tmp_path)
    assert status == 0, findings
    assert any(f"dropped snapshot {DAY}" in line for line in findings["repaired"])
    assert (tmp_path / "damaged" / path.name).stat().st_size == size // 2
    assert [i.date for i in Store(tmp_path).snapshots()] == [DAY - dt.timedelta(days=1)]


def test_a_file_that_is_not_a_snapshot_is_refused_clearly(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(SnapshotFileError, match="not a pinsights snapshot"):
        SnapshotFile(other)


def _legacy_store(store: Path, days: list[dt.date]) -> dict[tuple[str, str, str], bytes]:
    """A store as an older pinsights left it: DuckDB files, a manifest without formats; returns
    what it served (read through today's format-2 files of the same contents first)."""
    twin = store.parent / "twin"
    for day in days:
        write_snapshot(twin, day, AUDIENCES)
    served = every_document(twin)
    twin_store = Store(twin)
    entries = []
    (store / "snapshots").mkdir(parents=True, mode=0o700)
    for info in twin_store.snapshots():
        con = newest_connection(twin / info.file)
        tables = {
            name: _arrow(con, name)
            for name in (
                "meta",
                "accounts",
                "level1_interests",
                "audiences",
                "documents",
                "category_items",
            )
        }
        name = f"snapshots/{info.date}--{info.build_id}.duckdb"
        write_legacy_snapshot_file(store / name, tables)
        entries.append({k: v for k, v in info.to_json().items() if k != "format"} | {"file": name})
    (store / "manifest.json").write_text(json.dumps({"format": 1, "snapshots": entries}))
    return served


def newest_connection(path: Path) -> sqlite3.Connection:
    """A snapshot file's tables as readers see them (format 3: ``documents`` with its bodies)."""
    return SnapshotFile(path).connection()


def _arrow(con: sqlite3.Connection, table: str) -> pa.Table:
    cursor = con.execute(f"SELECT * FROM {table}")
    names = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    if "qualifies" in columns:
        columns["qualifies"] = [bool(value) for value in columns["qualifies"]]
    return pa.table(columns)


def test_an_older_store_is_served_as_it_is_then_converted_by_store_check(
    tmp_path: Path, server_factory
) -> None:
    store = tmp_path / "store"
    days = [DAY - dt.timedelta(days=1), DAY]
    served = _legacy_store(store, days)
    assert {i.format for i in Store(store).snapshots()} == {LEGACY_FORMAT}
    assert every_document(store) == served

    server: RunningServer = server_factory(store)
    token = mint()
    for account in AUDIENCES:
        for kind in INSIGHT_TYPES:
            response = server.get(INSIGHTS.format(account=account, type=kind), token)
            assert response.status_code == 200
            assert response.content == served[(DAY.isoformat(), account, kind)]
    assert (
        server.get(INSIGHTS.format(account="999", type=INSIGHT_TYPES[0]), token).status_code == 403
    )

    status, findings = check(store, "--no-repair")
    assert status == 0 and findings["repaired"] == []
    status, findings = check(store)
    assert status == 0, findings
    assert sum("converted snapshot" in line for line in findings["repaired"]) == 2
    assert {i.format for i in Store(store).snapshots()} == {FORMAT}
    assert sorted(p.suffix for p in (store / "snapshots").iterdir()) == [".sqlite", ".sqlite"]
    assert every_document(store) == served, "converted byte for byte"
    for account in AUDIENCES:
        response = server.get(INSIGHTS.format(account=account, type=INSIGHT_TYPES[0]), token)
        assert response.content == served[(DAY.isoformat(), account, INSIGHT_TYPES[0])]
    status, findings = check(store)
    assert status == 0 and findings["repaired"] == []


def test_a_manifest_naming_a_format_from_the_future_is_a_clear_error(tmp_path: Path) -> None:
    info = write_snapshot(tmp_path, DAY, AUDIENCES)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["snapshots"][0]["format"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="format 99"):
        Store(tmp_path).latest()
    assert SnapshotInfo.from_json(manifest["snapshots"][0]).format == 99
    assert os.path.exists(tmp_path / info.file)


def test_writing_refuses_a_table_without_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs the table"):
        write_snapshot_file(tmp_path / "x.sqlite", {})


# --- formats 3 and 4: bodies after the database ------------------------------------------------


@pytest.mark.parametrize("format", [3, 4])
def test_the_locator_is_written_first_and_the_bodies_after_the_database(
    tmp_path: Path, format: int
) -> None:
    """Format 3's layout: the (account, type) -> body locator's B-tree right after meta (in the
    file's first, mapped pages whatever its size), every body after the database's pages, one
    after the other, the file ending where the last one does. Format 4: the same, with the hash
    table between the database and the bodies."""
    info = write_snapshot(tmp_path, DAY, AUDIENCES, format=format)
    path = tmp_path / info.file
    snapshot_file = SnapshotFile(path)
    assert snapshot_file.format == format
    con = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    roots = dict(con.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table'"))
    assert "documents" not in roots
    assert roots["document_offsets"] == min(r for name, r in roots.items() if name != "meta")
    located = con.execute(
        "SELECT ad_account_id, insight_type, body_start, body_length FROM document_offsets"
        " ORDER BY body_start"
    ).fetchall()
    start, size = snapshot_file.body_region()
    pages, page = (con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
    table = 0 if format == 3 else TABLE_HEADER.size + snapshot_file._bodies.slots * SLOT.size
    assert start == pages * page + table
    with open(path, "rb") as handle:
        handle.seek(start)
        region = handle.read()
    assert size == start + len(region)
    served = newest(tmp_path)
    at = 0
    for account, kind, body_start, length in located:
        assert body_start == at
        assert region[at : at + length] == served.document(account or "1001", kind)
        at += length
    assert at == len(region)


@pytest.mark.parametrize("older", [2, 3])
def test_a_format_2_or_3_store_is_served_as_it_is_beside_format_4(
    tmp_path: Path, server_factory, older: int
) -> None:
    """A store written before format 3 (bodies inside SQLite) or 4 (no hash table) is served as
    it is — no conversion — and a build publishing format 4 beside it serves both dates byte for
    byte."""
    twin = tmp_path / "twin"
    days = [DAY - dt.timedelta(days=1), DAY]
    for day in days:
        write_snapshot(twin, day, AUDIENCES)
    served = every_document(twin)
    store = tmp_path / "store"
    write_snapshot(store, days[0], AUDIENCES, format=older)
    assert [i.format for i in Store(store).snapshots()] == [older]
    status, findings = check(store)
    assert status == 0 and findings["repaired"] == [] and findings["problems"] == []
    write_snapshot(store, days[1], AUDIENCES)
    assert [i.format for i in Store(store).snapshots()] == [FORMAT, older]
    assert every_document(store) == served

    server: RunningServer = server_factory(store)
    token = mint()
    for day in days:
        for account in AUDIENCES:
            for kind in INSIGHT_TYPES:
                url = INSIGHTS.format(account=account, type=kind) + f"&date={day}"
                response = server.get(url, token)
                assert response.status_code == 200
                assert response.content == served[(day.isoformat(), account, kind)]
    assert (
        server.get(INSIGHTS.format(account="999", type=INSIGHT_TYPES[0]), token).status_code == 403
    )
    status, findings = check(store)
    assert status == 0 and findings["repaired"] == [], findings


@pytest.mark.parametrize("format", [3, 4])
@pytest.mark.parametrize("cut", [1, -7])
def test_a_body_region_cut_short_or_grown_is_found_by_store_check(
    tmp_path: Path, cut: int, format: int
) -> None:
    """Format 3's database pages pass SQLite's own check when only the bodies are cut: the check
    compares where the last body ends with the file's size. A read of a cut body fails loudly
    (never a short document)."""
    write_snapshot(tmp_path, DAY - dt.timedelta(days=1), AUDIENCES)
    info = write_snapshot(tmp_path, DAY, AUDIENCES, format=format)
    path = tmp_path / info.file
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        if cut > 0:
            handle.truncate(size - cut)
        else:
            handle.seek(0, os.SEEK_END)
            handle.write(b"x" * -cut)
    if cut > 0:
        snapshot_file = SnapshotFile(path)
        last = snapshot_file.connection().execute(
            "SELECT ad_account_id, insight_type FROM document_offsets"
            " ORDER BY body_start DESC LIMIT 1"
        )
        with pytest.raises(SnapshotFileError, match="truncated"):
            snapshot_file.own_document(*last.fetchone())

    status, findings = check(tmp_path, "--no-repair")
    assert status == 6
    [problem] = findings["problems"]
    assert f"snapshot {DAY}" in problem and "bodies end at byte" in problem, problem
    status, findings = check(tmp_path)
    assert status == 0, findings
    assert any(f"dropped snapshot {DAY}" in line for line in findings["repaired"])
    assert [i.date for i in Store(tmp_path).snapshots()] == [DAY - dt.timedelta(days=1)]


# --- format 4: the hash table -----------------------------------------------------------------


def _tables(accounts: list[str]) -> dict[str, pa.Table]:
    """A snapshot's tables with a small distinct body for each account and type (and the shared
    document under the empty id), as a writer gets them from a build."""
    kinds = ["YOUR_TOTAL_AUDIENCE", "YOUR_ENGAGED_AUDIENCE"]
    keys = [("", "PINTEREST_TOTAL_AUDIENCE")] + [(a, k) for a in sorted(accounts) for k in kinds]
    return {
        "meta": pa.table({"key": ["date", "build_id"], "value": [DAY.isoformat(), "b"]}),
        "accounts": pa.table({"ad_account_id": pa.array(sorted(accounts), pa.string())}),
        "level1_interests": pa.table({"interest_id": pa.array(["10"], pa.string())}),
        "audiences": pa.table(
            {
                "ad_account_id": pa.array([a for a, _ in keys], pa.string()),
                "insight_type": pa.array([k for _, k in keys], pa.string()),
                "size": pa.array([1000] * len(keys), pa.int64()),
                "qualifies": pa.array([True] * len(keys), pa.bool_()),
            }
        ),
        "documents": pa.table(
            {
                "ad_account_id": pa.array([a for a, _ in keys], pa.string()),
                "insight_type": pa.array([k for _, k in keys], pa.string()),
                "body": pa.array([f'{{"a":"{a}","t":"{k}"}}'.encode() for a, k in keys]),
            }
        ),
        "category_items": pa.table(
            {
                "ad_account_id": pa.array([], pa.string()),
                "insight_type": pa.array([], pa.string()),
                "category_id": pa.array([], pa.string()),
                "body": pa.array([], pa.binary()),
            }
        ),
    }


#: Accounts the table holds (digits, probing chains among 3,000 of them) and ids it leaves to
#: SQLite: leading zeros beside the same number, 19 digits, not digits, non-ASCII digits.
ODD_ACCOUNTS = ["0012", "12", "1234567890123456789", "acme", "١٢"]
KINDS = ("YOUR_TOTAL_AUDIENCE", "YOUR_ENGAGED_AUDIENCE", "PINTEREST_TOTAL_AUDIENCE")


@pytest.mark.parametrize("mapped", [True, False])
def test_format_4_reads_every_key_as_sqlite_does_through_the_hash_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapped: bool
) -> None:
    """Every account and type, present or not, read through the table (mapped, or a few slots
    at a time when too large to map) gives exactly what format 3's SQLite read gives, and the
    usual read runs no SQLite statement at all."""
    if not mapped:
        monkeypatch.setattr(bodies, "TABLE_MMAP_BYTES", 0)
    accounts = [str(549755813888 + n * 7919) for n in range(3000)] + ODD_ACCOUNTS
    path = tmp_path / "s.sqlite"
    write_snapshot_file(path, _tables(accounts))
    snapshot_file = SnapshotFile(path)
    assert snapshot_file.format == FORMAT == 4
    assert (snapshot_file._bodies.table is not None) == mapped
    assert snapshot_file._bodies.entries == 2 * (3000 + 2)  # "0012" and "12" too
    statements: list[str] = []
    snapshot_file.connection().set_trace_callback(statements.append)
    for account in [*accounts[:3000:7], "0012", "12", "5", "549755813889"]:
        for kind in KINDS:
            body = snapshot_file.own_document(account, kind)
            expected = None if kind == KINDS[2] or account in ("5", "549755813889") else account
            assert body == (
                None if expected is None else f'{{"a":"{expected}","t":"{kind}"}}'.encode()
            )
    assert statements == [], "the usual read ran SQL"
    for account in [*accounts, "", "0", "00012", "999", "x"]:
        for kind in (*KINDS, "NOT_A_TYPE"):
            assert snapshot_file.own_document(account, kind) == snapshot_file.keyed_document(
                account, kind
            ), (account, kind)
    assert snapshot_file.table_problem() is None


def test_store_check_finds_a_hash_table_that_disagrees_with_its_locator(tmp_path: Path) -> None:
    """A slot scribbled on (it would send a request to another account's bytes) is a problem
    that ``store check`` names, and the snapshot is set aside; a file cut inside its table is
    refused when opened, never mapped past its end."""
    write_snapshot(tmp_path, DAY - dt.timedelta(days=1), AUDIENCES)
    info = write_snapshot(tmp_path, DAY, AUDIENCES)
    path = tmp_path / info.file
    snapshot_file = SnapshotFile(path)
    table_at, slots = snapshot_file._bodies.table_at, snapshot_file._bodies.slots
    raw = path.read_bytes()
    taken = [i for i in range(slots) if raw[table_at + SLOT.size * i + 13]]
    at = table_at + SLOT.size * taken[0] + 16  # the body's start: another document's place
    with open(path, "r+b") as handle:
        handle.seek(at)
        handle.write((int.from_bytes(raw[at : at + 8], "little") + 1).to_bytes(8, "little"))
    assert SnapshotFile(path).table_problem() is not None
    status, findings = check(tmp_path, "--no-repair")
    assert status == 6
    [problem] = findings["problems"]
    assert f"snapshot {DAY}" in problem and "hash table does not locate" in problem, problem

    with open(path, "r+b") as handle:
        handle.truncate(table_at + SLOT.size)
    with pytest.raises(SnapshotFileError, match="truncated: its hash table ends"):
        SnapshotFile(path)
    status, findings = check(tmp_path)
    assert status == 0, findings
    assert any(f"dropped snapshot {DAY}" in line for line in findings["repaired"])
