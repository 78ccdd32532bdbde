"""Running `pinsights` as a user does, in a real process, with an environment the test controls.

A developer's shell may export ``PINSIGHTS_STORE``, ``PINSIGHTS_SECRET``, ``PINTEREST_ACCESS_TOKEN``
…; a test that inherits them tests the developer's setup, not the product. Every process a test
starts gets :func:`scrubbed_environment` plus what the test passes explicitly.

The build's test hook (``store.PAUSE_ENV``) lets a test stop a real build at an exact step of
publishing: the build announces the step on a socket and waits for a byte, so the test can kill
it there or let it go on — no polling, no sleeps, however fast or slow the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pinsights.store import EVERY_STEP, PAUSE_ENV

#: Environment variables read by pinsights (and its client) that a test must not inherit.
OWN_PREFIXES = ("PINSIGHTS_", "PINTEREST_")
#: Bound on any single wait for a child process; a hang fails the test instead of the suite.
PROCESS_TIMEOUT = 300


def scrubbed_environment(**extra: str) -> dict[str, str]:
    """``os.environ`` without any ``PINSIGHTS_*`` / ``PINTEREST_*`` variable, plus ``extra``;
    the test session's Spark class archive directory is kept (see conftest)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(OWN_PREFIXES) or k == "PINSIGHTS_SPARK_CLASS_ARCHIVE"
    }
    return {**env, **extra}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pinsights.cli", *args]


def pinsights(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``pinsights ARGS`` to completion in a scrubbed environment."""
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        env=scrubbed_environment(**env),
    )


@dataclass
class PausedBuild:
    """A `pinsights build` process stopped at a step of publishing, waiting for the test."""

    process: subprocess.Popen[str]
    control: socket.socket
    #: The step it stopped at first.
    announced_step: str | None = None

    def kill(self) -> None:
        """SIGKILL, where it waits."""
        self.process.kill()
        self.process.wait(timeout=PROCESS_TIMEOUT)

    def next_step(self) -> str | None:
        """Let a build paused at every step (``EVERY_STEP``) go on to its next step and return
        that step's name, or None once the build has ended."""
        self.control.sendall(b"g")  # one byte: one step
        return self.announced()

    def announced(self) -> str | None:
        line = self.control.recv(64)  # b"": the build ended
        return line.decode().removesuffix("\n") if line else None

    def resume(self) -> tuple[int, str, str]:
        """Let the build go on; its exit status, stdout and stderr."""
        self.control.sendall(b"go")
        stdout, stderr = self.process.communicate(timeout=PROCESS_TIMEOUT)
        return self.process.returncode, stdout, stderr


@contextmanager
def paused_build(step: str, *args: str) -> Iterator[PausedBuild]:
    """Start ``pinsights build ARGS`` and return once it has reached publishing ``step`` (any
    first step for ``EVERY_STEP``)."""
    control, child_end = socket.socketpair()
    env = scrubbed_environment(**{PAUSE_ENV: f"{step}:{child_end.fileno()}"})
    process = subprocess.Popen(
        command("build", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        pass_fds=[child_end.fileno()],
    )
    child_end.close()
    control.settimeout(PROCESS_TIMEOUT)
    paused = PausedBuild(process, control)
    try:
        announced = paused.announced_step = paused.announced()  # None: the build ended first
        if announced is None or step not in (announced, EVERY_STEP):
            stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT)
            raise AssertionError(f"build did not pause at {step}:\n{stdout}\n{stderr}")
        yield paused
    finally:
        if process.poll() is None:
            paused.kill()
        control.close()
