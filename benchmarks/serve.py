"""Serving benchmark: a real endpoint of `pinsights serve` under load, beside a bare ASGI app.

Every contender runs in the same run, rounds alternating, under the same uvicorn settings (uvloop,
httptools) and answers the same bytes: the bare app returns the document the real endpoint
returned, without auth, rate limiting, routing, lookup, access log or metrics. The ratio of
requests/s (and of server CPU per request) is the share of the machine's HTTP ceiling that
pinsights keeps. Contenders: one worker as served (access log and metrics on) and without metrics /
access log; two workers (beside a bare app with two workers); Redis as the rate-limit storage.
Then the cost of each layer of a request, measured in-process (CPU time per call).

    python benchmarks/serve.py [--duration 5] [--connections 32] [--rounds 5] [--users 3000]
                               [--only CONTENDER …] [--no-layers]

With ``--cold 2000,100000,1000000`` it measures cold reads beside a hot document instead (every
read a miss of the LRU, on generated stores of that many ad accounts): see cold_reads.py.

Needs wrk (`apt-get install -y wrk`) and, for the Redis contender, redis-server (skipped without
it, and said so). Builds a small platform under ./bench-data/serve the first time (generator +
engine), then reuses it. Prints Markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cold_reads
import httpx

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-0123456789abcdef-0123"
BARE_APP = """
import os
BODY = open(os.environ["BENCH_BODY"], "rb").read()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server's processes (its workers too) so far (Linux /proc)."""
        return sum(_cpu_seconds(pid) for pid in _process_tree(self.pid))


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            pids += _process_tree(int(child))
    return pids


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    cpu_us_per_request: float
    #: wrk's own CPU per request (user + system): on a 2-core machine the client competes with
    #: the server, so a costlier client script lowers the server's requests/s too.
    client_cpu_us_per_request: float = 0.0


@dataclass(frozen=True)
class Contender:
    name: str
    baseline: str  # the bare app it is compared with
    args: tuple[str, ...] = ()  # pinsights serve options; None for a bare app
    bare_workers: int = 0  # > 0: a bare app with that many workers


def contenders(redis_url: str | None) -> list[Contender]:
    bare1, bare2 = "bare ASGI", "bare ASGI, 2 workers"
    chosen = [
        Contender(bare1, bare1, bare_workers=1),
        Contender("pinsights", bare1),
        Contender("pinsights --no-metrics", bare1, ("--no-metrics",)),
        Contender(
            "pinsights --no-metrics --no-access-log", bare1, ("--no-metrics", "--no-access-log")
        ),
        Contender(bare2, bare2, bare_workers=2),
        Contender("pinsights --workers 2", bare2, ("--workers", "2")),
    ]
    if redis_url:
        chosen.append(
            Contender("pinsights, Redis storage", bare1, ("--rate-limit-storage", redis_url))
        )
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per server")
    parser.add_argument("--users", type=int, default=3000, help="size of the benchmark platform")
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data" / "serve")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this contender (exact name, repeatable; its bare baseline runs too): "
        "for iterating, the default is the full comparison",
    )
    parser.add_argument("--no-layers", action="store_true", help="skip the in-process layer costs")
    cold_reads.add_arguments(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    if args.cold:
        cold_reads.run(args)
        return

    store, account = prepare_store(args.data, args.users)
    path = (
        f"/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_ENGAGED_AUDIENCE"
    )
    print(f"load average at the start: {_load()}")
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
        if redis_url is None:
            print("redis-server not found: the Redis contender is skipped")
        token = mint_token()
        with pinsights_server(store, Path(tmp), ()) as pinsights:
            body = httpx.get(pinsights.url + path, headers={"Authorization": f"Bearer {token}"})
            body.raise_for_status()
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body.content)
        chosen = contenders(redis_url)
        if args.only:
            unknown = set(args.only) - {c.name for c in chosen}
            if unknown:
                sys.exit(f"unknown contenders {sorted(unknown)}: {[c.name for c in chosen]}")
            wanted = set(args.only) | {c.baseline for c in chosen if c.name in args.only}
            chosen = [c for c in chosen if c.name in wanted]
        results: dict[str, list[Result]] = {c.name: [] for c in chosen}
        for _ in range(args.rounds):
            for contender in chosen:
                if contender.bare_workers:
                    server = bare_server(body_file, Path(tmp), contender.bare_workers)
                else:
                    server = pinsights_server(store, Path(tmp), contender.args)
                with server as running_server:
                    wrk(running_server, path, token, 2, args.connections)  # warm
                    results[contender.name].append(
                        wrk(
                            running_server,
                            path,
                            token,
                            args.duration,
                            args.connections,
                            contender.name,
                        )
                    )
        print(f"load average at the end: {_load()}")
        report(results, chosen, args, len(body.content))
        if not args.no_layers:
            print()
            layer_costs(store, account, token, redis_url)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def prepare_store(directory: Path, users: int) -> tuple[Path, str]:
    """A generated + built platform (reused when present) and its largest ad account."""
    from pinsights.store import Store

    data, store, marker = directory / "data", directory / "store", directory / "bench.json"
    if not marker.exists() or Store(store).latest() is None:
        from pinsights.engine.settings import BuildSettings
        from pinsights.store.publish import build
        from pinsights.synthetic.generate import generate

        shutil.rmtree(directory, ignore_errors=True)
        print(f"building a {users}-user platform in {directory} …", file=sys.stderr)
        summary = generate(data, users=users, accounts=5, days=30, seed=1)
        build(BuildSettings(data_dir=data, store_dir=store))
        marker.write_text(json.dumps({"account": summary.ad_account_ids[0]}))
    return store, json.loads(marker.read_text())["account"]


def mint_token() -> str:
    from pinsights.server.tokens import TokenService

    return TokenService(SECRET.encode()).issue("benchmark", ["ads:read"], ["*"], 24 * 3600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Command prefixes that pin the server and wrk to CPUs (``taskset -c …``), empty by default;
#: ``--cold-pin`` sets them so the client never takes the server's core (cold_reads.py).
SERVER_CPUS: list[str] = []
CLIENT_CPUS: list[str] = []


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], log: Path, url: str) -> Iterator[Server]:
    with open(log, "wb") as handle:
        process = subprocess.Popen([*SERVER_CPUS, *command], stdout=handle, stderr=handle, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(url + "/healthz")
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def pinsights_server(
    store: Path, tmp: Path, options: tuple[str, ...]
) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    env = {**os.environ, "PINSIGHTS_SECRET": SECRET}
    command = [sys.executable, "-c", "from pinsights.cli import app; app()", "serve"]
    command += ["--store", str(store), "--port", str(port), "--rate-limit", "10000000/s"]
    return running([*command, *options], env, tmp / "pinsights.log", f"http://127.0.0.1:{port}")


def bare_server(body: Path, tmp: Path, workers: int) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    (tmp / "bare_app.py").write_text(BARE_APP)
    env = {**os.environ, "BENCH_BODY": str(body), "PYTHONPATH": str(tmp)}
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port)]
    command += [
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    return running(command, env, tmp / "bare.log", f"http://127.0.0.1:{port}")


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str | None]:
    """A redis-server on a free loopback port (None when it is not installed)."""
    if shutil.which("redis-server") is None:
        yield None
        return
    port = free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


def wrk(
    server: Server, path: str, token: str, duration: int, connections: int, name: str = ""
) -> Result:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}", server.url + path]
    return run_wrk(server, command, name)


def run_wrk(server: Server, command: list[str], name: str) -> Result:
    """Run wrk; the figures of its output, with the server's and wrk's CPU per request."""
    cpu_before = server.cpu_seconds()
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [*CLIENT_CPUS, *command], capture_output=True, text=True, check=True
    ).stdout
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_wrk(out, name, server.cpu_seconds() - cpu_before)
    client = (client_after.ru_utime - client_before.ru_utime) + (
        client_after.ru_stime - client_before.ru_stime
    )
    requests = int(_find(r"(\d+) requests in", out))
    result.client_cpu_us_per_request = client / max(requests, 1) * 1e6
    return result


def parse_wrk(out: str, name: str, cpu: float) -> Result:
    """A run's figures from wrk's output (``cpu``: the server's CPU seconds during it)."""
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = int(_find(r"(\d+) requests in", out))
    return Result(
        name=name,
        requests_per_second=float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        p50_ms=_millis(_find(r"\s50%\s+([\d.]+\w+)", out)),
        p99_ms=_millis(_find(r"\s99%\s+([\d.]+\w+)", out)),
        non_2xx=int(_find(r"Non-2xx or 3xx responses: (\d+)", out, "0")),
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise RuntimeError(f"unexpected wrk output:\n{text}")
        return default
    return match.group(1)


def _millis(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def report(
    results: dict[str, list[Result]],
    chosen: list[Contender],
    args: argparse.Namespace,
    size: int,
) -> None:
    """Medians over the rounds; ratios are taken round by round against the baseline measured
    moments before in the same round (on a shared machine the load moves between rounds more than
    between neighbours), then their median shown."""
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.platform()}"
    )
    print(
        f"load: wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds "
        f"(medians shown; ratios per round against the bare app of the same round), body {size} "
        "bytes; uvicorn, uvloop + httptools"
    )
    print()
    print(
        "| server | req/s | x bare req/s | p50 ms | p99 ms | non-2xx | socket errors "
        "| server CPU µs/request | bare CPU / this CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for contender in chosen:
        runs, bare = results[contender.name], results[contender.baseline]
        speed = [
            r.requests_per_second / b.requests_per_second for r, b in zip(runs, bare, strict=True)
        ]
        cpu = [b.cpu_us_per_request / r.cpu_us_per_request for r, b in zip(runs, bare, strict=True)]
        print(
            f"| {contender.name} | {statistics.median(r.requests_per_second for r in runs):,.0f} "
            f"| {statistics.median(speed):.2f} "
            f"| {statistics.median(r.p50_ms for r in runs):.2f} "
            f"| {statistics.median(r.p99_ms for r in runs):.2f} "
            f"| {sum(r.non_2xx for r in runs)} | {sum(r.errors for r in runs)} "
            f"| {statistics.median(r.cpu_us_per_request for r in runs):.1f} "
            f"| {statistics.median(cpu):.2f} |"
        )
    print()
    for name, runs in results.items():
        rounds = ", ".join(
            f"{r.requests_per_second:,.0f} req/s p99 {r.p99_ms:.2f} ms {r.cpu_us_per_request:.1f} µs"
            for r in runs
        )
        print(f"{name} rounds: {rounds}")


def layer_costs(store: Path, account: str, token: str, redis_url: str | None) -> None:
    """CPU time per call of each layer of a cached request, in this process (process_time, so
    the neighbours' load does not count). In the server the same code runs colder, between
    uvicorn's own work, and costs about two to three times as much per request."""
    import asyncio

    os.environ["PINSIGHTS_SECRET"] = SECRET
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from pinsights.contract import AudienceInsightType
    from pinsights.server.accesslog import AccessLog
    from pinsights.server.api import _bearer_token, _query, _route, _segments
    from pinsights.server.app import create_app
    from pinsights.server.ratelimit import (
        RateLimit,
        SharedMemoryLimiter,
        create_table,
        open_limiter,
    )
    from pinsights.server.settings import ServerSettings

    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/v5/ad_accounts/{account}/audience_insights",
        "raw_path": f"/v5/ad_accounts/{account}/audience_insights".encode(),
        "query_string": b"audience_insight_type=YOUR_ENGAGED_AUDIENCE",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
    }
    limit = RateLimit.parse("10000000/s")

    async def send(message: dict) -> None:
        pass

    def uvicorn_send() -> object:
        """The ``send`` of a real uvicorn httptools request cycle, writing to nowhere: the whole
        request rows then take the path they take in the server (one write for pinsights, two
        for the bare app), minus the socket."""
        from uvicorn.protocols.http.flow_control import FlowControl
        from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

        class Nowhere:
            head = b""

            def write(self, data: bytes) -> None:
                self.head = self.head or data[:12]  # the first write starts with the status line

            def close(self) -> None:
                pass

            def is_closing(self) -> bool:
                return False

        transport = Nowhere()
        cycle = RequestResponseCycle(
            scope=dict(scope),
            transport=transport,
            flow=FlowControl(transport),
            logger=None,
            access_logger=None,
            access_log=False,
            default_headers=[(b"date", b"Sun, 29 Nov 2026 05:00:00 GMT")],
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=True,
            on_response=lambda: None,
        )
        return cycle

    async def measure(stack: contextlib.ExitStack) -> list[tuple[str, float]]:
        app = create_app(ServerSettings(store=store, rate_limit="10000000/s"))
        assert app.journal is not None and app.metrics is not None
        devnull = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - the stack closes it
        app.journal.sinks[0] = AccessLog(devnull).write
        bare_app = {}
        exec(BARE_APP.replace('open(os.environ["BENCH_BODY"], "rb").read()', "b'{}'"), bare_app)
        data = app.data_api
        table = Path(tempfile.mkdtemp()) / "table"
        create_table(table)
        shared = SharedMemoryLimiter(table, limit)
        costs: list[tuple[str, float]] = []
        cycle = uvicorn_send()

        def fresh(cycle):  # the cycle as uvicorn makes it for each request (cheaper than a new one)
            cycle.response_started = cycle.response_complete = False
            cycle.chunked_encoding, cycle.expected_content_length = None, 0
            return cycle

        async def cost(name: str, call, n: int = 20000) -> None:
            for _ in range(200):
                await call()
            started = time.process_time()
            for _ in range(n):
                await call()
            costs.append((name, (time.process_time() - started) / n * 1e6))

        async def sync(function, *arguments):  # a plain call, timed like the others
            return function(*arguments)

        await app(dict(scope), None, fresh(cycle).send)
        await app(dict(scope), None, fresh(cycle).send)  # the first was a miss (a store read)
        cycle.transport.head = b""
        await app(dict(scope), None, fresh(cycle).send)
        assert cycle.transport.head == b"HTTP/1.1 200", cycle.transport.head
        await cost(
            "bare ASGI app (the same call, for scale; uvicorn's send)",
            lambda: bare_app["app"](dict(scope), None, fresh(cycle).send),
        )
        await cost(
            "whole request, as served (router → journal; uvicorn's send)",
            lambda: app(dict(scope), None, fresh(cycle).send),
        )
        await cost(
            "whole request, answer only (DataApi.respond; uvicorn's send)",
            lambda: data.respond(dict(scope), fresh(cycle).send),
        )
        await cost(
            "auth: bearer header + verified-token cache",
            lambda: sync(data.tokens.verify, _bearer_token(scope)),
        )
        await cost("rate limit: memory (1 worker)", lambda: data.limiter.take("benchmark"))
        await cost("rate limit: shared table (--workers N)", lambda: shared.take("benchmark"))
        if redis_url:
            redis = open_limiter(redis_url, limit)
            await cost(
                "rate limit: Redis (CPU only; plus a loopback round trip)",
                lambda: redis.take("benchmark"),
                3000,
            )
            await redis.close()

        def check_parameters() -> object:
            segments = _segments(scope) or []
            _route(segments)
            return data.audience_insights(segments, _query(scope))

        await cost(
            "parameters: route + checks (first time; then remembered)",
            lambda: sync(check_parameters),
        )
        await cost(
            "lookup: cached document",
            lambda: data.documents.insights(
                account, AudienceInsightType.YOUR_ENGAGED_AUDIENCE, None
            ),
        )
        entry = (
            "GET",
            scope["path"],
            scope["query_string"],
            "127.0.0.1",
            "benchmark",
            "audience_insights_get",
            200,
            19000,
            1.0,
            1.0005,
        )
        batch = [entry] * 500
        log = app.journal.sinks[0]
        await cost("access log line (batched, per request)", lambda: sync(log, batch, 0.0), 40)
        costs[-1] = (costs[-1][0], costs[-1][1] / len(batch))
        await cost("metrics (batched, per request)", lambda: sync(app.metrics.count, batch), 40)
        costs[-1] = (costs[-1][0], costs[-1][1] / len(batch))
        return costs

    print("| layer (in-process, CPU per call) | µs |")
    print("| --- | ---: |")
    with contextlib.ExitStack() as stack:
        costs = asyncio.run(measure(stack))
    for name, micros in costs:
        print(f"| {name} | {micros:.2f} |")


if __name__ == "__main__":
    main()
