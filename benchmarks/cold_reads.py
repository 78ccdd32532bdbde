"""Cold reads beside a hot one: `python benchmarks/serve.py --cold 2000,100000,1000000`.

A platform's API does not read one document: each advertiser reads its own few, now and then, so
nearly every read misses any cache. For each size (ad accounts) a store is generated directly
through the snapshot writer (`store.snapshot.write_snapshot_file` + `Store.publish`, the path a
build takes after computing its documents; a real build of a million accounts would take hours
here) with synthetic documents of `--cold-body` bytes and two category bodies per document. Then
one `pinsights serve` answers, alternating in the same run:

- **hot**: one document over and over (from the worker's LRU);
- **cold**: wrk cycling through `--cold-documents` distinct documents (or all) in a shuffled order
  (a Lua script), with the LRU smaller than that cycle, so every request is a miss: the metrics'
  `pinsights_documents_total{source="store"}` counts them and the report says so.

Printed per size: requests/s, p50, p99 of each, cold/hot per round (median), the server's and
wrk's CPU per request, the server's peak RSS (VmHWM, with its anonymous and file-mapped shares at
the end), and the in-process cost of one keyed read. The snapshot file is read once before, so it
is in the OS page cache (the share cached is printed): "cold" means not in the server's LRU. `--cold-format 3` or `2` generates the stores in
format 3 (without format 4's hash table) or 2 (bodies inside SQLite, as builds wrote them before
format 3), each in their own directories.
`--cold-legacy` adds the same run on a format-1 (DuckDB) snapshot of the smallest size:
the old path's figure, in the same run. `--cold-pin` runs the server on CPU 0 and wrk on CPU 1
(`taskset`): on a 2-core machine wrk's Lua script otherwise takes CPU the server needs, more for the
cold run than the hot one, so the ratio would measure the client too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pyarrow as pa
import serve

DATE = dt.date(2026, 1, 31)
TYPES = ("YOUR_ENGAGED_AUDIENCE", "YOUR_TOTAL_AUDIENCE")
CATEGORIES = ("10", "20")
#: Every request formatted once, in ``init`` (wrk's pipeline example does the same): formatting
#: one per request in ``request()`` cost the client 60 µs of CPU per request against 25 for the hot
#: document's plain wrk, CPU the server then lacked on a 2-core machine.
LUA = """
local requests = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do requests[#requests + 1] = wrk.format("GET", line) end
end
function request()
  i = i % #requests + 1
  return requests[i]
end
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cold",
        metavar="SIZES",
        help="run the cold-read comparison instead, at these numbers of ad accounts (comma-separated)",
    )
    parser.add_argument("--cold-body", type=int, default=2000, help="bytes per document")
    parser.add_argument(
        "--cold-documents", type=int, default=50000, help="distinct documents cycled"
    )
    parser.add_argument("--cold-legacy", action="store_true", help="also a format-1 snapshot")
    parser.add_argument(
        "--cold-format",
        type=int,
        choices=(2, 3, 4),
        default=4,
        help="the snapshot format of the generated stores (2: bodies inside SQLite, as before 3;"
        " 3: without format 4's hash table)",
    )
    parser.add_argument("--cold-cache", type=int, default=1024, help="the server's LRU entries")
    parser.add_argument(
        "--cold-pin",
        action="store_true",
        help="the server on CPU 0, wrk on CPU 1 (taskset): the client never takes the server's core",
    )


def account_id(n: int) -> str:
    return str(549755813888 + n * 7919)


def body(account: str, insight_type: str, size: int) -> bytes:
    """A JSON document of ``size`` bytes (or a little more), different for every account and type."""
    head = (
        f'{{"type":"{insight_type}","date":"{DATE.isoformat()}","size":1000,'
        f'"account":"{account}","categories":['
    )
    count = max(1, (size - len(head)) // len(_CATEGORY))
    return (head + ",".join([_CATEGORY] * count) + "]}").encode()


_CATEGORY = '{"id":"935249274030","name":"Home decor","ratio":0.0321,"index":1.84}'


def tables(accounts: int, size: int) -> dict[str, pa.Table]:
    ids = sorted(account_id(n) for n in range(accounts))
    doc_accounts = ["", *[a for a in ids for _ in TYPES]]
    doc_types = ["PINTEREST_TOTAL_AUDIENCE", *[t for _ in ids for t in TYPES]]
    bodies = pa.chunked_array(  # made a chunk at a time: a million accounts' bodies are GBs
        [
            pa.array(
                [
                    body(a or "0", t if a else TYPES[0], size)
                    for a, t in zip(
                        doc_accounts[i : i + 65536], doc_types[i : i + 65536], strict=True
                    )
                ],
                pa.binary(),
            )
            for i in range(0, len(doc_accounts), 65536)
        ]
    )

    item = b'{"items":[{"id":"101","name":"a","ratio":0.5,"index":1.0}]}'
    n_docs = len(doc_accounts)
    return {
        "meta": pa.table(
            {"key": ["date", "build_id"], "value": [DATE.isoformat(), uuid.uuid4().hex[:12]]}
        ),
        "accounts": pa.table({"ad_account_id": pa.array(ids, pa.string())}),
        "level1_interests": pa.table({"interest_id": pa.array(CATEGORIES, pa.string())}),
        "audiences": pa.table(
            {
                "ad_account_id": pa.array(doc_accounts, pa.string()),
                "insight_type": pa.array(doc_types, pa.string()),
                "size": pa.array([1000] * n_docs, pa.int64()),
                "qualifies": pa.array([True] * n_docs, pa.bool_()),
            }
        ),
        "documents": pa.table(
            {
                "ad_account_id": pa.array(doc_accounts, pa.string()),
                "insight_type": pa.array(doc_types, pa.string()),
                "body": bodies,
            }
        ),
        "category_items": pa.table(
            {
                "ad_account_id": pa.array(
                    [a for a in doc_accounts for _ in CATEGORIES], pa.string()
                ),
                "insight_type": pa.array([t for t in doc_types for _ in CATEGORIES], pa.string()),
                "category_id": pa.array(list(CATEGORIES) * n_docs, pa.string()),
                "body": pa.array([item] * (n_docs * len(CATEGORIES)), pa.binary()),
            }
        ),
    }


#: A generated store's directory name after its size, by format (format 2's as before format 3).
STORE_SUFFIXES = {1: "-legacy", 2: "", 3: "-f3", 4: "-f4"}
FORMAT_NAMES = {
    1: "1 (DuckDB)",
    2: "2 (SQLite)",
    3: "3 (SQLite + bodies)",
    4: "4 (SQLite + hash table + bodies)",
}


def prepare(directory: Path, accounts: int, size: int, format: int) -> Path:
    """A store of ``accounts`` accounts (generated once, reused), in format 4, 3, 2 or 1."""
    from pinsights.store import Store
    from pinsights.store.legacy_snapshot import write_legacy_snapshot_file
    from pinsights.store.snapshot import SUFFIXES, write_snapshot_file

    legacy = format == 1
    store_dir = directory / f"cold-{accounts}-{size}{STORE_SUFFIXES[format]}"
    marker = store_dir / "bench.json"
    if marker.exists():
        return store_dir
    shutil.rmtree(store_dir, ignore_errors=True)
    started = time.perf_counter()
    print(f"writing a {accounts}-account snapshot in {store_dir} …", file=sys.stderr)
    data = tables(accounts, size)
    made = time.perf_counter()
    store = Store(store_dir)
    with store.build_lock():
        path = store.temporary_path(f"bench{SUFFIXES[format]}")
        if legacy:
            write_legacy_snapshot_file(path, data)
        else:
            write_snapshot_file(path, data, format=format)
        build_id = data["meta"]["value"][1].as_py()
        info = store.publish(path, date=DATE, build_id=build_id, retain=30, format=format)
    written = time.perf_counter() - made
    file_size = (store_dir / info.file).stat().st_size
    print(
        f"  {accounts} accounts: documents made in {made - started:.1f} s, snapshot written in "
        f"{written:.1f} s, {file_size / 1e6:,.0f} MB",
        file=sys.stderr,
    )
    marker.write_text(json.dumps({"write_seconds": written, "bytes": file_size}))
    return store_dir


def lookup_cost(store_dir: Path, accounts: int, n: int = 5000) -> float:
    """µs per ``Snapshot.document`` of a random account, in this process (CPU time)."""
    from pinsights.store import Store

    snapshot = Store(store_dir).latest()
    assert snapshot is not None
    rng = random.Random(3)
    keys = [(account_id(rng.randrange(accounts)), rng.choice(TYPES)) for _ in range(n)]
    started = time.process_time()
    for account, insight_type in keys:
        assert snapshot.document(account, insight_type) is not None
    return (time.process_time() - started) / n * 1e6


def run(args: argparse.Namespace) -> None:
    sizes = [int(size) for size in args.cold.split(",")]
    if args.cold_pin:  # as a remote client would be: its CPU is not the server's
        serve.SERVER_CPUS[:], serve.CLIENT_CPUS[:] = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    token = serve.mint_token()
    print(f"load average at the start: {serve._load()}")
    directory = args.data.parent
    stores = [(size, prepare(directory, size, args.cold_body, args.cold_format)) for size in sizes]
    if args.cold_legacy:
        stores.insert(0, (sizes[0], prepare(directory, sizes[0], args.cold_body, 1)))
    rows = []
    for accounts, store_dir in stores:
        print(f"{store_dir.name}: load {serve._load()}", file=sys.stderr)
        rows.append(measure(store_dir, accounts, token, args))
    print(f"load average at the end: {serve._load()}")
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds "
        f"(medians; cold/hot per round), documents of {args.cold_body} bytes, the server's LRU "
        f"{args.cold_cache} entries, one worker as served (access log and metrics on)"
        + ("; the server pinned to CPU 0, wrk to CPU 1" if args.cold_pin else "")
    )
    print()
    print(
        "| accounts | format | snapshot MB | hot req/s | cold req/s | cold / hot | hot p50 / p99 ms "
        "| cold p50 / p99 ms | server CPU µs/request hot / cold "
        "| wrk CPU µs/request hot / cold | cold misses "
        "| peak RSS MiB (anon / file at end) | keyed read µs | file in OS page cache |"
    )
    print("| ---: | --- | ---: " + "| ---: " * 11 + "|")
    for row in rows:
        print(row)


def _format_of(store_dir: Path) -> int:
    for format, suffix in STORE_SUFFIXES.items():
        if suffix and store_dir.name.endswith(suffix):
            return format
    return 2


def measure(store_dir: Path, accounts: int, token: str, args: argparse.Namespace) -> str:
    legacy = store_dir.name.endswith("-legacy")
    total = accounts * len(TYPES)
    rng = random.Random(1)
    chosen = rng.sample(range(total), min(args.cold_documents, total))
    base = "/v5/ad_accounts/{}/audience_insights?audience_insight_type={}"
    paths = [base.format(account_id(n // 2), TYPES[n % 2]) for n in chosen]
    hot = base.format(account_id(0), TYPES[0])
    in_page_cache = warm_page_cache(store_dir)
    cost = lookup_cost(store_dir, accounts, 200 if legacy else 5000)
    hot_runs: list[serve.Result] = []
    cold_runs: list[serve.Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cold.lua").write_text(LUA)
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
        os.environ["PINSIGHTS_DOCUMENT_CACHE_SIZE"] = str(args.cold_cache)
        with serve.pinsights_server(store_dir, Path(tmp), ()) as server:
            serve.wrk(server, hot, token, 2, args.connections)  # warm
            for _ in range(args.rounds):
                hot_runs.append(serve.wrk(server, hot, token, args.duration, args.connections))
                before_cold = store_reads(server.url)
                cold_runs.append(cold_wrk(server, Path(tmp), token, args))
                misses = store_reads(server.url) - before_cold
            rss = memory(server.pid)
    ratio = statistics.median(
        c.requests_per_second / h.requests_per_second
        for c, h in zip(cold_runs, hot_runs, strict=True)
    )
    snapshot_mb = json.loads((store_dir / "bench.json").read_text())["bytes"] / 1e6
    last = cold_runs[-1]
    errors = sum(r.errors + r.non_2xx for r in hot_runs + cold_runs)
    miss_share = misses / max(last.requests_per_second * args.duration, 1)
    print(
        f"{store_dir.name} rounds: "
        + "; ".join(
            f"hot {h.requests_per_second:,.0f} cold {c.requests_per_second:,.0f} req/s "
            f"(server CPU {h.cpu_us_per_request:.0f} / {c.cpu_us_per_request:.0f} µs/request, "
            f"p99 {h.p99_ms:.1f} / {c.p99_ms:.1f} ms)"
            for h, c in zip(hot_runs, cold_runs, strict=True)
        )
        + f"; errors/non-2xx {errors}; load {serve._load()}"
    )
    return (
        f"| {accounts:,} | {FORMAT_NAMES[_format_of(store_dir)]} | {snapshot_mb:,.0f} "
        f"| {statistics.median(r.requests_per_second for r in hot_runs):,.0f} "
        f"| {statistics.median(r.requests_per_second for r in cold_runs):,.0f} "
        f"| **{ratio:.2f}** "
        f"| {statistics.median(r.p50_ms for r in hot_runs):.2f} / "
        f"{statistics.median(r.p99_ms for r in hot_runs):.2f} "
        f"| {statistics.median(r.p50_ms for r in cold_runs):.2f} / "
        f"{statistics.median(r.p99_ms for r in cold_runs):.2f} "
        f"| {statistics.median(r.cpu_us_per_request for r in hot_runs):.0f} / "
        f"{statistics.median(r.cpu_us_per_request for r in cold_runs):.0f} "
        f"| {statistics.median(r.client_cpu_us_per_request for r in hot_runs):.0f} / "
        f"{statistics.median(r.client_cpu_us_per_request for r in cold_runs):.0f} "
        f"| {misses:,} (~{min(miss_share, 1):.0%}) "
        f"| {rss[0]:,.0f} ({rss[1]:,.0f} / {rss[2]:,.0f}) | {cost:,.1f} "
        f"| {'?' if in_page_cache is None else f'{in_page_cache:.0%}'} |"
    )


def cold_wrk(server: serve.Server, tmp: Path, token: str, args: argparse.Namespace) -> serve.Result:
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}", "-s", str(tmp / "cold.lua")]
    command += [server.url + "/", "--", str(tmp / "paths.txt")]
    return serve.run_wrk(server, command, "cold")


def warm_page_cache(store_dir: Path) -> float | None:
    """Read the store's snapshot files once, so that they are in the OS page cache (as a server's
    store is after a while; "cold" here means not in pinsights' own LRU, not on disk): the
    share of their pages cached afterwards, by ``fincore`` (None where it is not installed)."""
    files = sorted((store_dir / "snapshots").glob("*"))
    for file in files:
        with open(file, "rb") as handle:
            while handle.read(8 << 20):
                pass
    if shutil.which("fincore") is None:
        return None
    cached = total = 0
    for file in files:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", str(file)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        cached, total = cached + int(out[0]), total + int(out[1])
    return cached / max(total, 1)


def store_reads(url: str) -> int:
    """Answers read from the store so far (the metrics' documents_total{source="store"})."""
    text = httpx.get(url + "/metrics").text
    match = re.search(r'pinsights_documents_total\{source="store"\} ([\d.e+]+)', text)
    return int(float(match.group(1))) if match else 0


def memory(pid: int) -> tuple[float, float, float]:
    """Peak RSS, and the anonymous and file-backed RSS now, in MiB, summed over the server's
    processes (Linux /proc)."""
    totals = [0.0, 0.0, 0.0]
    for process in serve._process_tree(pid):
        status = Path(f"/proc/{process}/status").read_text()
        for i, name in enumerate(("VmHWM", "RssAnon", "RssFile")):
            match = re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE)
            totals[i] += int(match.group(1)) / 1024 if match else 0.0
    return totals[0], totals[1], totals[2]
