"""No traceback reaches a user (SPEC §5): every `pinsights` command, given bad arguments, answers
with a message and a non-zero exit status that says what kind of failure it was.

The commands are discovered from the CLI itself, so a command added later is tried too: for each
one, an unknown option, a path that is a file, a path below a file, a number out of range, a value
outside its set. Each runs as a real process in a scrubbed environment, in a scratch directory.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer.main

from pinsights.cli import app
from pinsights.cli_errors import ExitStatus, explain
from tests.processes import command, scrubbed_environment

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


def bad_values(param: Any) -> list[str]:
    kind = param.type_descriptor.annotation
    kind = next((arg for arg in typing.get_args(kind) if arg is not type(None)), kind)
    name = param.name
    if kind is Path:
        return ["a-file", "a-file/below"]
    if kind is bool:
        return []
    if kind is int or kind is float:  # Click checks both alike: one value is enough
        return ["not-a-number" if param.min is None else str(param.min - 1)]
    if kind is dt.datetime:
        return ["2026-13-45"]
    if name in BAD_TEXT:
        return [BAD_TEXT[name]]
    return []


def invocations(words: str, cmd: Any) -> list[list[str]]:
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

    cases = [[*line(), "--no-such-option"]]
    for param in params:
        cases += [line(param, value) for value in bad_values(param)]
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
    (tmp_path / "a-file").write_text("not a directory\n")
    (tmp_path / "data").mkdir()
    cases = invocations(words, COMMANDS[words])
    assert len(cases) >= 2, "every command has at least one option to get wrong"
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda args: run(args, tmp_path), cases))
    known = {int(status) for status in ExitStatus} - {0, int(ExitStatus.INTERNAL)}
    for args, result in zip(cases, results, strict=True):
        shown = f"`pinsights {' '.join(args)}` -> {result.returncode}\n{result.stderr}"
        assert "Traceback" not in result.stderr + result.stdout, shown
        assert result.returncode in known, shown
        assert result.stderr.strip(), shown
    assert not (tmp_path / "crash-logs").exists(), "an unexpected error was logged"


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
