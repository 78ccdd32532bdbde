"""Text from a server or from input data reaches the terminal as itself (issue 18, findings 4-5).

A security review found that a metro, interest or category name, or a quarantined line, containing
``[/]`` crashed ``pinsights insights`` and ``pinsights quarantine`` (Rich's ``MarkupError``, exit
70), that ``[link=https://…]`` became a clickable link, and that escape sequences in the data (a
window title, a screen clear) reached the terminal; and that the crash log kept ``--token``'s value.
The commands run as a user runs them: real processes, a real loopback server answering the names.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_client_fakes import (
    ACCOUNT,
    TOKEN,
    Reply,
    ScriptedServer,
    definitions_document,
    error,
    insights_document,
    scripted,
)
from typer.testing import CliRunner

from pinsights.cli import app
from pinsights.synthetic.generate import generate
from tests.processes import pinsights as run_pinsights

__all__ = ["scripted"]

INSIGHTS = f"/ad_accounts/{ACCOUNT}/audience_insights"
DEFINITIONS = f"/ad_accounts/{ACCOUNT}/insights/audiences"
#: Rich markup that breaks a renderer (``[/]`` closes no tag) or makes a link, then a window
#: title (OSC 0), a hyperlink (OSC 8), a screen clear (CSI 2J), the same in C1 form, DEL, and a
#: right-to-left override and isolate (the line after them would read backwards).
MARKUP = "[/] [link=https://evil.example]click[/link] [bold red]loud"
ESCAPES = "\x1b]0;pwned\x07 \x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\ \x1b[2J \x9b2J \x7f \u202e12.5% \u2067x"
HOSTILE = f"{MARKUP} {ESCAPES}"


CRASH_LOGS = Path(tempfile.gettempdir()) / f"pinsights-hostile-text-crashes-{os.getpid()}"


def pinsights(*args: str) -> Any:
    """The command in a terminal wide enough that no name is wrapped across lines (a crash log,
    if the command crashed, goes to a directory of the test's, not the user's)."""
    return run_pinsights(*args, COLUMNS="2000", PINSIGHTS_LOG_DIR=str(CRASH_LOGS))


#: Every C0 control but newline and tab (layout), DEL, every C1 control, the bidirectional
#: embeddings, overrides and isolates.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_insights() -> dict[str, Any]:
    document = insights_document()
    category = document["categories"][0]
    category["name"] = f"Home {HOSTILE}"
    category["subcategories"][0]["name"] = f"Living {HOSTILE}"
    document["categories"][1]["name"] = MARKUP  # a line of markup alone
    document["demographics"]["metros"] = [
        {"key": HOSTILE, "name": f"Metro {HOSTILE}", "ratio": 0.2}
    ]
    document["demographics"]["countries"][0]["name"] = ESCAPES
    return document


def assert_literal(output: str) -> None:
    """Every hostile string shown as itself: markup as text, controls as escapes, none raw."""
    assert not CONTROL.search(output), repr(CONTROL.search(output))
    assert "[/] [link=https://evil.example]click[/link] [bold red]loud" in output
    assert "\\x1b]0;pwned\\x07" in output and "\\x9b2J" in output and "\\x7f" in output
    assert "\\u202e12.5%" in output and "\\u2067x" in output


def test_hostile_names_in_insights_are_printed_literally(scripted: ScriptedServer) -> None:
    scripted.script(INSIGHTS, Reply(200, hostile_insights()))
    shown = pinsights("insights", ACCOUNT, "--base-url", scripted.base_url, "--token", TOKEN)
    assert shown.returncode == 0, shown.stderr
    assert_literal(shown.stdout)
    assert "Home [/]" in shown.stdout and "Metro [/]" in shown.stdout


def test_hostile_definitions_are_printed_literally(scripted: ScriptedServer) -> None:
    document = definitions_document()
    document["items"][0]["date"] = HOSTILE
    document["items"][1]["scope"] = MARKUP
    scripted.script(DEFINITIONS, Reply(200, document))
    shown = pinsights("definitions", ACCOUNT, "--base-url", scripted.base_url, "--token", TOKEN)
    assert shown.returncode == 0, shown.stderr
    assert_literal(shown.stdout)


def hostile_accounts() -> dict[str, Any]:
    account = {"id": "1001", "name": HOSTILE, "owner": {"username": "x"}, "country": MARKUP}
    return {"items": [account | {"currency": ESCAPES}], "bookmark": None}


def test_hostile_account_names_are_printed_literally(scripted: ScriptedServer) -> None:
    scripted.script("/ad_accounts", Reply(200, hostile_accounts()))
    shown = pinsights("accounts", "--base-url", scripted.base_url, "--token", TOKEN)
    assert shown.returncode == 0, shown.stderr
    assert_literal(shown.stdout)


@pytest.mark.parametrize(
    "command, path", [("insights", INSIGHTS), ("definitions", DEFINITIONS), ("accounts", "")]
)
def test_json_output_escapes_every_control_character_and_keeps_the_data(
    scripted: ScriptedServer, command: str, path: str
) -> None:
    """``--json`` prints the same on a terminal and in a pipe: valid JSON whose strings escape
    every control character (``\\u001b``, DEL and C1 included), so nothing raw reaches a terminal
    and a program reading it gets exactly what the server sent."""
    if command == "accounts":
        document = hostile_accounts()
        scripted.script("/ad_accounts", Reply(200, document))
        shown = pinsights(command, "--json", "--base-url", scripted.base_url, "--token", TOKEN)
        expected: Any = document["items"]
    else:
        document = hostile_insights() if command == "insights" else definitions_document(HOSTILE)
        scripted.script(path, Reply(200, document))
        shown = pinsights(
            command, ACCOUNT, "--json", "--base-url", scripted.base_url, "--token", TOKEN
        )
        expected = document
    assert shown.returncode == 0, shown.stderr
    assert not CONTROL.search(shown.stdout)
    assert json.loads(shown.stdout) == expected


def test_a_hostile_error_message_from_the_server_is_one_literal_line(
    scripted: ScriptedServer,
) -> None:
    scripted.script(INSIGHTS, error(403, 29, f"no {HOSTILE}"))
    shown = pinsights("insights", ACCOUNT, "--base-url", scripted.base_url, "--token", TOKEN)
    assert shown.returncode == 1
    assert not CONTROL.search(shown.stderr)
    assert "\\x1b]0;pwned\\x07" in shown.stderr and "[/]" in shown.stderr


# --- a quarantined line ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store built from a small platform whose users come with two hostile lines: a row with a
    bad age bucket made of markup and a line too broken to read (raw escapes), in a file whose
    name is markup too."""
    base = tmp_path_factory.mktemp("hostile")
    data = base / "data"
    generate(data, users=300, accounts=2, days=3, end_date=dt.date(2026, 11, 20), seed=3)
    users = pq.read_table(data / "users.parquet")
    (data / "users").mkdir()
    (data / "users.parquet").rename(data / "users" / "part-0.parquet")
    bad_value = {"user_id": 99_999_999, "age_bucket": MARKUP, "gender": "female", "country": "US"}
    lines = [json.dumps(bad_value), '{"user_id": 99999998, "age_bucket": "' + HOSTILE + '"']
    hostile_file = data / "users" / "part-[bold]1.jsonl"
    hostile_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert users.num_rows == 300
    store = base / "store"
    built = pinsights("build", "--data", str(data), "--store", str(store), "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["tables"]["users"]["quarantined"] == {
        "bad_value": 1,
        "malformed": 1,
    }
    return store


def test_a_hostile_quarantined_line_is_printed_literally(hostile_store: Path) -> None:
    shown = pinsights("quarantine", "--store", str(hostile_store))
    assert shown.returncode == 0, shown.stderr
    assert_literal(shown.stderr)
    assert "part-[bold]1.jsonl" in shown.stderr


def test_quarantine_json_escapes_every_control_character(hostile_store: Path) -> None:
    shown = pinsights("quarantine", "--store", str(hostile_store), "--json")
    assert shown.returncode == 0, shown.stderr
    assert not CONTROL.search(shown.stdout)
    texts = [row["text"] for row in json.loads(shown.stdout)["rows"]]
    assert any(HOSTILE in text for text in texts)  # the line exactly as it was in the file


# --- the crash log ----------------------------------------------------------------------------------


def test_the_crash_log_keeps_no_secret_and_its_directory_is_owner_only(
    tmp_path: Path, scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that fails unexpectedly (here: the table printer, made to raise) writes its
    command line to the crash log with ``--token``'s value and a URL's password redacted, and
    leaves them out of the traceback too; the log's directory is 0700 even if it was not."""
    scripted.script(INSIGHTS, Reply(200, insights_document()))
    secret = "s3cr3t-token-" + "x" * 24
    password = "hunter2-password"
    state = tmp_path / "state"
    (state / "pinsights").mkdir(parents=True, mode=0o755)
    os.chmod(state / "pinsights", 0o755)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"the printer broke near {secret} and redis://:{password}@cache:6379")

    monkeypatch.setattr("pinsights.cli.query_screens.print_insights", crash)
    argv = ["pinsights", "insights", ACCOUNT, "--base-url", scripted.base_url, "--token", secret]
    argv += [f"--client-secret={password}", f"redis://:{password}@cache:6379/0"]
    monkeypatch.setattr(sys, "argv", argv)
    env = {"XDG_STATE_HOME": str(state), "PINSIGHTS_LOG_DIR": ""}
    args = ["insights", ACCOUNT, "--base-url", scripted.base_url, "--token", secret]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 70, result.output
    logs = list((state / "pinsights").glob("crash-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "RuntimeError" in text and "the printer broke" in text
    assert secret not in text and password not in text
    assert "--token [redacted]" in text and "--client-secret=[redacted]" in text
    assert "redis://:[redacted]@cache:6379" in text
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "pinsights").stat().st_mode) == 0o700
