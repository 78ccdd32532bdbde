"""How a failure reaches the user of the `pinsights` command: one line and an exit status, never a
traceback.

Every command runs inside :class:`ErrorReportingGroup.invoke`, the one place that catches what
escapes a command, so a command added later is covered without doing anything. An error the program
can explain (a path that cannot be used, a store that is a file or is locked, a build that failed
on its input) becomes one line on stderr and the exit status of its kind (:class:`ExitStatus`,
listed in docs/cli.md). Anything else is a bug: the user gets one line naming the error and the
path of a log file holding the traceback, and exit status 70.

The kind of an error is the most specific known type found along its ``__cause__`` chain, so a
``BuildError`` raised *because* the store was locked still exits with the locked-store status.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import re
import sys
import tempfile
import traceback
import typing
from pathlib import Path
from typing import Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup
from typer.exceptions import TyperException

from pinsights.cli.literal import literal

#: Where crash logs go (else $XDG_STATE_HOME/pinsights, ~/.local/state/pinsights, or the temp dir).
LOG_DIR_ENV = "PINSIGHTS_LOG_DIR"


class ExitStatus(enum.IntEnum):
    """Exit statuses of every `pinsights` command (docs/cli.md)."""

    OK = 0
    FAILED = 1  # the work failed for a reason it states: bad input data, a server's error answer
    USAGE = 2  # a bad command line: unknown option, invalid value (Click's own status)
    UNUSABLE_PATH = (
        3  # a path or store that cannot be used: missing, a file, no permission, damaged
    )
    STORE_LOCKED = 4  # another build holds the store
    NOT_RETAINED = 5  # the build's date would fall outside the retained snapshots: refused
    STORE_DAMAGED = 6  # `store check` found damage it did not repair
    PRIVACY_BUDGET = 7  # a DP build would exceed an ad account's 30-day budget: refused
    INTERNAL = 70  # a bug: the traceback is in a log file (EX_SOFTWARE)


class CommandError(Exception):
    """A failure a command has phrased for its user: printed as is, exit status of its kind."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.FAILED) -> None:
        super().__init__(message)
        self.status = status


def _is(error: BaseException, module: str, name: str) -> bool:
    """Whether ``error`` is an instance of ``module.name``, without importing ``module``.

    An instance of a class exists only once the class's module was imported, so a module not
    loaded yet means "no": a command refused on its arguments (which loads little) is explained
    without importing the engine (~0.6 CPU s in a fresh process, paid by every usage error).
    """
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(kind, type) and isinstance(error, kind)


def _known_kind(error: BaseException) -> tuple[ExitStatus, str] | None:
    """The status and message prefix of a known error type, or None."""
    if isinstance(error, CommandError):
        return error.status, ""
    if _is(error, "pinsights.engine.dp.budget", "BudgetExceededError"):
        return ExitStatus.PRIVACY_BUDGET, "refused"
    if _is(error, "pinsights.store", "StoreLockedError"):
        return ExitStatus.STORE_LOCKED, "store locked"
    if _is(error, "pinsights.store", "NotRetainedError"):
        return ExitStatus.NOT_RETAINED, "refused"
    if _is(error, "pinsights.store", "StoreError"):
        return ExitStatus.UNUSABLE_PATH, "store error"
    if isinstance(error, OSError) and (error.filename is not None or error.strerror):
        return ExitStatus.UNUSABLE_PATH, "error"
    return None


def explain(error: BaseException) -> tuple[ExitStatus, str] | None:
    """(exit status, one-line message) for an error the program can explain, else None."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__
    for candidate in chain:
        known = _known_kind(candidate)
        if known is not None:
            status, prefix = known
            prefix = f"{prefix}: " if prefix else ""
            return status, f"{prefix}{_describe(error)}"  # the outer message says the most
    if _is(error, "pinsights.engine.steps", "BuildError"):
        return ExitStatus.FAILED, f"build failed: {error}"
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename is not None else ""
        also = f" -> {error.filename2}" if error.filename2 is not None else ""
        return f"{error.strerror}{where}{also}"
    return str(error)


def crash_log_dir() -> Path:
    configured = os.environ.get(LOG_DIR_ENV)
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "pinsights"


#: Options whose value is a secret (``--token``, ``--client-secret``, ``--password``…), and
#: environment variables likewise (``PINTEREST_ACCESS_TOKEN``, ``PINSIGHTS_SECRET``…).
_SECRET_OPTION = re.compile(r"--(?:[\w-]*-)?(?:token|secret|password|passwd)", re.IGNORECASE)
_SECRET_VARIABLE = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD", re.IGNORECASE)
#: The password of a URL's user information: ``redis://:pw@host``, ``https://user:pw@host``.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s/@:]*:)[^\s/@]*(@)")
REDACTED = "[redacted]"
#: Shorter values of secret variables are not looked for in the log (they would match anywhere).
_SHORTEST_SECRET = 8


def redacted_command_line(argv: list[str]) -> tuple[str, list[str]]:
    """The command line with secret options' values and URLs' passwords replaced, and the values
    taken out (to be taken out of the rest of the log too)."""
    shown: list[str] = []
    secrets: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            shown.append(REDACTED)
            secrets.append(argument)
            hide_next = False
            continue
        name, equals, value = argument.partition("=")
        if _SECRET_OPTION.fullmatch(name):
            if equals:
                shown.append(f"{name}={REDACTED}")
                secrets.append(value)
            else:
                shown.append(argument)
                hide_next = True
            continue
        shown.append(_URL_PASSWORD.sub(rf"\1{REDACTED}\2", argument))
    return " ".join(shown), secrets


def redact(text: str, secrets: list[str]) -> str:
    """``text`` without the given secrets, the environment's secret values and URLs' passwords."""
    values = [
        value
        for name, value in os.environ.items()
        if _SECRET_VARIABLE.search(name) and len(value) >= _SHORTEST_SECRET
    ]
    for secret in sorted({*secrets, *values}, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}\2", text)


def write_crash_log(error: BaseException) -> Path:
    """Write the traceback to a new owner-only log file and return its path.

    Its first line is the command line, with the values of secret options (``--token``,
    ``--client-secret``…) and passwords in URLs (``redis://:pw@host``) replaced by
    ``[redacted]``; those values, and those of secret environment variables, are taken out of
    the traceback too. The log directory is created owner-only (0700); the default one
    (``~/.local/state/pinsights``) is made so if it was not.
    """
    text = "".join(traceback.format_exception(error))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"crash-{stamp}-{os.getpid()}.log"
    command_line, secrets = redacted_command_line(sys.argv)
    content = f"{command_line}\n\n{redact(text, secrets)}"
    own = crash_log_dir()
    for directory in (own, Path(tempfile.gettempdir())):
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if directory == own and not os.environ.get(LOG_DIR_ENV):
                _owner_only(directory)
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        return path
    raise OSError("no writable directory for the crash log")


def _owner_only(directory: Path) -> None:
    """Make a directory of ours 0700 if it is open to others (made by an older version)."""
    status = directory.stat()
    if status.st_uid == os.getuid() and status.st_mode & 0o077:
        directory.chmod(0o700)


def usage_line(error: ClickException) -> str:
    """A bad command line as one line: the option and what is wrong, then where help is.

    Click prints a usage block and Typer a framed panel; a script's log and a terminal both read
    one line better, and the status (2) already says "bad command line"."""
    message = " ".join(error.format_message().split())
    message = message.replace("Value error, ", "")  # pydantic's prefix on a parser's ValueError
    message = message[:1].lower() + message[1:].rstrip(".")
    context = getattr(error, "ctx", None)
    where = f"; see `{context.command_path} --help`" if context is not None else ""
    return f"{message}{where}"


def _report_usage_error(error: ClickException) -> typer.Exit:
    typer.echo(f"pinsights: {literal(usage_line(error))}", err=True)
    return typer.Exit(error.exit_code)


#: Metavars shown in help for what Typer would label ``<str>``, ``<int range>``…
_METAVARS = {"path": "PATH", "int": "INTEGER", "float": "NUMBER", "str": "TEXT"}


def _tidy_help(command: Any) -> None:
    """Plain metavars (``PATH``, ``INTEGER``, ``CLIENT_ID``) for parameters that name none."""
    for param in getattr(command, "params", []):
        if param.metavar is None and param.param_type_name == "argument":
            param.metavar = param.name.upper()
        elif param.metavar is None and not getattr(param, "is_flag", False):
            label = param.type_descriptor.annotation
            label = next((a for a in typing.get_args(label) if a is not type(None)), label)
            name = "path" if label is Path else getattr(label, "__name__", "")
            if name in _METAVARS:
                param.metavar = _METAVARS[name]
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


class ErrorReportingGroup(TyperGroup):
    """The `pinsights` command group: runs every (sub)command and reports what escapes it.

    Usage errors too — of the group's own options here in ``make_context``, of a subcommand's in
    ``invoke`` — as one line each (``usage_line``); ``--help`` and a bare group still show help.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy_help(self)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError:
            raise
        except ClickException as error:
            raise _report_usage_error(error) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise  # a bare `pinsights keys`: Click shows the group's help
        except ClickException as error:
            raise _report_usage_error(error) from None
        except (TyperException, typer.Exit, typer.Abort):
            raise  # typer.Exit and Ctrl-C: Typer reports them itself
        except Exception as error:
            explained = explain(error)
            if explained is not None:
                status, message = explained
                typer.echo(f"pinsights: {literal(message, lines=True)}", err=True)
                raise typer.Exit(int(status)) from None
            first_line = literal((str(error).strip().splitlines() or [""])[0])
            try:
                where = f"; the traceback is in {write_crash_log(error)}"
            except OSError:
                where = ""
            typer.echo(
                f"pinsights: internal error: {type(error).__name__}: {first_line}{where}"
                " (please report it)",
                err=True,
            )
            raise typer.Exit(int(ExitStatus.INTERNAL)) from None
