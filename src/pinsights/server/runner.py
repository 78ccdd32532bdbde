"""Running the server: uvicorn with the settings passed to every worker through the environment."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from pinsights.server.keys import keyring_source
from pinsights.server.protocol import PROTOCOL
from pinsights.server.ratelimit import MEMORY, create_table
from pinsights.server.settings import ServerSettings

APP_FACTORY = "pinsights.server.app:create_app"
#: prometheus-client reads it when first imported: set (or removed) before any worker imports it.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Where the workers' shared files go: tmpfs, so sharing them never touches a disk.
SHARED_MEMORY = Path("/dev/shm")


class ListenError(Exception):
    """The server's address cannot be listened on (in use, not this host's, no permission)."""


def check_listen(host: str, port: int) -> None:
    """Bind (and release) the address uvicorn is about to bind, as uvicorn does (SO_REUSEADDR).

    uvicorn reports a failed bind only after "Application startup complete", as a multi-line log
    record, exiting 3; this says it first, in one line the CLI prints. (Another process may still
    take the port in between: then uvicorn's own report remains.)
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror as error:
        raise ListenError(
            f"cannot listen on {host}:{port}: unknown host ({error.strerror})"
        ) from None
    except OSError as error:
        reason = {errno.EADDRINUSE: "address already in use (another server? pick another --port)"}
        why = reason.get(error.errno or 0, (error.strerror or str(error)).lower())
        raise ListenError(f"cannot listen on {host}:{port}: {why}") from None


def run(settings: ServerSettings) -> None:
    """Serve until interrupted.

    The key file (when no ``PINSIGHTS_SECRET`` is set) is created and checked here, before any
    worker starts, so that every worker signs and verifies with the same keys and an unsafe key
    stops the server with a clear message (:class:`~pinsights.server.keys.KeyringError`); so are
    the files the workers share (:func:`worker_files`). uvicorn's own access log is off:
    :class:`~pinsights.server.accesslog.AccessLog` writes JSON lines instead.
    """
    settings.store.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = settings.secret.get_secret_value() if settings.secret else None
    keyring_source(settings.store, secret)
    check_listen(settings.host, settings.port)
    with worker_files(settings) as env:
        os.environ.update(settings.to_env())
        os.environ.update(env)
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,
            server_header=False,
            log_level="info",
            http=PROTOCOL,
            ws="none",  # no WebSocket endpoint: every Upgrade is declined (server/protocol.py)
            # X-Forwarded-* are believed only from the proxies named (uvicorn believes loopback)
            proxy_headers=settings.forwarded_allow_ips is not None,
            forwarded_allow_ips=settings.forwarded_allow_ips or "",
        )


@contextlib.contextmanager
def worker_files(settings: ServerSettings) -> Iterator[dict[str, str]]:
    """A private directory (0700) for what the workers of one server share, removed at exit.

    With several workers: the rate-limit table (default storage) and prometheus-client's
    multiprocess directory. Yields the environment variables that point the workers at them.
    One worker needs neither, and ``PROMETHEUS_MULTIPROC_DIR`` is then removed from the
    environment, so that metrics stay in the worker's memory, where they are cheapest.
    """
    env: dict[str, str] = {}
    if settings.workers == 1:
        os.environ.pop(MULTIPROCESS_ENV, None)
        yield env
        return
    base = SHARED_MEMORY if os.access(SHARED_MEMORY, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix=f"pinsights-serve-{os.getpid()}-", dir=base) as private:
        if settings.rate_limit_storage == MEMORY:
            table = Path(private) / "ratelimit.table"
            create_table(table)
            env["PINSIGHTS_RATE_LIMIT_TABLE"] = str(table)
        if settings.metrics:
            metrics_dir = Path(private) / "metrics"
            metrics_dir.mkdir()
            env[MULTIPROCESS_ENV] = str(metrics_dir)
        else:
            os.environ.pop(MULTIPROCESS_ENV, None)
        yield env
