"""No traceback reaches a user (SPEC §5): every `pinsights` command, given bad arguments, answers
with a message and a non-zero exit status that says what kind of failure it was.

The commands are discovered from the CLI itself, so a command added later is tried too: for each
one, an unknown option, a path that is a file, a path below a file, a number out of range, a value
outside its set. Each runs as a real process in a scrubbed environment, in a scratch directory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer.main

from pinsights.cli import app
from pinsights.cli.errors import ExitStatus, explain
from tests.processes import command, pinsights, scrubbed_environment

#: Values that a command must refuse, by option or argument name (strings have no generic bad value).
BAD_TEXT = {
    "ad_accounts": "12,not-an-id",
    "rate_limit": "fast",
    "engine": "presto",
    "dates": "2026-10-02..2026-10-01",
    "base_url": "ftp://example.invalid",
    "insight_type": "EVERYONE",
    "ad_account_id": "12x",
    "date": "2026-02-30",
}
#: Plausible values for what a command requires, so that the one bad value is what it trips on.
REQUIRED = {
    "out_dir": "out",
    "data": "data",
    "ad_account_id": "1",
    "client_id": "no-such-client",
    "name": "someone",
    "ad_accounts": "1",
    "date": "2026-11-20",
}
TIMEOUT = 120


def leaf_commands() -> dict[str, Any]:
    """Every command, by its words (``clients add``)."""
    found: dict[str, Any] = {}

    def walk(cmd: Any, words: list[str]) -> None:
        subcommands = getattr(cmd, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*words, name])
        else:
            found[" ".join(words)] = cmd

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = leaf_commands()


def bad_values(param: Any) -> list[tuple[str, ExitStatus]]:
    """Bad values of a parameter, each with the status docs/cli.md gives its kind of mistake."""
    kind = param.type_descriptor.annotation
    kind = next((arg for arg in typing.get_args(kind) if arg is not type(None)), kind)
    kind = next(iter(typing.get_args(kind)), kind) if typing.get_origin(kind) is list else kind
    name = param.name
    if kind is Path:
        return [("a-file", ExitStatus.UNUSABLE_PATH), ("a-file/below", ExitStatus.UNUSABLE_PATH)]
    if kind is bool:
        return []
    if kind is int or kind is float:  # Click checks both alike: one value is enough
        return [("not-a-number" if param.min is None else str(param.min - 1), ExitStatus.USAGE)]
    if kind in (dt.datetime, dt.date):
        return [("2026-13-45", ExitStatus.USAGE), ("2026-02-30", ExitStatus.USAGE)]
    if name in BAD_TEXT:
        return [(BAD_TEXT[name], ExitStatus.USAGE)]
    return []


def invocations(words: str, cmd: Any) -> list[tuple[list[str], ExitStatus]]:
    """Each with exactly one bad value and every required parameter given."""
    params = [p for p in cmd.params if p.expose_value]

    def line(bad_param: Any = None, bad: str | None = None) -> list[str]:
        args: list[str] = words.split()
        for param in params:
            if param is bad_param:
                value: str | None = bad
            elif param.required:
                value = REQUIRED.get(param.name, "1")
            else:
                continue
            if param.param_type_name == "argument":
                args.append(str(value))
            else:
                args += [param.opts[0], str(value)]
        return args

    cases = [([*line(), "--no-such-option"], ExitStatus.USAGE)]
    for param in params:
        cases += [(line(param, value), status) for value, status in bad_values(param)]
    return cases


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = scrubbed_environment(PINSIGHTS_LOG_DIR=str(cwd / "crash-logs"), COLUMNS="100")
    try:
        return subprocess.run(
            command(*args), capture_output=True, text=True, cwd=cwd, env=env, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"`pinsights {' '.join(args)}` did not stop") from expired


@pytest.mark.parametrize("words", sorted(COMMANDS))
def test_every_command_refuses_bad_arguments_without_a_traceback(
    words: str, tmp_path: Path
) -> None:
    cases = invocations(words, COMMANDS[words])
    assert len(cases) >= 2, "every command has at least one option to get wrong"
    places = [tmp_path / f"case-{n}" for n in range(len(cases))]  # two builds on one store: 4
    for place in places:
        place.mkdir()
        (place / "a-file").write_text("not a directory\n")
        (place / "data").mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda n: run(cases[n][0], places[n]), range(len(cases))))
    for (args, status), result in zip(cases, results, strict=True):
        shown = f"`pinsights {' '.join(args)}` -> {result.returncode}\n{result.stderr}"
        assert "Traceback" not in result.stderr + result.stdout, shown
        assert result.returncode == status, f"expected {int(status)} ({status.name}): {shown}"
        errors = [line for line in result.stderr.splitlines() if line.startswith("pinsights:")]
        assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), shown
        assert "Usage:" not in result.stderr and "─" not in result.stderr, "one line, no panel"
    assert not any(place / "crash-logs" for place in places if (place / "crash-logs").exists()), (
        "an unexpected error was logged"
    )


def test_an_unexpected_error_is_one_line_and_a_log_file_with_the_traceback(
    tmp_path: Path,
) -> None:
    """A bug still reaches the user as one line (and exit 70), with the traceback kept in a file."""
    runner_code = (
        "import sys\n"
        "from pinsights.cli import app\n"
        "@app.command('explode')\n"
        "def explode() -> None:\n"
        "    raise ZeroDivisionError('a bug')\n"
        "app()\n"
    )
    env = scrubbed_environment(PINSIGHTS_LOG_DIR=str(tmp_path / "logs"))
    result = subprocess.run(
        [*command()[:1], "-c", runner_code, "explode"],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert result.returncode == ExitStatus.INTERNAL
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ZeroDivisionError: a bug" in lines[0], result.stderr
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    assert "Traceback" in logs[0].read_text() and "in explode" in logs[0].read_text()
    assert os.stat(logs[0]).st_mode & 0o077 == 0, "the log is the owner's only"


def test_the_kind_of_an_error_is_found_along_its_causes() -> None:
    from pinsights.engine.build import BuildError
    from pinsights.store import StoreLockedError

    try:
        try:
            raise StoreLockedError("another build is running on the store s")
        except StoreLockedError as locked:
            raise BuildError(str(locked)) from locked
    except BuildError as error:
        assert explain(error) == (ExitStatus.STORE_LOCKED, "store locked: " + str(error))
    assert explain(BuildError("missing table 'pins'")) == (
        ExitStatus.FAILED,
        "build failed: missing table 'pins'",
    )
    assert explain(ValueError("?")) is None


def test_docs_list_every_exit_status() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    for status in ExitStatus:
        assert f"\n| {int(status)} |" in docs, f"exit status {int(status)} is not in docs/cli.md"


def test_usage_errors_name_the_option_and_what_is_wrong_on_one_line(tmp_path: Path) -> None:
    """Not a framed panel and a usage block: one line a script's log keeps whole, exit 2."""
    cases = {
        ("build", "--data", "d", "--date", "2026-02-30"): (
            "invalid value for '--date': date must be a calendar date written YYYY-MM-DD, "
            "got '2026-02-30'"
        ),
        ("build", "--data", "d", "--engine", "presto"): "'presto' is not one of duckdb, spark",
        ("build", "--data", "d", "--memory-limit", "lots"): "'lots' is not a size",
        ("token", "--ad-accounts", "1", "--ttl", "0"): "invalid value for '--ttl'",
        ("token", "--ad-accounts", "1", "--scope", "bogus"): "--scope: unknown scope bogus",
        ("build", "--bogus"): "no such option: --bogus",
        ("nosuch",): "no such command 'nosuch'",
    }
    (tmp_path / "d").mkdir()
    for args, message in cases.items():
        result = pinsights(
            *[str(tmp_path / "d") if a == "d" else a for a in args], "--store", str(tmp_path / "s")
        )
        shown = f"pinsights {' '.join(args)}: {result.returncode}\n{result.stderr}"
        assert result.returncode == ExitStatus.USAGE, shown
        assert result.stderr.count("\n") == 1 and message in result.stderr, shown
        assert result.stderr.startswith("pinsights: ") and "Value error" not in result.stderr
        assert result.stdout == "", "no token minted, nothing half done"
    bare = pinsights("keys")  # a bare group still shows its help (Click: on stderr, exit 2)
    assert "Usage:" in bare.stdout + bare.stderr and "rotate" in bare.stdout + bare.stderr


def test_a_path_that_cannot_be_used_exits_3(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x\n")
    for data, says in (
        (tmp_path / "nope", "does not exist"),
        (tmp_path / "file", "is a file, not a directory"),
    ):
        result = pinsights("build", "--data", str(data), "--store", str(tmp_path / "s"))
        assert result.returncode == ExitStatus.UNUSABLE_PATH, result.stderr
        assert result.stderr.startswith("pinsights: ") and result.stderr.count("\n") == 1
        assert result.stderr.endswith(f"the data directory {data} {says}\n"), result.stderr


def test_a_url_on_duckdb_says_to_use_spark(tmp_path: Path) -> None:
    """DuckDB reads local paths: a URL is refused in one line saying what reads it."""
    url = "hdfs://namenode:8020/exports/2026-11-27/"
    result = pinsights("build", "--data", url, "--store", str(tmp_path / "s"))
    assert result.returncode == ExitStatus.UNUSABLE_PATH, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "--data hdfs://namenode:8020/exports/2026-11-27 is a URL" in result.stderr
    assert "use --engine spark" in result.stderr


def test_unknown_ids_are_bad_arguments_and_retiring_twice_says_so(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    (tmp_path / "s").mkdir(mode=0o700)
    assert pinsights("keys", "list", "--store", store).returncode == 0
    for args in (("keys", "retire", "nosuch"), ("clients", "revoke", "nosuch")):
        result = pinsights(*args, "--store", store)
        assert result.returncode == ExitStatus.USAGE, result.stderr
        assert "nosuch" in result.stderr and result.stderr.count("\n") == 1
    old = pinsights("keys", "rotate", "--store", store).stdout.strip()
    assert pinsights("keys", "rotate", "--store", store).returncode == 0
    first = pinsights("keys", "retire", old, "--store", store)
    assert first.returncode == 0 and "its tokens are refused from now on" in first.stderr
    again = pinsights("keys", "retire", old, "--store", store)
    assert again.returncode == 0 and "already retired" in again.stderr, again.stderr
    assert "refused from now on" not in again.stderr


def test_quarantine_of_a_store_never_built_says_no_build_yet(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    (tmp_path / "s").mkdir(mode=0o700)
    assert pinsights("keys", "list", "--store", store).returncode == 0  # creates its keys
    result = pinsights("quarantine", "--store", store)
    assert result.returncode == ExitStatus.UNUSABLE_PATH, result.stderr
    assert "no build yet" in result.stderr and "empty" not in result.stdout + result.stderr


def test_help_fits_80_columns_with_real_metavars_defaults_and_env_vars() -> None:
    """Every option is named in full at 80 columns; a flag shows no type; a value its form."""
    for words in sorted(COMMANDS):
        result = pinsights(*words.split(), "--help", COLUMNS="80")
        assert result.returncode == 0, result.stderr
        for param in COMMANDS[words].params:
            if param.param_type_name != "option":
                continue
            for option in param.opts + param.secondary_opts:
                whole = re.search(rf"^ +(.*[ ,/])?{re.escape(option)}[ ,]", result.stdout, re.M)
                assert whole, f"{option} not shown whole in `{words} --help`:\n{result.stdout}"
        options = "\n".join(line for line in result.stdout.splitlines() if line.startswith("  -"))
        label = re.search(r"<(str|bool|path|int|float|list|datetime)\b", options)
        assert label is None, f"a Typer type label in `{words} --help`:\n{result.stdout}"
        assert max(map(len, result.stdout.splitlines())) <= 80
    build = pinsights("build", "--help", COLUMNS="80").stdout
    assert "--date YYYY-MM-DD" in build and "--dates D1..D2" in build
    assert "--engine [duckdb|spark]" in build and "--memory-limit SIZE" in build
    from pinsights.server.settings import ServerSettings

    serve = " ".join(pinsights("serve", "--help", COLUMNS="80").stdout.split())
    fields = ServerSettings.model_fields
    for name in ("host", "port", "workers", "rate_limit", "rate_limit_storage", "metrics"):
        default = fields[name].default
        shown = ("on" if default else "off") if isinstance(default, bool) else default
        assert f"[default: {shown}; env var: PINSIGHTS_{name.upper()}]" in serve, name
    assert "[default: on; env var: PINSIGHTS_ACCESS_LOG]" in serve and fields["access_log"].default
