"""Token verification benchmark: what the verified-token cache saves, alone and in a live server.

1. In process: ``TokenService.verify`` on the same token, with the cache (the default, 10,000
   tokens) and without it (``cache_size=0``: every call parses and checks the HMAC), with the keyring
   of a store's ``keys.json`` (followed by stat, as a server does) and with a fixed key.
2. Live: two ``pinsights serve`` on the same store, one with ``PINSIGHTS_TOKEN_CACHE_SIZE=0``, the
   same cached endpoint as ``benchmarks/serve.py``, wrk rounds alternating between them. Ratios in the
   same run, not absolute figures, are what to compare on a shared machine.

    python benchmarks/tokens.py [--duration 5] [--rounds 3] [--connections 32] [--calls 20000]

Needs wrk for part 2 (skipped with a note when missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import (  # the serving benchmark's helpers: same store, server, wrk
    ROOT,
    SECRET,
    Result,
    free_port,
    mint_token,
    prepare_store,
    running,
    wrk,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="verify() calls per variant")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=3000, help="size of the benchmark platform")
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data" / "serve")
    args = parser.parse_args()
    in_process(args.calls)
    if shutil.which("wrk") is None:
        print("\nwrk not found: the live comparison is skipped (apt-get install -y wrk)")
        return
    live(args)


def in_process(calls: int) -> None:
    from pinsights.server.keys import KeyFile
    from pinsights.server.tokens import TokenService

    print(f"verify() of one token, {calls:,} calls, µs per call (best of 3):\n")
    print("| keyring | cache | µs/call |")
    print("| --- | --- | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        key_file = KeyFile(Path(tmp) / "store")
        key_file.ensure()
        keyrings = {"fixed key": SECRET.encode(), "store's keys.json": key_file.keyring}
        for keyring_name, keys in keyrings.items():
            figures = {}
            for cache_name, size in (("on", 10_000), ("off", 0)):
                figures[cache_name] = microseconds_per_verify(
                    TokenService(keys, cache_size=size), calls
                )
                print(f"| {keyring_name} | {cache_name} | {figures[cache_name]:.2f} |")
            print(f"| {keyring_name} | off / on | {figures['off'] / figures['on']:.1f}x |")


def microseconds_per_verify(service: Any, calls: int) -> float:
    token = service.issue("benchmark", ["ads:read"], ["*"], 3600)
    service.verify(token)
    seconds = min(timeit.repeat(lambda: service.verify(token), number=calls, repeat=3))
    return seconds / calls * 1e6


def live(args: argparse.Namespace) -> None:
    store, account = prepare_store(args.data, args.users)
    path = (
        f"/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_ENGAGED_AUDIENCE"
    )
    token = mint_token()
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(store, Path(tmp), "cache on", {}) as cached,
        server(store, Path(tmp), "cache off", {"PINSIGHTS_TOKEN_CACHE_SIZE": "0"}) as uncached,
    ):
        servers = {"cache on": cached, "cache off": uncached}
        for running_server in servers.values():  # warm: imports, LRU, connections
            wrk(running_server, path, token, 2, args.connections)
        results: dict[str, list[Result]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, running_server in servers.items():
                results[name].append(
                    wrk(running_server, path, token, args.duration, args.connections, name)
                )
    print(
        f"\nlive: wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds"
        " (best shown), one worker each, same store and endpoint as benchmarks/serve.py\n"
    )
    print("| server | req/s | p50 ms | p99 ms | non-2xx | server CPU µs/request |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    best = {name: max(runs, key=lambda r: r.requests_per_second) for name, runs in results.items()}
    for r in best.values():
        print(
            f"| {r.name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.non_2xx} | {r.cpu_us_per_request:.0f} |"
        )
    on, off = best["cache on"], best["cache off"]
    print(f"\ncache on / off, requests/s: {on.requests_per_second / off.requests_per_second:.2f}x")
    print(
        f"CPU per request saved by the cache: {off.cpu_us_per_request - on.cpu_us_per_request:.0f} µs"
    )
    for name, runs in results.items():
        print(f"{name} rounds: " + ", ".join(f"{r.requests_per_second:,.0f}" for r in runs))


def server(store: Path, tmp: Path, name: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    port = free_port()
    environment = {**os.environ, "PINSIGHTS_SECRET": SECRET, **env}
    command = [sys.executable, "-c", "from pinsights.cli import app; app()", "serve"]
    command += ["--store", str(store), "--port", str(port), "--rate-limit", "10000000/s"]
    log = tmp / f"{name.replace(' ', '-')}.log"
    return running(command, environment, log, f"http://127.0.0.1:{port}")


if __name__ == "__main__":
    main()
