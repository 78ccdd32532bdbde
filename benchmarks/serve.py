"""Serving benchmark: a real endpoint of `pinsights serve` under load, beside a bare ASGI app.

Both servers run in the same run, under the same uvicorn settings (one worker, uvloop, httptools),
and answer the same bytes: the bare app returns the document the real endpoint returned, without
auth, rate limiting, routing, lookup or access log. The ratio of their requests/s is the share of
the machine's HTTP ceiling that pinsights keeps.

    python benchmarks/serve.py [--duration 10] [--connections 32] [--users 3000]

Needs wrk (`apt-get install -y wrk`). Builds a small platform under ./bench-data/serve the first time
(generator + engine), then reuses it. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
        """User + system CPU time of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per server")
    parser.add_argument("--users", type=int, default=3000, help="size of the benchmark platform")
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data" / "serve")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")

    store, account = prepare_store(args.data, args.users)
    path = (
        f"/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_ENGAGED_AUDIENCE"
    )
    with tempfile.TemporaryDirectory() as tmp:
        token = mint_token()
        with pinsights_server(store, Path(tmp)) as pinsights:
            body = httpx.get(pinsights.url + path, headers={"Authorization": f"Bearer {token}"})
            body.raise_for_status()
            body_file = Path(tmp) / "body.json"
            body_file.write_bytes(body.content)
            with bare_server(body_file, Path(tmp)) as bare:
                servers = {"bare ASGI": bare, "pinsights": pinsights}
                for server in servers.values():  # warm both: imports, caches, connections
                    wrk(server, path, token, 2, args.connections)
                results: dict[str, list[Result]] = {name: [] for name in servers}
                for _ in range(args.rounds):
                    for name, server in servers.items():
                        results[name].append(
                            wrk(server, path, token, args.duration, args.connections, name)
                        )
    report(results, args, len(body.content))


def prepare_store(directory: Path, users: int) -> tuple[Path, str]:
    """A generated + built platform (reused when present) and its largest ad account."""
    from pinsights.store import Store

    data, store, marker = directory / "data", directory / "store", directory / "bench.json"
    if not marker.exists() or Store(store).latest() is None:
        from pinsights.data.generate import generate
        from pinsights.engine.build import BuildOptions, build

        shutil.rmtree(directory, ignore_errors=True)
        print(f"building a {users}-user platform in {directory} …", file=sys.stderr)
        summary = generate(data, users=users, accounts=5, days=30, seed=1)
        build(BuildOptions(data_dir=data, store_dir=store))
        marker.write_text(json.dumps({"account": summary.ad_account_ids[0]}))
    return store, json.loads(marker.read_text())["account"]


def mint_token() -> str:
    from pinsights.server.tokens import TokenService

    return TokenService(SECRET.encode()).issue("benchmark", ["ads:read"], ["*"], 24 * 3600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], log: Path, url: str) -> Iterator[Server]:
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=handle, env=env)
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


def pinsights_server(store: Path, tmp: Path) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    env = {**os.environ, "PINSIGHTS_SECRET": SECRET}
    command = [sys.executable, "-c", "from pinsights.cli import app; app()", "serve"]
    command += ["--store", str(store), "--port", str(port), "--rate-limit", "10000000/s"]
    return running(command, env, tmp / "pinsights.log", f"http://127.0.0.1:{port}")


def bare_server(body: Path, tmp: Path) -> contextlib.AbstractContextManager[Server]:
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
    ]
    return running(command, env, tmp / "bare.log", f"http://127.0.0.1:{port}")


def wrk(
    server: Server, path: str, token: str, duration: int, connections: int, name: str = ""
) -> Result:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}", server.url + path]
    cpu_before = server.cpu_seconds()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - cpu_before
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


def report(results: dict[str, list[Result]], args: argparse.Namespace, size: int) -> None:
    best = {name: max(runs, key=lambda r: r.requests_per_second) for name, runs in results.items()}
    bare, app = best["bare ASGI"], best["pinsights"]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.platform()}"
    )
    print(
        f"load: wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds "
        f"(best shown), body {size} bytes; servers: uvicorn, 1 worker, uvloop + httptools"
    )
    print()
    print("| server | req/s | p50 ms | p99 ms | non-2xx | socket errors | server CPU µs/request |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in (bare, app):
        print(
            f"| {r.name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.non_2xx} | {r.errors} | {r.cpu_us_per_request:.0f} |"
        )
    print()
    print(
        f"pinsights / bare ASGI, requests/s: {app.requests_per_second / bare.requests_per_second:.0%}"
    )
    cpu_ratio = bare.cpu_us_per_request / app.cpu_us_per_request
    print(f"bare ASGI / pinsights, CPU per request: {cpu_ratio:.0%}")
    for name, runs in results.items():
        rounds = ", ".join(
            f"{r.requests_per_second:,.0f} req/s p99 {r.p99_ms:.2f} ms non-2xx {r.non_2xx}"
            for r in runs
        )
        print(f"{name} rounds: {rounds}")


if __name__ == "__main__":
    main()
