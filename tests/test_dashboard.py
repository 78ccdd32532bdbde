"""The dashboard and the API docs, in a real browser against a live ``pinsights serve``.

Chromium (Debian's, at /usr/bin/chromium) is driven by Playwright; one browser serves every test,
each test gets a fresh context (so a fresh sessionStorage). Every page a test opens is watched: a
request to any host other than the loopback server, or a console error that the test did not
expect, fails the test. The platform is generated and built by the real engine, with a hostile
category name and metro name in its input, and two retained snapshot dates.

Screenshots at desktop and phone widths go to ``$PINSIGHTS_SCREENSHOTS`` (or a temporary
directory, printed) for a person to look at.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from pinsights.cli.demo import dashboard_client
from pinsights.server.clients import ClientRegistry
from tests.conftest import (
    HOSTILE_CATEGORY,
    HOSTILE_METRO,
    BuiltPlatform,
    RunningServer,
    mint,
    start_server,
    write_snapshot,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 900}
EXPECT_TIMEOUT_MS = 20_000
DEFAULT_EXPECT_TIMEOUT_MS = 5_000  # Playwright's own
PHONE = {"width": 390, "height": 844}
AUDIENCE_LABELS = {
    "YOUR_TOTAL_AUDIENCE": "Your total audience",
    "YOUR_ENGAGED_AUDIENCE": "Your engaged audience",
    "PINTEREST_TOTAL_AUDIENCE": "Everyone on the platform",
}
NO_VALUE = "\u2013"  # an en dash: the page shows it where an audience has no value
SHOWN_CATEGORIES = 12  # the page's CATEGORY_ROWS


def share(ratio: float) -> str:
    """How the CLI prints a share (cli/query_screens.py): one decimal, Python's rounding."""
    return f"{ratio:.1%}"


def index(value: float) -> str:
    return f"{value:.2f}x"


# --- the platform and its server -------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    server: RunningServer
    accounts: list[str]  # as the page lists them
    dates: list[str]  # newest first
    client_id: str
    client_secret: str
    token: str  # minted for the same accounts, for reading documents in tests

    def document(self, account: str, insight_type: str, date: str | None = None) -> Any:
        params = {"audience_insight_type": insight_type, **({"date": date} if date else {})}
        response = self.server.get(
            f"/v5/ad_accounts/{account}/audience_insights", self.token, params=params
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def platform(
    built_platform: BuiltPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """The shared platform (conftest: 3,000 users, hostile names, two dates), in a copy of its
    store where a marketer's client is registered for 3 accounts."""
    store = tmp_path_factory.mktemp("dashboard") / "store"
    shutil.copytree(built_platform.store, store)
    # the three largest, in the order the page lists them (the first is shown after sign-in)
    accounts = sorted(built_platform.ad_account_ids[:3], key=lambda a: (len(a), a))
    client, secret = ClientRegistry(store).add("marketer", accounts)
    server = start_server(store)
    try:
        yield Platform(
            server=server,
            accounts=accounts,
            dates=[date.isoformat() for date in built_platform.dates],
            client_id=client.client_id,
            client_secret=secret,
            token=mint(accounts),
        )
    finally:
        server.stop()


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright_session() -> Iterator[Playwright]:
    """Module-scoped on purpose: Playwright's sync API keeps an asyncio loop running on the main
    thread while it lives, and a later test module calling ``asyncio.run`` would then fail."""
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    """One Chromium for all the dashboard tests (Debian's; `.ci/run` installs it when it is missing)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    browser = playwright_session.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    # Assertions wait for the page, not for a clock: a generous bound only matters on a machine
    # so loaded that a sign-in (an argon2 check) or a build-sized answer takes seconds.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    yield browser
    browser.close()
    expect.set_options(timeout=DEFAULT_EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    directory = os.environ.get("PINSIGHTS_SCREENSHOTS")
    path = (
        Path(directory)
        if directory
        else Path(os.environ.get("TMPDIR", "/tmp")) / "pinsights-screenshots"
    )
    path.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {path}")
    return path


@dataclass
class Watch:
    """What a page asked for and said: requests to other hosts and console errors fail the test."""

    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected_errors(self) -> list[str]:
        allowed = [
            f"Failed to load resource: the server responded with a status of {status}"
            for status in self.expected_statuses
        ]
        return [e for e in self.errors if not any(e.startswith(a) for a in allowed)]

    def foreign_requests(self) -> list[str]:
        return [
            url
            for url in self.requests
            if not (url.startswith(self.origin + "/") or url.startswith(f"blob:{self.origin}/"))
        ]


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Any]:
    """``open_page(server, viewport=…)``: a page in a fresh context, watched until the test ends."""
    opened: list[tuple[Any, Watch]] = []

    def open_(server: RunningServer, viewport: dict[str, int] = DESKTOP) -> tuple[Page, Watch]:
        context = browser.new_context(viewport=viewport, accept_downloads=True)
        page = context.new_page()
        watch = Watch(server.base_url)
        page.on("request", lambda request: watch.requests.append(request.url))
        page.on("console", watch.on_console)
        page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
        opened.append((context, watch))
        return page, watch

    yield open_
    for context, watch in opened:
        context.close()
        assert watch.foreign_requests() == [], "the page asked another host"
        assert watch.unexpected_errors() == [], "the page logged console errors"


# --- driving the page -----------------------------------------------------------------------------


def settled(page: Page) -> None:
    """Wait until the insights section shows and no load is under way."""
    insights = page.locator("#insights")
    expect(insights).to_be_visible()
    expect(insights).not_to_have_attribute("aria-busy", "true")


def sign_in(page: Page, platform: Platform, query: str = "") -> None:
    page.goto(f"{platform.server.base_url}/{query}")
    page.get_by_label("Client ID").fill(platform.client_id)
    page.get_by_label("Client secret").fill(platform.client_secret)
    page.get_by_role("button", name="Sign in").click()
    settled(page)


def choose(page: Page, label: str, value: str) -> None:
    page.get_by_label(label, exact=True).select_option(value)
    settled(page)


def choose_account(page: Page, account: str) -> None:
    """Type the account's ID into the `Ad account` field and press Enter."""
    field = page.get_by_label("Ad account", exact=True)
    field.fill(account)
    field.press("Enter")
    settled(page)


def account_label(server: RunningServer, account: str) -> str:
    """What the `Ad account` field shows for an account: "Name (id)", or the id without a name."""
    name = server.get(f"/v5/ad_accounts/{account}", mint("*")).json().get("name")
    return f"{name} ({account})" if name else account


def category_rows(page: Page) -> list[tuple[str, list[str], list[str]]]:
    """(name, shares, indexes) of each category row shown, one share and index per audience."""
    rows = []
    for row in page.locator("#categories-table tbody.category tr").all():
        if not row.is_visible():
            continue
        name = row.locator("th").inner_text().strip()
        shares = row.locator("td.share .number").all_inner_texts()
        indexes = row.locator("td.index .number").all_inner_texts()
        rows.append((name, shares, indexes))
    return rows


def expected_categories(*documents: Any) -> list[tuple[str, list[str], list[str]]]:
    """Rows as the page should show them: the first document's top categories, values per audience."""
    by_key = [{c["key"]: c for c in document["categories"]} for document in documents]
    rows = []
    for category in documents[0]["categories"][:SHOWN_CATEGORIES]:
        items = [lookup.get(category["key"]) for lookup in by_key]
        rows.append(
            (
                category["name"],
                [share(item["ratio"]) if item else NO_VALUE for item in items],
                [index(item["index"]) if item else NO_VALUE for item in items],
            )
        )
    return rows


def query_of(page: Page) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(page.url).query).items()}


# --- tests ----------------------------------------------------------------------------------------


def test_signed_in_marketer_sees_the_audience_the_api_serves(
    platform: Platform, open_page: Any, screenshots: Path
) -> None:
    page, _ = open_page(platform.server)
    sign_in(page, platform)
    account = platform.accounts[1]
    choose_account(page, account)
    choose(page, "Audience", "YOUR_TOTAL_AUDIENCE")
    document = platform.document(account, "YOUR_TOTAL_AUDIENCE")

    expect(page.locator(".card-primary .card-size")).to_have_text(f"{document['size']:,} people")
    assert category_rows(page) == expected_categories(document)
    # the summary's sentence names the top indexes among interests of 5% of the audience or more
    categories = document["categories"]
    distinctive = sorted(
        (c for c in categories if c["index"] > 1.0 and c["ratio"] >= 0.05),
        key=lambda c: (-c["index"], -c["ratio"]),
    )[:3]
    named = page.locator(".highlights strong").all_inner_texts()
    assert named == [c["name"] for c in distinctive] + [categories[0]["name"]]
    for dimension in ("ages", "genders", "devices"):
        table = page.locator(f"#{dimension}-table tbody tr")
        assert table.locator("th").all_inner_texts() == [
            v["name"] for v in document["demographics"][dimension]
        ]
        assert table.locator(".number").all_inner_texts() == [
            share(v["ratio"]) for v in document["demographics"][dimension]
        ]

    # a category's subcategories, on demand
    top = document["categories"][0]
    assert top["subcategories"], "the top category should have subcategories"
    toggle = page.locator("#categories-table .disclosure").first
    subcategories = page.locator(f"#{toggle.get_attribute('aria-controls')}")
    expect(subcategories).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(subcategories).to_be_visible()
    assert subcategories.locator("th").all_inner_texts() == [
        s["name"] for s in top["subcategories"]
    ]
    assert subcategories.locator("td.share .number").all_inner_texts() == [
        share(s["ratio"]) for s in top["subcategories"]
    ]
    assert subcategories.locator("td.index .number").all_inner_texts() == [
        index(s["index"]) for s in top["subcategories"]
    ]
    page.screenshot(path=screenshots / "dashboard-desktop.png")
    page.screenshot(path=screenshots / "dashboard-desktop-full.png", full_page=True)


def test_names_from_the_data_are_shown_as_text_never_as_html(
    platform: Platform, open_page: Any
) -> None:
    page, _ = open_page(platform.server)
    sign_in(page, platform)
    page.get_by_role("button", name=re.compile(r"Show all \d+ categories")).click()
    expect(page.locator("#categories-table th", has_text=HOSTILE_CATEGORY)).to_have_count(1)
    expect(page.locator("#metros-table th", has_text=HOSTILE_METRO)).to_have_count(1)
    assert page.locator("#report img, #report b").count() == 0
    assert page.title() == "Audience insights · pinsights"


def test_comparison_shows_both_audiences_side_by_side(platform: Platform, open_page: Any) -> None:
    page, _ = open_page(platform.server)
    sign_in(page, platform)
    account = platform.accounts[0]
    choose(page, "Audience", "YOUR_ENGAGED_AUDIENCE")
    choose(page, "Compare with", "PINTEREST_TOTAL_AUDIENCE")
    engaged = platform.document(account, "YOUR_ENGAGED_AUDIENCE")
    everyone = platform.document(account, "PINTEREST_TOTAL_AUDIENCE")

    expect(page.locator(".card-primary .card-size")).to_have_text(f"{engaged['size']:,} people")
    expect(page.locator(".card-compare .card-size")).to_have_text(f"{everyone['size']:,} people")
    assert category_rows(page) == expected_categories(engaged, everyone)
    assert page.locator("#categories .legend li").all_inner_texts() == [
        "Your engaged audience",
        "Everyone on the platform",
    ]
    countries = page.locator("#countries-table tbody tr").first
    top_country = engaged["demographics"]["countries"][0]
    other = {c["key"]: c for c in everyone["demographics"]["countries"]}[top_country["key"]]
    assert countries.locator(".number").all_inner_texts() == [
        share(top_country["ratio"]),
        share(other["ratio"]),
    ]
    # the comparison cannot be the audience itself
    expect(page.locator("#compare option[value=YOUR_ENGAGED_AUDIENCE]")).to_be_disabled()


def test_switching_audience_is_one_api_call(platform: Platform, open_page: Any) -> None:
    page, watch = open_page(platform.server)
    sign_in(page, platform)

    def api_calls_during(action: Any) -> list[str]:
        asked = len(watch.requests)
        action()
        return [url for url in watch.requests[asked:] if "/v5/" in url]

    calls = api_calls_during(lambda: choose(page, "Audience", "YOUR_TOTAL_AUDIENCE"))
    assert len(calls) == 1 and "/audience_insights?" in calls[0], calls
    # an audience seen before: no call at all
    assert api_calls_during(lambda: choose(page, "Audience", "YOUR_ENGAGED_AUDIENCE")) == []


def test_the_url_restores_the_view(platform: Platform, open_page: Any) -> None:
    page, _ = open_page(platform.server)
    sign_in(page, platform)
    account, older = platform.accounts[2], platform.dates[1]
    choose_account(page, account)
    choose(page, "Audience", "YOUR_TOTAL_AUDIENCE")
    choose(page, "Compare with", "YOUR_ENGAGED_AUDIENCE")
    choose(page, "Date", older)
    assert query_of(page) == {
        "account": account,
        "audience": "YOUR_TOTAL_AUDIENCE",
        "compare": "YOUR_ENGAGED_AUDIENCE",
        "date": older,
    }
    shown = category_rows(page)
    total = platform.document(account, "YOUR_TOTAL_AUDIENCE", older)
    engaged = platform.document(account, "YOUR_ENGAGED_AUDIENCE", older)
    assert shown == expected_categories(total, engaged)
    expect(page.locator(".card-primary .card-about")).to_contain_text(f"snapshot of {older}")

    # a reload keeps the session and the view
    page.reload()
    settled(page)
    assert category_rows(page) == shown
    # the link, shared with someone who signs in, opens the same view
    url = page.url
    other, _ = open_page(platform.server)
    sign_in(other, platform, "?" + urlsplit(url).query)
    for label, value in [
        ("Ad account", account_label(platform.server, account)),
        ("Audience", "YOUR_TOTAL_AUDIENCE"),
        ("Compare with", "YOUR_ENGAGED_AUDIENCE"),
        ("Date", older),
    ]:
        expect(other.get_by_label(label, exact=True)).to_have_value(value)
    assert category_rows(other) == shown
    # back goes to the previous view
    page.go_back()
    settled(page)
    expect(page.get_by_label("Date", exact=True)).to_have_value(platform.dates[0])


def test_csv_download_holds_what_is_shown(platform: Platform, open_page: Any) -> None:
    page, _ = open_page(platform.server)
    sign_in(page, platform)
    account = platform.accounts[0]
    choose(page, "Compare with", "PINTEREST_TOTAL_AUDIENCE")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    date = platform.dates[0]
    assert (
        download.suggested_filename
        == f"pinsights-{account}-your_engaged_audience-pinterest_total_audience-{date}.csv"
    )
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))

    expected = []
    for insight_type in ("YOUR_ENGAGED_AUDIENCE", "PINTEREST_TOTAL_AUDIENCE"):
        document = platform.document(account, insight_type)
        base = {"audience": insight_type, "date": date, "parent_key": "", "index": "", "people": ""}
        expected.append(
            {
                **base,
                "section": "size",
                "key": "",
                "name": "Audience size",
                "share": "",
                "people": str(document["size"]),
            }
        )
        for category in document["categories"]:
            expected.append(
                {
                    **base,
                    "section": "category",
                    "key": category["key"],
                    "name": category["name"],
                    "share": category["ratio"],
                    "index": category["index"],
                }
            )
            for sub in category["subcategories"]:
                expected.append(
                    {
                        **base,
                        "section": "subcategory",
                        "parent_key": category["key"],
                        "key": sub["key"],
                        "name": sub["name"],
                        "share": sub["ratio"],
                        "index": sub["index"],
                    }
                )
        for dimension in ("ages", "genders", "devices", "countries", "metros"):
            for value in document["demographics"][dimension]:
                name = value["name"]
                if name[:1] in "=+-@":  # a spreadsheet formula, defused
                    name = "'" + name
                expected.append(
                    {
                        **base,
                        "section": dimension,
                        "key": value["key"],
                        "name": name,
                        "share": value["ratio"],
                    }
                )

    def normal(row: dict[str, Any]) -> dict[str, Any]:
        return {
            k: float(v) if k in ("share", "index") and v != "" else str(v) for k, v in row.items()
        }

    assert [normal(row) for row in rows] == [normal(row) for row in expected]
    assert any(row["name"] == "'" + HOSTILE_METRO for row in rows)


def test_demo_credentials_sign_in_and_replace_the_previous_ones(
    platform: Platform, open_page: Any
) -> None:
    """What `pinsights demo` prints works on the dashboard; a restarted demo's replace it."""
    earlier_id, earlier_secret = dashboard_client(platform.server.store, platform.accounts)
    client_id, secret = dashboard_client(platform.server.store, platform.accounts)
    page, _ = open_page(platform.server)
    sign_in(page, replace(platform, client_id=client_id, client_secret=secret))
    expect(page.locator("#categories-table")).to_be_visible()
    refused = platform.server.client.post(
        "/v5/oauth/token",
        auth=(earlier_id, earlier_secret),
        data={"grant_type": "client_credentials"},
    )
    assert refused.status_code == 401


def test_wrong_secret_is_a_sentence_and_keeps_nothing(platform: Platform, open_page: Any) -> None:
    page, watch = open_page(platform.server)
    watch.expected_statuses.add(401)
    page.goto(platform.server.base_url + "/")
    page.get_by_label("Client ID").fill(platform.client_id)
    page.get_by_label("Client secret").fill("not-the-secret")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "That client ID and secret do not match. Check both and try again."
    )
    expect(page.locator("#insights")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.length") == 0


def test_keyboard_only_sign_in_and_sign_out_forgets_the_token(
    platform: Platform, open_page: Any
) -> None:
    page, _ = open_page(platform.server)
    page.goto(platform.server.base_url + "/")
    expect(page.get_by_label("Client ID")).to_be_focused()
    page.keyboard.type(platform.client_id)
    page.keyboard.press("Tab")
    page.keyboard.type(platform.client_secret)
    page.keyboard.press("Enter")
    settled(page)
    toggle = page.locator("#categories-table .disclosure").first
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    assert page.evaluate("() => [sessionStorage.length, localStorage.length]") == [1, 0]
    assert page.context.cookies() == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Client ID")).to_be_visible()
    expect(page.locator("#report")).to_be_hidden()
    assert page.locator("#categories-table").count() == 0
    assert page.evaluate("() => sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_label("Client ID")).to_be_visible()


def test_invalid_token_sends_back_to_sign_in_with_a_sentence(
    platform: Platform, open_page: Any
) -> None:
    page, watch = open_page(platform.server)
    watch.expected_statuses.add(401)
    page.goto(platform.server.base_url + "/")
    page.get_by_text("Sign in with an access token instead").click()
    forged = mint(platform.accounts, client_id="someone").rsplit(".", 1)[0] + ".AAAA"
    page.get_by_label("Access token").fill(forged)
    page.get_by_role("button", name="Use this token").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Your sign-in has expired or is no longer valid. Please sign in again."
    )
    expect(page.get_by_label("Client ID")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0


def test_expired_token_is_refused_before_any_call(platform: Platform, open_page: Any) -> None:
    page, watch = open_page(platform.server)
    page.goto(platform.server.base_url + "/")
    page.get_by_text("Sign in with an access token instead").click()
    page.get_by_label("Access token").fill(mint(platform.accounts, ttl=-10))
    asked = len(watch.requests)
    page.get_by_role("button", name="Use this token").click()
    expect(page.get_by_role("alert")).to_contain_text("This access token has expired.")
    assert watch.requests[asked:] == []


def test_rate_limit_is_a_sentence_with_the_wait(
    platform: Platform, open_page: Any, tmp_path: Path
) -> None:
    limited = start_server(platform.server.store, rate_limit="1/hour")  # a burst of 2 requests
    try:
        page, watch = open_page(limited)
        watch.expected_statuses.add(429)
        page.goto(limited.base_url + "/")
        page.get_by_label("Client ID").fill(platform.client_id)
        page.get_by_label("Client secret").fill(platform.client_secret)
        page.get_by_role(
            "button", name="Sign in"
        ).click()  # token: 1, definitions: 2, insights: 429
        expect(page.get_by_role("alert")).to_have_text(
            re.compile(
                r"^Too many requests for this client right now\. Try again in \d+ minutes\.$"
            )
        )
    finally:
        limited.stop()


def test_small_audience_reads_fewer_than_100_people(server: RunningServer, open_page: Any) -> None:
    """The hand-made store: account 1002's audiences are below the privacy threshold."""
    page, _ = open_page(server)
    sign_in_with_token(
        page, server, mint(["1001", "1002"]), "?account=1002&audience=YOUR_TOTAL_AUDIENCE"
    )
    settled(page)
    expect(page.get_by_label("Ad account", exact=True)).to_have_value("1002")
    expect(page.locator(".card-primary .card-size")).to_have_text("fewer than 100 people")
    expect(page.locator("#categories .empty")).to_have_text(
        "No interests are shown for audiences of fewer than 100 people."
    )
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert [(row["section"], row["people"]) for row in rows] == [("size", "<100")]


def test_account_the_token_may_not_read_is_a_sentence(
    server: RunningServer, open_page: Any
) -> None:
    page, watch = open_page(server)
    watch.expected_statuses.add(403)
    sign_in_with_token(page, server, mint(["1001"]), "?account=1003")
    expect(page.get_by_role("alert")).to_have_text(
        "You may not read ad account 1003, or it does not exist."
    )


def test_phone_width_has_no_horizontal_scroll(
    platform: Platform, open_page: Any, screenshots: Path
) -> None:
    page, _ = open_page(platform.server, viewport=PHONE)
    page.goto(platform.server.base_url + "/")
    page.screenshot(path=screenshots / "sign-in-phone.png")
    sign_in(page, platform)
    choose(page, "Compare with", "PINTEREST_TOTAL_AUDIENCE")
    page.screenshot(path=screenshots / "dashboard-phone.png")
    page.locator("#categories-table .disclosure").first.click()
    show_all = page.get_by_role("button", name=re.compile(r"^Show all"))
    while show_all.count():
        show_all.first.click()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    page.screenshot(path=screenshots / "dashboard-phone-full.png", full_page=True)


def test_formatting_matches_the_cli_everywhere(platform: Platform, open_page: Any) -> None:
    """Every 4-decimal ratio, and indexes including exact ties, formatted as Python does."""
    page, _ = open_page(platform.server)
    page.goto(platform.server.base_url + "/")
    ratios = [k / 10_000 for k in range(10_001)]
    indexes = [k / 10_000 for k in range(0, 100_000, 7)] + [0.125, 3.125, 3.375, 2.005, 1.0]
    shares_shown = page.evaluate("(values) => values.map(window.pinsights.formatShare)", ratios)
    indexes_shown = page.evaluate("(values) => values.map(window.pinsights.formatIndex)", indexes)
    assert shares_shown == [share(r) for r in ratios]
    assert indexes_shown == [index(i) for i in indexes]


def test_sortable_table_sorts_by_name_and_share(platform: Platform, open_page: Any) -> None:
    page, _ = open_page(platform.server)
    sign_in(page, platform)
    document = platform.document(platform.accounts[0], "YOUR_ENGAGED_AUDIENCE")
    countries = document["demographics"]["countries"]
    page.get_by_role("button", name=re.compile(r"^Show all \d+ countries$")).click()
    names = page.locator("#countries-table tbody th")
    assert names.all_inner_texts() == [c["name"] for c in countries]
    header = page.locator("#countries-table thead th").first
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    in_collation_order = page.evaluate(
        "(names) => [...names].sort((a, b) => a.localeCompare(b))", [c["name"] for c in countries]
    )
    assert names.all_inner_texts() == in_collation_order
    share_header = page.locator("#countries-table thead th").nth(1)
    share_header.get_by_role("button").click()
    expect(share_header).to_have_attribute("aria-sort", "descending")
    share_header.get_by_role("button").click()
    expect(share_header).to_have_attribute("aria-sort", "ascending")
    shown = [
        float(t.rstrip("%"))
        for t in page.locator("#countries-table tbody .number").all_inner_texts()
    ]
    assert shown == sorted(shown)


def test_api_docs_render_with_the_servers_own_assets(
    platform: Platform, open_page: Any, screenshots: Path
) -> None:
    page, _ = open_page(platform.server)
    page.goto(platform.server.base_url + "/v5/docs")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    paths = operations.all_inner_texts()
    assert any("/ad_accounts/{ad_account_id}/audience_insights" in p for p in paths), paths
    page.screenshot(path=screenshots / "api-docs-desktop.png")
    # "Try it out" works from the page, on this server
    operation = page.locator(
        ".opblock", has=page.locator(".opblock-summary-path", has_text="/healthz")
    )
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table tr.response")
    expect(answer.locator(".response-col_status")).to_have_text("200")
    expect(answer.locator(".microlight").first).to_contain_text('"status": "ok"')


@pytest.mark.parametrize("path", ["/", "/v5/docs"])
def test_pages_and_their_assets_carry_the_security_headers(platform: Platform, path: str) -> None:
    client = platform.server.client
    page = client.get(path)
    assert page.status_code == 200
    html = page.text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets, html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "inline script"
    assert "<style" not in html and " style=" not in html, "inline style"
    for response in [page, *(client.get(asset) for asset in assets)]:
        assert response.status_code == 200, response.url
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_assets_are_cached_by_content_and_revalidated(platform: Platform) -> None:
    client = platform.server.client
    html = client.get("/").text
    script = re.search(r'src="(/static/dashboard/app\.js\?v=[0-9a-f]+)"', html)
    assert script is not None
    first = client.get(script.group(1), headers={"Accept-Encoding": "gzip"})
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert first.headers["content-encoding"] == "gzip"
    again = client.get(script.group(1), headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/static/dashboard/nothing.js").json() == {
        "code": 404,
        "message": "Not found.",
    }
    assert client.get("/static/dashboard/index.html").status_code == 404


def sign_in_with_token(page: Page, server: RunningServer, token: str, query: str = "") -> None:
    page.goto(f"{server.base_url}/{query}")
    page.get_by_text("Sign in with an access token instead").click()
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Use this token").click()


def test_token_for_every_account_lists_them_and_takes_a_typed_id(
    server: RunningServer, open_page: Any
) -> None:
    """The hand-made snapshot has no names: the field lists and shows bare ids."""
    page, _ = open_page(server)
    sign_in_with_token(page, server, mint("*"))
    settled(page)
    account = page.get_by_role("combobox", name="Ad account")
    expect(account).to_have_value("1001")  # the first account, until one is chosen
    expect(page.locator("#account-help")).to_have_text("3 accounts: type part of a name or an ID.")
    account.fill("1003")
    account.press("Enter")
    settled(page)
    expect(page.locator(".card-primary .card-size")).to_have_text("fewer than 100 people")
    assert query_of(page)["account"] == "1003"


#: Accounts of the many-accounts store: 3,000 advertisers with names, one of them easy to find.
MANY = [str(549755813000 + n) for n in range(3000)]
NEEDLE = MANY[2345]


def many_name(account: str) -> str:
    return "Zephyr Kitchenware Ltd" if account == NEEDLE else f"Advertiser {MANY.index(account)}"


@pytest.fixture(scope="module")
def many_accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("many") / "store"
    write_snapshot(
        store,
        dt.date(2026, 11, 30),
        {account: {"YOUR_TOTAL_AUDIENCE": 400, "YOUR_ENGAGED_AUDIENCE": 150} for account in MANY},
        details={account: {"name": many_name(account)} for account in MANY},
    )
    running = start_server(store)
    yield running
    running.stop()


def test_an_account_is_picked_by_typing_part_of_its_name_among_thousands(
    many_accounts: RunningServer, open_page: Any, screenshots: Path
) -> None:
    page, _ = open_page(many_accounts)
    sign_in_with_token(page, many_accounts, mint("*"))
    settled(page)
    field = page.get_by_role("combobox", name="Ad account")
    expect(field).to_have_value(f"{many_name(MANY[0])} ({MANY[0]})")
    expect(page.locator("#account-help")).to_have_text(
        "3,000 accounts: type part of a name or an ID."
    )
    field.click()
    field.press_sequentially("kitchen")
    options = page.get_by_role("listbox", name="Matching ad accounts").get_by_role("option")
    expect(options).to_have_text([f"Zephyr Kitchenware Ltd ({NEEDLE})"])
    page.screenshot(path=screenshots / "dashboard-account-picker.png")
    options.first.click()
    settled(page)
    expect(field).to_have_value(f"Zephyr Kitchenware Ltd ({NEEDLE})")
    assert query_of(page)["account"] == NEEDLE
    expect(page.locator(".card-primary .card-size")).to_have_text("150 people")
    expect(page.get_by_role("listbox")).to_be_hidden()

    # by keyboard: type, arrow down to the second match, Enter
    field.click()
    field.press_sequentially("advertiser 12")
    expect(options).to_have_count(50)  # at most 50 listed; more are found by typing more
    expect(page.locator(".combo-more")).to_have_text("More accounts match: keep typing.")
    field.press_sequentially("3")  # "advertiser 123": 123 and 1230-1239, in id order
    expect(options).to_have_count(11)
    second = f"Advertiser 1230 ({MANY[1230]})"
    expect(options.nth(1)).to_have_text(second)
    field.press("ArrowDown")
    field.press("ArrowDown")
    expect(field).to_have_attribute("aria-activedescendant", "account-option-1")
    field.press("Enter")
    settled(page)
    expect(field).to_have_value(second)
    assert query_of(page)["account"] == MANY[1230]

    # nothing matches: a sentence, and the shown account stays
    field.click()
    field.fill("no such advertiser")
    field.press("Enter")
    expect(page.get_by_role("alert")).to_have_text(
        "No ad account matches “no such advertiser”. Type part of its name, or its ID (digits)."
    )
    assert query_of(page)["account"] == MANY[1230]


def test_token_without_the_read_scope_is_a_sentence(server: RunningServer, open_page: Any) -> None:
    page, watch = open_page(server)
    watch.expected_statuses.add(403)
    sign_in_with_token(page, server, mint(["1001"], scopes=("pins:read",)))
    expect(page.get_by_role("alert")).to_have_text(
        "This token is not allowed to read audience insights (it lacks the ads:read scope)."
    )


#: Elements with text whose contrast with their background must be at least 4.5:1 (WCAG AA).
TEXT_ELEMENTS = (
    ".brand",
    ".top-nav a",
    ".top-nav button",
    ".field label",
    "select",
    "#account",
    ".button-secondary",
    ".card-label",
    ".card-size",
    ".card-about",
    ".highlights",
    ".hint",
    ".legend li",
    ".chart thead th",
    ".chart th.name",
    ".number",
    ".index-high .number",
    ".sort",
    ".show-all",
)
COLOURS = """(selectors) => {
  const opaque = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const colour = getComputedStyle(node).backgroundColor;
      if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") return colour;
    }
    return "rgb(255, 255, 255)";
  };
  return selectors.flatMap((selector) =>
    [...document.querySelectorAll(selector)].slice(0, 3).map((element) => [
      selector, getComputedStyle(element).color, opaque(element),
    ]),
  );
}"""


def _luminance(colour: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", colour)[:3])

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.03928 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_text_contrast_is_at_least_4_5_to_1(platform: Platform, open_page: Any) -> None:
    page, _ = open_page(platform.server)
    page.goto(platform.server.base_url + "/")
    signed_out = page.evaluate(
        COLOURS, [".signin h1", ".lede", ".stack label", ".button-primary", ".fine", "summary"]
    )
    sign_in(page, platform)
    choose(page, "Compare with", "PINTEREST_TOTAL_AUDIENCE")
    signed_in = page.evaluate(COLOURS, list(TEXT_ELEMENTS))
    found = {selector for selector, _, _ in signed_out + signed_in}
    assert found >= set(TEXT_ELEMENTS), set(TEXT_ELEMENTS) - found
    poor = [
        (selector, colour, background, round(contrast(colour, background), 2))
        for selector, colour, background in signed_out + signed_in
        if contrast(colour, background) < 4.5
    ]
    assert poor == []
