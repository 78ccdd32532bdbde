"""The client registry: who may ask ``POST /v5/oauth/token`` for a token, and for which ad accounts.

It is one JSON file in the store directory (``clients.json``), written owner-only and replaced
atomically, holding each client's argon2 hash of its secret — never the secret itself. The CLI
(``pinsights clients add/list/revoke``) edits it; servers re-read it when its stat changes, so a
revocation reaches a running server on its next request without a restart.

Tokens of registered clients are honoured only while their client is in the file and not revoked:
when the file is missing or unreadable, every such token is refused (fail closed), so deleting or
damaging the file can never bring a revoked client's tokens back.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pinsights.server.storefiles import WatchedFile, locked, now_iso, write_owner_only
from pinsights.server.tokens import parse_ad_accounts

CLIENTS_FILE = "clients.json"
LOCK_FILE = ".clients.lock"

logger = logging.getLogger("pinsights.server")
_hasher = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Verified against when the client id is unknown, so a miss costs as much time as a hit.

    Made on first use, not at import: an argon2 hash is ~0.35 CPU s, which every command that
    imports this module (``clients list``, ``keys``…) would pay for nothing. The server makes it
    at start (:func:`pinsights.server.app.create_app`), so its first unknown login is not slower.
    """
    return _hasher.hash(secrets.token_urlsafe(32))


@dataclass(frozen=True)
class Client:
    """One registered client. ``ad_accounts == ['*']`` grants every ad account."""

    client_id: str
    name: str
    ad_accounts: list[str]
    secret_hash: str
    created_at: str
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ClientRegistry:
    """The registry file of one store, cached in memory until the file changes."""

    def __init__(self, store: Path) -> None:
        self.path = Path(store) / CLIENTS_FILE
        self._watch = WatchedFile(self.path)
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}
        self._active: frozenset[str] = frozenset()
        # client id -> keyed digest of a secret already verified with argon2 (memory only)
        self._verified: dict[str, bytes] = {}
        self._digest_key = secrets.token_bytes(32)

    # --- reading ---------------------------------------------------------------------------------

    def _refresh(self) -> dict[str, Client]:
        """Reload when the file changed; a missing or unreadable file means no client (fail closed)."""
        if self._watch.changed():
            with self._lock:
                try:
                    clients = self._read()
                except (OSError, ValueError, TypeError, KeyError) as error:
                    logger.error(
                        "unreadable client registry %s, no client accepted: %s", self.path, error
                    )
                    clients = {}
                self._clients = clients
                self._active = frozenset(c.client_id for c in clients.values() if not c.revoked)
                self._verified = {}
        return self._clients

    def _read(self) -> dict[str, Client]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {entry["client_id"]: Client(**entry) for entry in data.get("clients", [])}

    def clients(self) -> list[Client]:
        return sorted(self._refresh().values(), key=lambda client: client.created_at)

    def is_active(self, client_id: str) -> bool:
        """Whether the client is registered and not revoked (its tokens may be used)."""
        self._refresh()
        return client_id in self._active

    def recognise(self, client_id: str, secret: str) -> Client | None:
        """The client if this very secret was verified with argon2 before (cheap: no argon2).

        argon2 is deliberately slow, so a secret verified once is remembered as a keyed digest (in
        memory only, forgotten when the file changes). None says nothing about the secret: ask
        :meth:`authenticate`.
        """
        client = self._refresh().get(client_id)
        known = self._verified.get(client_id)
        if client is None or client.revoked or known is None:
            return None
        return client if hmac.compare_digest(known, self._digest(secret)) else None

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        """The client if the secret is its own and it is not revoked, else None (argon2: slow).

        Unknown ids are checked against a dummy hash so that timing does not reveal which client
        ids exist. Call it off the event loop.
        """
        client = self._refresh().get(client_id)
        if client is None or client.revoked:
            _verify(dummy_hash(), secret)
            return None
        if not _verify(client.secret_hash, secret):
            return None
        self._verified[client_id] = self._digest(secret)
        return client

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._digest_key, secret.encode(), hashlib.sha256).digest()

    # --- writing (the CLI) -----------------------------------------------------------------------

    def add(self, name: str, ad_accounts: str | list[str]) -> tuple[Client, str]:
        """Register a client; returns it and its secret, which is not stored and cannot be shown again."""
        accounts = parse_ad_accounts(ad_accounts)
        secret = secrets.token_urlsafe(32)
        with self._editing() as clients:
            client_id = secrets.token_hex(8)
            while client_id in clients:
                client_id = secrets.token_hex(8)
            client = Client(
                client_id=client_id,
                name=name,
                ad_accounts=accounts,
                secret_hash=_hasher.hash(secret),
                created_at=now_iso(),
            )
            clients[client_id] = client
        return client, secret

    def revoke(self, client_id: str) -> Client:
        """Mark a client revoked: it gets no new token and its tokens stop working (KeyError if unknown)."""
        with self._editing() as clients:
            client = clients[client_id]
            if not client.revoked:
                client = replace(client, revoked_at=now_iso(), secret_hash="")
                clients[client_id] = client
        return client

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Client]]:
        """Read-modify-write under an exclusive lock, then replace the file atomically (0600)."""
        with locked(self.path.parent, LOCK_FILE):
            clients = self._read()
            yield clients
            write_owner_only(
                self.path, {"format": 1, "clients": [asdict(c) for c in clients.values()]}
            )


def _verify(secret_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
