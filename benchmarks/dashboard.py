"""Dashboard benchmark: first paint and time to charts in Chromium, on the demo's platform.

Serves the `pinsights demo` platform (250,000 users, 30 advertisers; built under ./demo-data the
first time, about a minute, then reused) with `pinsights serve` on a free loopback port, and drives
Debian's Chromium through Playwright. Per run, in a fresh browser context (empty cache):

- baseline: navigating to `/healthz` (a few bytes of JSON the browser paints as text), the floor
  for "navigate and paint" on this machine and server;
- the dashboard's first contentful paint, signed out (the sign-in form) and signed in (a reload
  with the token in the session: the page then loads the account's definitions and one document);
- the time from that reload to the charts being on screen;
- switching audience (one API call) and switching back (none), until the new charts show.

    python benchmarks/dashboard.py [--runs 10] [--dir demo-data]

Prints medians as a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.test_dashboard import CHROMIUM, CHROMIUM_ARGS, DESKTOP  # noqa: E402

FCP = "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"


def first_paint(page: Page) -> float:
    """The page's first-contentful-paint time (ms from navigation start), once it is recorded."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        value = page.evaluate(FCP)
        if value is not None:
            return float(value)
        time.sleep(0.02)
    raise RuntimeError(f"no first-contentful-paint on {page.url}")


def wait_for_charts(page: Page, audience: str) -> None:
    expect(page.locator("#insights")).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#categories-table")).to_be_visible()
    expect(page.get_by_label("Audience", exact=True)).to_have_value(audience)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=ROOT / "demo-data")
    args = parser.parse_args()

    from pinsights.cli import demo

    platform_ = demo.prepare(args.dir, progress=sys.stderr.isatty())
    accounts = platform_.ad_account_ids[:3]
    client_id, secret = demo.dashboard_client(platform_.store_dir, accounts)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", "from pinsights.cli import app; app()", "serve"]
    command += ["--store", str(platform_.store_dir)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--no-access-log", "--rate-limit", "1000/s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    figures: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for _ in range(args.runs):
                context = browser.new_context(viewport=DESKTOP)
                page = context.new_page()
                page.goto(base + "/healthz")
                note("baseline: /healthz first paint", first_paint(page))
                page.goto(base + "/")
                expect(page.get_by_label("Client ID")).to_be_visible()
                note("dashboard first paint, signed out", first_paint(page))
                page.get_by_label("Client ID").fill(client_id)
                page.get_by_label("Client secret").fill(secret)
                page.get_by_role("button", name="Sign in").click()
                wait_for_charts(page, "YOUR_ENGAGED_AUDIENCE")
                started = time.perf_counter()
                page.reload()
                wait_for_charts(page, "YOUR_ENGAGED_AUDIENCE")
                note("reload to charts, signed in", (time.perf_counter() - started) * 1000)
                note("dashboard first paint, signed in", first_paint(page))
                for audience, name in [
                    ("YOUR_TOTAL_AUDIENCE", "switch audience (1 API call)"),
                    ("YOUR_ENGAGED_AUDIENCE", "switch back (cached, 0 calls)"),
                ]:
                    started = time.perf_counter()
                    page.get_by_label("Audience", exact=True).select_option(audience)
                    wait_for_charts(page, audience)
                    note(name, (time.perf_counter() - started) * 1000)
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"runs: {args.runs} (fresh browser context each), medians in ms\n")
    print("| measure | median ms | min ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in figures.items():
        print(
            f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |"
        )


if __name__ == "__main__":
    main()
