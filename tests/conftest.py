"""Shared fixtures: hand-made snapshots in a store, and a real pinsights server on a loopback port.

Server tests run the real thing — ``pinsights serve`` in a subprocess, on a free port of 127.0.0.1 —
and talk to it over HTTP; nothing is mocked. Snapshots are written the way the engine publishes
them (``store.snapshot.write_snapshot_file`` + ``Store.publish``), with small documents whose content says which
snapshot they come from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import settings

from pinsights.server.accesslog import FLUSH_INTERVAL
from pinsights.server.storefiles import RECHECK_AFTER
from pinsights.server.tokens import TokenService
from pinsights.store import SHARED_ACCOUNT, SnapshotInfo, Store
from pinsights.store.snapshot import FORMAT, write_snapshot_file
from tests import parallel
from tests.processes import OWN_PREFIXES, scrubbed_environment

# Property tests assert what a build or a column holds, never how fast it is made: Hypothesis'
# default 200 ms deadline failed a first example that paid for lazy imports on a loaded machine.
settings.register_profile("pinsights", deadline=None)
settings.load_profile("pinsights")

#: The signing key every test server uses (PINSIGHTS_SECRET), so tests can mint tokens themselves.
TEST_SECRET = "pinsights-test-secret-0123456789abcdef"
INSIGHT_TYPES = ("YOUR_TOTAL_AUDIENCE", "YOUR_ENGAGED_AUDIENCE", "PINTEREST_TOTAL_AUDIENCE")
#: Level-1 interests of hand-made snapshots: id -> (name, subcategory ids). "30" is never served.
CATEGORIES = {"10": ("Food", ["101", "102"]), "20": ("Travel", ["201"]), "30": ("Art", [])}
SERVED_CATEGORIES = ("10", "20")
MIN_AUDIENCE_SIZE = 100


@pytest.fixture(autouse=True, scope="session")
def _no_settings_from_the_shell() -> Iterator[None]:
    """Tests run without the developer's PINSIGHTS_* / PINTEREST_* variables (a shell that
    exports PINSIGHTS_STORE or PINTEREST_ACCESS_TOKEN must not change what a test sees)."""
    inherited = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(OWN_PREFIXES)}
    yield
    os.environ.update(inherited)


@pytest.fixture(autouse=True, scope="session")
def _spark_class_archive_of_the_session(
    _no_settings_from_the_shell: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Spark builds the tests start record their JVM's class archive (about 170 MB, see
    engine/spark/class_archive.py) in the run's temporary directory, not in the user's ~/.cache:
    the first local Spark build of a run records it, later ones start from it (on either worker:
    each recording has its own name and is moved into place whole)."""
    archives = parallel.shared_directory(tmp_path_factory) / "spark-classes"
    archives.mkdir(exist_ok=True)
    os.environ["PINSIGHTS_SPARK_CLASS_ARCHIVE"] = str(archives)
    yield
    os.environ.pop("PINSIGHTS_SPARK_CLASS_ARCHIVE", None)


#: Small data: one shuffle partition per core is plenty and saves task overhead.
SPARK_TEST_CONF = (
    ("spark.sql.shuffle.partitions", "2"),
    ("spark.default.parallelism", "2"),
)


@pytest.fixture(scope="session")
def spark_session(_spark_class_archive_of_the_session: None) -> Iterator[Any]:
    """The one local SparkSession of a test process (the JVM starts once): a build in the
    process with no master of its own runs on it. Every in-process Spark build must use it,
    since a process holds one SparkContext. It reads small inputs only: its JVM compiles as a
    build's on a small input does (``input_bytes``)."""
    from pinsights.engine.spark.session import SparkSettings, start_session

    session, log = start_session(SparkSettings("local[2]", SPARK_TEST_CONF), input_bytes=0)
    yield session
    session.stop()
    if log is not None:  # each run left its JVM's log in the temporary directory
        log.unlink(missing_ok=True)


@pytest.fixture(autouse=True, scope="session")
def _crash_logs_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Crash logs of the processes the tests start go to the session's temporary directory, not
    the developer's ~/.local/state/pinsights (cli/errors.py reads $XDG_STATE_HOME)."""
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if before is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = before


# --- snapshots -------------------------------------------------------------------------------------


def insight_document(insight_type: str, date: dt.date, size: int) -> dict[str, Any]:
    """A wire-valid AudienceInsightsResponse whose numbers depend on the size (so on the snapshot)."""
    if size < MIN_AUDIENCE_SIZE:
        return {
            "type": insight_type,
            "date": date.isoformat(),
            "size": MIN_AUDIENCE_SIZE,
            "size_is_upper_bound": True,
            "categories": [],
            "demographics": {
                "ages": [],
                "genders": [],
                "countries": [],
                "metros": [],
                "devices": [],
            },
        }
    ratio = round(1 / (1 + size % 7), 4)
    return {
        "type": insight_type,
        "date": date.isoformat(),
        "size": size,
        "size_is_upper_bound": False,
        "categories": [
            {
                "id": category_id,
                "key": category_id,
                "name": CATEGORIES[category_id][0],
                "ratio": ratio,
                "index": 1.0,
                "subcategories": category_items(category_id, ratio),
            }
            for category_id in SERVED_CATEGORIES
        ],
        "demographics": {
            "ages": [{"key": "25-34", "name": "25-34", "ratio": ratio}],
            "genders": [{"key": "female", "name": "Female", "ratio": ratio}],
            "countries": [{"key": "us", "name": "United States", "ratio": ratio}],
            "metros": [{"key": "501", "name": "New York, NY", "ratio": ratio}],
            "devices": [{"key": "iphone", "name": "iPhone", "ratio": ratio}],
        },
    }


def category_items(category_id: str, ratio: float) -> list[dict[str, Any]]:
    return [
        {
            "id": sub,
            "key": sub,
            "name": f"{CATEGORIES[category_id][0]} {sub}",
            "ratio": ratio,
            "index": 1.0,
        }
        for sub in CATEGORIES[category_id][1]
    ]


def _bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def write_snapshot(
    store_dir: Path,
    date: dt.date,
    audiences: dict[str, dict[str, int]],
    *,
    platform_size: int = 5000,
    retain: int = 30,
    details: dict[str, dict[str, str]] | None = None,
    format: int = FORMAT,
) -> SnapshotInfo:
    """Publish a snapshot where ``audiences[account][insight_type]`` is that audience's size
    (in ``format``: 2 writes a store as pinsights did before format 3).

    Every account in ``audiences`` is in the snapshot with a document for every insight type, as
    the engine writes them (a missing type is an audience of nobody: a size-100 upper bound).
    ``details[account]`` gives an account's name, country or currency (columns of ``accounts``).
    """
    store = Store(store_dir)
    build_id = uuid.uuid4().hex[:12]
    sizes = {(SHARED_ACCOUNT, "PINTEREST_TOTAL_AUDIENCE"): platform_size}
    for account, by_type in audiences.items():
        for insight_type in ("YOUR_TOTAL_AUDIENCE", "YOUR_ENGAGED_AUDIENCE"):
            sizes[(account, insight_type)] = by_type.get(insight_type, 0)
    rows: dict[str, list[tuple[Any, ...]]] = {
        "meta": [("date", date.isoformat()), ("build_id", build_id)],
        "accounts": [(account,) for account in audiences],
        "level1_interests": [(category,) for category in CATEGORIES],
        "audiences": [],
        "documents": [],
        "category_items": [],
    }
    for (account, insight_type), size in sizes.items():
        document = insight_document(insight_type, date, size)
        rows["audiences"].append((account, insight_type, size, size >= MIN_AUDIENCE_SIZE))
        rows["documents"].append((account, insight_type, _bytes(document)))
        for category in document["categories"]:
            items = _bytes({"items": category["subcategories"]})
            rows["category_items"].append((account, insight_type, category["id"], items))
    with store.build_lock():
        path = store.temporary_path(f"{build_id}.sqlite")
        write_snapshot_file(
            path,
            {
                **{
                    name: pa.Table.from_pylist(
                        [dict(zip(SNAPSHOT_COLUMNS[name], row, strict=True)) for row in table_rows],
                        schema=SNAPSHOT_SCHEMAS[name],
                    )
                    for name, table_rows in rows.items()
                },
                "accounts": _accounts_table(list(audiences), details or {}),
            },
            format=format,
        )
        return store.publish(path, date=date, build_id=build_id, retain=retain, format=format)


def _accounts_table(accounts: list[str], details: dict[str, dict[str, str]]) -> pa.Table:
    """The accounts, with a column for each detail (name, country, currency) any of them has."""
    columns: dict[str, list[str | None]] = {"ad_account_id": accounts}
    for values in details.values():
        for column in values:
            columns.setdefault(column, [details.get(a, {}).get(column) for a in accounts])
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


#: The columns of a snapshot's tables as the engine writes them (engine/build.py).
SNAPSHOT_SCHEMAS = {
    "meta": pa.schema([("key", pa.string()), ("value", pa.string())]),
    "accounts": pa.schema([("ad_account_id", pa.string())]),
    "level1_interests": pa.schema([("interest_id", pa.string())]),
    "audiences": pa.schema(
        [
            ("ad_account_id", pa.string()),
            ("insight_type", pa.string()),
            ("size", pa.int64()),
            ("qualifies", pa.bool_()),
        ]
    ),
    "documents": pa.schema(
        [("ad_account_id", pa.string()), ("insight_type", pa.string()), ("body", pa.binary())]
    ),
    "category_items": pa.schema(
        [
            ("ad_account_id", pa.string()),
            ("insight_type", pa.string()),
            ("category_id", pa.string()),
            ("body", pa.binary()),
        ]
    ),
}
SNAPSHOT_COLUMNS = {name: schema.names for name, schema in SNAPSHOT_SCHEMAS.items()}


# --- tokens ----------------------------------------------------------------------------------------


def mint(
    ad_accounts: list[str] | str = "*",
    *,
    scopes: tuple[str, ...] = ("ads:read",),
    ttl: int = 3600,
    client_id: str = "test-client",
) -> str:
    """A token signed with the test servers' key."""
    accounts = [ad_accounts] if isinstance(ad_accounts, str) else ad_accounts
    return TokenService(TEST_SECRET.encode()).issue(client_id, scopes, accounts, ttl)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- servers ---------------------------------------------------------------------------------------


@dataclass
class RunningServer:
    """A ``pinsights serve`` subprocess; its stderr (the access log) goes to ``log_path``."""

    base_url: str
    store: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=10)

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
        return self.client.get(path, headers=headers, **kwargs)

    def access_log(self) -> list[dict[str, Any]]:
        """The access log of every request answered so far.

        The server writes the log in batches; this sends a marker request after the others and
        waits until the marker's line is in the file: lines are written in the order requests are
        answered, so everything before it is there too.
        """
        marker = f"/log-marker/{uuid.uuid4().hex}"  # in the path: the log writes no free query
        self.client.get(marker)
        deadline = time.monotonic() + 30  # a bound on a hang, not a guess at the flush delay
        while True:
            entries = [
                json.loads(line)
                for line in self.log_path.read_text().splitlines()
                if line.startswith("{")
            ]
            if any(entry.get("path") == marker for entry in entries):
                return [e for e in entries if not e.get("path", "").startswith("/log-marker/")]
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"the access log never showed request {marker}")
            time.sleep(FLUSH_INTERVAL / 10)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def let_servers_notice() -> None:
    """Wait out the window in which a server trusts its last stat of a store file (a millisecond).

    Tests that change a file with a bare rename or chmod (no fsync) can be faster than that; a real
    edit is not. Sleeping for a guaranteed bound is deterministic, unlike waiting for a hope.
    """
    time.sleep(2 * RECHECK_AFTER)


def free_port() -> int:
    """A port free at the moment of asking, for benchmarks only: tests bind port 0 instead, since
    another process may take a port between this call and its use."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: What uvicorn logs once it listens; with ``--port 0`` it names the port the system gave it.
_LISTENING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+) ")


def start_server(
    store: Path,
    *,
    rate_limit: str = "100000/s",
    args: tuple[str, ...] = (),
    secret: str | None = TEST_SECRET,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> RunningServer:
    """Start ``pinsights serve`` on port 0 and wait until it listens and /healthz answers.

    The port is the one the server bound (read back from its log), never one picked beforehand:
    a port found free and bound later can be taken by another process in between.
    ``secret=None`` serves with the store's own keyring instead of PINSIGHTS_SECRET; ``env`` adds
    settings only the environment sets (``PINSIGHTS_*``); ``pass_fds`` are inherited (test hooks).
    """
    log_path = store.parent / f"server-{uuid.uuid4().hex[:8]}.log"
    environment = {**scrubbed_environment(), **(env or {})}
    if secret is not None:
        environment["PINSIGHTS_SECRET"] = secret
    command = [sys.executable, "-c", "from pinsights.cli import app; app()", "serve"]
    command += ["--store", str(store), "--port", "0", "--rate-limit", rate_limit, *args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, pass_fds=pass_fds
        )
    deadline = time.monotonic() + 60  # a bound on a hang, not a guess at the start-up time
    port = None
    while port is None:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
        found = _LISTENING.search(log_path.read_bytes())
        if found:
            port = int(found.group(1))
        else:
            time.sleep(0.05)
    server = RunningServer(f"http://127.0.0.1:{port}", store, process, log_path)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if server.client.get("/healthz").status_code == 200:
                return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")


@pytest.fixture
def server_factory() -> Iterator[Callable[..., RunningServer]]:
    """Start servers for one test; all stopped afterwards."""
    started: list[RunningServer] = []

    def start(store: Path, **kwargs: Any) -> RunningServer:
        server = start_server(store, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


#: The shared hand-made store: account 1001 has every audience, 1002 only a tiny one, 1003 none;
#: two retained dates, 1002 is missing from the older one.
OLD_DATE = dt.date(2026, 10, 30)
NEW_DATE = dt.date(2026, 10, 31)
AUDIENCES_OLD = {"1001": {"YOUR_TOTAL_AUDIENCE": 900, "YOUR_ENGAGED_AUDIENCE": 300}}
AUDIENCES_NEW = {
    "1001": {"YOUR_TOTAL_AUDIENCE": 1000, "YOUR_ENGAGED_AUDIENCE": 400},
    "1002": {"YOUR_TOTAL_AUDIENCE": 40, "YOUR_ENGAGED_AUDIENCE": 10},
    "1003": {},
}


@pytest.fixture(scope="session")
def handmade_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("handmade") / "store"
    write_snapshot(store, OLD_DATE, AUDIENCES_OLD, platform_size=4000)
    write_snapshot(store, NEW_DATE, AUDIENCES_NEW, platform_size=5000)
    return store


@pytest.fixture(scope="session")
def server(handmade_store: Path) -> Iterator[RunningServer]:
    """One server over the hand-made store, shared by the tests that do not change it."""
    running = start_server(handmade_store)
    yield running
    running.stop()


#: Names a page or a spreadsheet must never run: the shared platform's largest category and most
#: common metro carry them (the dashboard checks they are shown as text).
HOSTILE_CATEGORY = '<img src=x onerror="document.title=\'pwned\'"> Crafts & "DIY"'
HOSTILE_METRO = '=HYPERLINK("http://example.invalid") <b>Springfield</b>, IL'


@dataclass(frozen=True)
class BuiltPlatform:
    store: Path
    ad_account_ids: list[str]  # largest first
    data: Path  # the generated dataset it was built from
    dates: list[dt.date]  # the snapshots' dates, newest first


@pytest.fixture(scope="session")
def built_platform(tmp_path_factory: pytest.TempPathFactory) -> BuiltPlatform:
    """The one generated platform of the client, dashboard and server tests, built once a run
    by the real engine: 3k users, 5 accounts, 30 days; the largest category's and the commonest
    metro's names hostile (interests as CSV); snapshots for its last two days (the newest
    served by default). Tests that change a store copy it first.

    On several workers (tests/parallel.py) the first to need it builds it, under a file lock in the
    run's shared temporary directory; the others wait and read what was built.
    """
    from filelock import FileLock

    root = parallel.shared_directory(tmp_path_factory) / "platform"
    summary_file = root / "platform.json"
    with FileLock(f"{root}.lock"):
        if not summary_file.exists():
            _build_platform(root, summary_file)
    summary = json.loads(summary_file.read_text())
    return BuiltPlatform(
        store=root / "store",
        ad_account_ids=summary["ad_account_ids"],
        data=root / "data",
        dates=[dt.date.fromisoformat(date) for date in summary["dates"]],
    )


def _build_platform(root: Path, summary_file: Path) -> None:
    from pinsights.engine.settings import BuildSettings
    from pinsights.store.publish import build
    from pinsights.synthetic.generate import generate

    root.mkdir(parents=True, exist_ok=True)
    summary = generate(root / "data", users=3000, accounts=5, days=30, seed=3)
    make_hostile(root / "data")
    dates = [summary.end_date, summary.end_date - dt.timedelta(days=1)]
    for day in reversed(dates):
        build(BuildSettings(data_dir=root / "data", store_dir=root / "store", date=day))
    written = {
        "ad_account_ids": list(summary.ad_account_ids),
        "dates": [d.isoformat() for d in dates],
    }
    summary_file.write_text(json.dumps(written))  # last: its presence says the build is whole


def make_hostile(data: Path) -> None:
    """Give the platform's most common category and metro names that are HTML / a formula.

    The interests table is rewritten as CSV (the input contract allows any format per table).
    """
    interests = pq.read_table(data / "interests.parquet")
    pins = pq.read_table(data / "pins.parquet")
    level1 = set(
        pc.filter(interests, pc.is_null(interests["parent_id"]))["interest_id"].to_pylist()
    )
    parents = dict(
        zip(interests["interest_id"].to_pylist(), interests["parent_id"].to_pylist(), strict=True)
    )

    def category_of(interest: str | None) -> str | None:
        while interest is not None and interest not in level1:
            interest = parents.get(interest)
        return interest

    counts: dict[str, int] = {}
    for interest in pins["interest_id"].to_pylist():
        category = category_of(interest)
        if category is not None:
            counts[category] = counts.get(category, 0) + 1
    target = max(counts, key=lambda key: (counts[key], key))
    names = [
        HOSTILE_CATEGORY if i == target else n
        for i, n in zip(
            interests["interest_id"].to_pylist(), interests["name"].to_pylist(), strict=True
        )
    ]
    interests = interests.set_column(
        interests.schema.get_field_index("name"), "name", pa.array(names)
    )
    (data / "interests.parquet").unlink()
    pa_csv.write_csv(interests, data / "interests.csv")

    users = pq.read_table(data / "users.parquet")
    metros = pq.read_table(data / "metros.parquet")
    metro_counts = pc.value_counts(pc.drop_null(users["metro"])).to_pylist()
    common = max(metro_counts, key=lambda entry: (entry["counts"], entry["values"]))["values"]
    metro_names = [
        HOSTILE_METRO if m == common else n
        for m, n in zip(metros["metro"].to_pylist(), metros["name"].to_pylist(), strict=True)
    ]
    metros = metros.set_column(metros.schema.get_field_index("name"), "name", pa.array(metro_names))
    pq.write_table(metros, data / "metros.parquet")


@pytest.fixture(scope="session")
def built_server(built_platform: BuiltPlatform) -> Iterator[RunningServer]:
    """A server over the engine-built platform."""
    running = start_server(built_platform.store)
    yield running
    running.stop()


# --- several processes (tests/parallel.py; `make test`, TEST_WORKERS) -----------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    parallel.order_costliest_first(config, items)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope``: a module is a unit, or a test of a module that tests/parallel.py
    splits; other --dist modes are xdist's own."""
    if config.getvalue("dist") != "loadscope":
        return None
    return parallel.module_scheduler(config, log)
