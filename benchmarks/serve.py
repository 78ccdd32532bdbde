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


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


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
        with pinsights_server(store, Path(tmp)) as pinsights_url:
            body = httpx.get(pinsights_url + path, headers={"Authorization": f"Bearer {token}"})
            body.raise_for_status()
            body_file = Path(tmp) / "body.json"
            body_file.write_bytes(body.content)
            with bare_server(body_file, Path(tmp)) as bare_url:
                urls = {"bare ASGI": bare_url + path, "pinsights": pinsights_url + path}
                for url in urls.values():  # warm both: imports, caches, connections
                    wrk(url, token, 2, args.connections)
                results: dict[str, list[Result]] = {name: [] for name in urls}
                for _ in range(args.rounds):
                    for name, url in urls.items():
                        results[name].append(wrk(url, token, args.duration, args.connections, name))
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
def running(command: list[str], env: dict[str, str], log: Path, url: str) -> Iterator[str]:
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
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def pinsights_server(store: Path, tmp: Path) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    env = {**os.environ, "PINSIGHTS_SECRET": SECRET}
    command = [sys.executable, "-c", "from pinsights.cli import app; app()", "serve"]
    command += ["--store", str(store), "--port", str(port), "--rate-limit", "10000000/s"]
    return running(command, env, tmp / "pinsights.log", f"http://127.0.0.1:{port}")


def bare_server(body: Path, tmp: Path) -> contextlib.AbstractContextManager[str]:
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


def wrk(url: str, token: str, duration: int, connections: int, name: str = "") -> Result:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Result(
        name=name,
        requests_per_second=float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        p50_ms=_millis(_find(r"\s50%\s+([\d.]+\w+)", out)),
        p99_ms=_millis(_find(r"\s99%\s+([\d.]+\w+)", out)),
        non_2xx=int(_find(r"Non-2xx or 3xx responses: (\d+)", out, "0")),
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
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
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, {platform.platform()}"
    )
    print(
        f"load: wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds (best shown), body {size} bytes"
    )
    print()
    print("| server | req/s | p50 ms | p99 ms | non-2xx | socket errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for result in (bare, app):
        print(
            f"| {result.name} | {result.requests_per_second:,.0f} | {result.p50_ms:.2f} | {result.p99_ms:.2f} | {result.non_2xx} | {result.errors} |"
        )
    print()
    print(f"pinsights / bare ASGI: {app.requests_per_second / bare.requests_per_second:.0%}")
    for name, runs in results.items():
        print(
            f"{name} rounds: "
            + ", ".join(f"{r.requests_per_second:,.0f} req/s p99 {r.p99_ms:.2f} ms" for r in runs)
        )


if __name__ == "__main__":
    main()
