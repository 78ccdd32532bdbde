"""A real ``redis-server`` (Debian's package) on a free loopback port, started and stopped by tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port


class RedisServer:
    """One redis-server process, without persistence; :meth:`start` again after :meth:`kill`.

    The first start takes a port the system reports free and, if another process binds it first
    ("Address already in use"), tries another; a restart keeps the port (the servers under test
    know Redis by its URL) and retries while the port is still held (bounded).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        restart = self.port != 0
        for _ in range(20):
            if not restart:
                self.port = free_port()
            if self._try_start():
                return
            if restart:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start: {self.directory / 'redis.log'}")

    def _try_start(self) -> bool:
        """Start redis-server on ``self.port``; False if the port was taken, so it exited."""
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        log_path = self.directory / "redis.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - the process keeps it
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30  # a bound on a hang, not a guess at the start-up time
        while not self.ping():
            if self.process.poll() is not None:
                with open(log_path, "rb") as written:
                    written.seek(offset)
                    if b"Address already in use" in written.read():
                        self.process = None
                        return False
                raise RuntimeError(f"redis-server did not start: {log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start: {log_path}")
            time.sleep(0.02)
        return True

    def ping(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 1) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def refuses(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return False
        except ConnectionRefusedError:
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """Kill it (SIGKILL: no goodbye to its clients) and wait until its port refuses."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
        deadline = time.monotonic() + 30
        while self.port and not self.refuses():
            if time.monotonic() > deadline:
                raise RuntimeError(f"127.0.0.1:{self.port} still accepts after redis-server died")
            time.sleep(0.02)


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """A started redis-server keeping its files in ``directory``; killed at the end."""
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not installed: .ci/run installs it (apt-get install redis-server)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
