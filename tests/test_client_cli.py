"""``pinsights insights`` and ``pinsights definitions``: readable tables, or the wire JSON.

Against the scripted loopback server; ``test_client_server.py`` runs the same commands against a
real pinsights server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from test_client_fakes import (
    ACCOUNT,
    TOKEN,
    Reply,
    ScriptedServer,
    closed_port_url,
    definitions_document,
    error,
    insights_document,
    scripted,
)
from typer.testing import CliRunner

from pinsights.cli import app

__all__ = ["scripted"]

INSIGHTS = f"/ad_accounts/{ACCOUNT}/audience_insights"
DEFINITIONS = f"/ad_accounts/{ACCOUNT}/insights/audiences"


Run = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Run:
    """Invoke the CLI in-process with a clean environment (no base URL or token inherited)."""
    monkeypatch.delenv("PINSIGHTS_BASE_URL", raising=False)
    monkeypatch.delenv("PINTEREST_ACCESS_TOKEN", raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


def test_insights_prints_size_categories_subcategories_and_every_demographic(
    run: Run, scripted: ScriptedServer
) -> None:
    scripted.script(INSIGHTS, Reply(200, insights_document("YOUR_ENGAGED_AUDIENCE")))

    result = run(
        "insights", ACCOUNT, "--type", "your_engaged_audience",
        "--base-url", scripted.base_url, "--token", TOKEN,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Your engaged audience of ad account {ACCOUNT}" in out
    assert "snapshot 2026-11-30" in out
    assert "1,234 people" in out
    for title in (
        "Categories",
        "Subcategories",
        "Ages",
        "Genders",
        "Countries",
        "Metros",
        "Devices",
    ):
        assert title in out
    assert "Home decor" in out and "48.1%" in out and "1.55x" in out and "█" in out
    assert "Living room" in out
    assert "United States" in out and "New York, NY" in out and "iPhone" in out
    assert scripted.seen(INSIGHTS)[0].query["audience_insight_type"] == ["YOUR_ENGAGED_AUDIENCE"]


def test_a_longer_affinity_bar_means_a_higher_index(run: Run, scripted: ScriptedServer) -> None:
    scripted.script(INSIGHTS, Reply(200, insights_document()))

    out = run("insights", ACCOUNT, "--base-url", scripted.base_url, "--token", TOKEN).stdout

    home = next(line for line in out.splitlines() if "Home decor" in line)
    travel = next(line for line in out.splitlines() if "Travel" in line)
    assert home.count("█") > travel.count("█") > 0


def test_insights_json_prints_the_wire_document_unchanged(
    run: Run, scripted: ScriptedServer
) -> None:
    document = insights_document()
    scripted.script(INSIGHTS, Reply(200, document))

    result = run("insights", ACCOUNT, "--json", "--base-url", scripted.base_url, "--token", TOKEN)

    assert result.exit_code == 0
    assert json.loads(result.stdout) == document


def test_date_is_passed_through_to_the_server(run: Run, scripted: ScriptedServer) -> None:
    scripted.script(INSIGHTS, Reply(200, insights_document(date="2026-11-01")))

    result = run(
        "insights", ACCOUNT, "--date", "2026-11-01", "--json",
        "--base-url", scripted.base_url, "--token", TOKEN,
    )  # fmt: skip

    assert result.exit_code == 0
    assert scripted.seen(INSIGHTS)[0].query["date"] == ["2026-11-01"]


def test_the_base_url_and_token_can_come_from_the_environment(
    run: Run, scripted: ScriptedServer
) -> None:
    scripted.script(DEFINITIONS, Reply(200, definitions_document()))

    result = run(
        "definitions", ACCOUNT,
        env={"PINSIGHTS_BASE_URL": scripted.base_url, "PINTEREST_ACCESS_TOKEN": TOKEN},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert scripted.seen(DEFINITIONS)[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "PINTEREST_TOTAL_AUDIENCE" in result.stdout and "ENGAGEMENT" in result.stdout


def test_definitions_json_prints_the_wire_document(run: Run, scripted: ScriptedServer) -> None:
    scripted.script(DEFINITIONS, Reply(200, definitions_document()))

    result = run(
        "definitions", ACCOUNT, "--json", "--base-url", scripted.base_url, "--token", TOKEN
    )

    assert json.loads(result.stdout) == definitions_document()


def test_an_audience_below_the_privacy_threshold_says_so(
    run: Run, scripted: ScriptedServer
) -> None:
    scripted.script(
        INSIGHTS,
        Reply(
            200,
            {
                "type": "YOUR_TOTAL_AUDIENCE",
                "date": "2026-11-30",
                "size": 100,
                "size_is_upper_bound": True,
                "categories": [],
                "demographics": {
                    "ages": [],
                    "genders": [],
                    "countries": [],
                    "metros": [],
                    "devices": [],
                },
            },
        ),
    )

    out = run("insights", ACCOUNT, "--base-url", scripted.base_url, "--token", TOKEN).stdout

    assert "at most 100" in out and "privacy threshold" in out


def test_without_a_token_the_command_says_where_to_get_one(run: Run) -> None:
    result = run("insights", ACCOUNT, "--base-url", "http://127.0.0.1:9/v5")

    assert result.exit_code == 2
    assert "PINTEREST_ACCESS_TOKEN" in result.stderr and "pinsights token" in result.stderr


def test_an_invalid_argument_is_a_usage_error_and_sends_nothing(
    run: Run, scripted: ScriptedServer
) -> None:
    result = run("insights", "acct-1", "--base-url", scripted.base_url, "--token", TOKEN)

    assert result.exit_code == 2
    assert "ad_account_id" in result.stderr
    assert scripted.requests == []


def test_a_forbidden_account_is_one_line_on_stderr_without_the_token(
    run: Run, scripted: ScriptedServer
) -> None:
    scripted.script(INSIGHTS, error(403, 29, "the token may not read this ad account"))

    result = run("insights", ACCOUNT, "--base-url", scripted.base_url, "--token", TOKEN)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert "forbidden: the token may not read this ad account" in result.stderr
    assert TOKEN not in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_server_names_the_url_and_how_to_change_it(run: Run) -> None:
    base_url = closed_port_url()

    result = run("definitions", ACCOUNT, "--base-url", base_url, "--token", TOKEN)

    assert result.exit_code == 1
    assert f"no answer from {base_url}" in result.stderr and "--base-url" in result.stderr


def test_limit_caps_each_table_and_says_how_many_rows_it_left_out(
    run: Run, scripted: ScriptedServer
) -> None:
    scripted.script(INSIGHTS, Reply(200, insights_document()))

    limited = run(
        "insights", ACCOUNT, "--limit", "1", "--base-url", scripted.base_url, "--token", TOKEN
    )
    everything = run(
        "insights", ACCOUNT, "--limit", "0", "--base-url", scripted.base_url, "--token", TOKEN
    )

    assert "Home decor" in limited.stdout and "Travel" not in limited.stdout
    assert "1 more categories; --limit 0 shows all" in limited.stdout
    assert "1 more ages" in limited.stdout
    assert "Travel" in everything.stdout and "more categories" not in everything.stdout


@pytest.mark.parametrize("command", ["insights", "definitions"])
def test_docs_client_md_documents_every_option_of_the_command(command: str) -> None:
    import typer.main

    from pinsights.cli import app as cli_app

    docs = (Path(__file__).resolve().parents[1] / "docs" / "client.md").read_text(encoding="utf-8")
    click_command = typer.main.get_command(cli_app).commands[command]  # type: ignore[attr-defined]
    options = [o for p in click_command.params for o in p.opts if o.startswith("--")]

    assert options, "the command lost its options"
    missing = [o for o in options if o != "--help" and o not in docs]
    assert missing == [], f"docs/client.md does not mention {missing}"
