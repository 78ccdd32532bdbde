"""Signing keys: a keyring of HS256 keys named by ``kid``, so the key can change without an outage.

Every token names the key that signed it in its ``kid`` header. Several keys may be active at once:
the newest signs, the others still verify the tokens they signed until those expire. That makes a
rotation painless — ``pinsights keys rotate`` adds a key and makes it the signing one, and nobody is
cut off — and makes withdrawal possible: ``pinsights keys retire KID`` erases a key, and every token
it signed fails at once (tokens minted with ``pinsights token`` included).

Where the keys come from:

- ``PINSIGHTS_SECRET`` set: that one key (its ``kid`` is derived from it, so every replica given the
  same secret agrees on it). It cannot be rotated from the CLI: the environment is its source.
- otherwise ``STORE/keys.json``: owner-only (0600), replaced atomically under a lock, generated on
  first use. Servers re-read it when its stat changes, so a rotation or a retirement reaches running
  servers on their next request. A ``signing.key`` left by an older version is imported as the first
  key, then removed.

A key file readable by anyone but its owner, or a key shorter than ``MIN_KEY_LENGTH``, is refused
with a message that says how to fix it: such a key may already be known to someone else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pinsights.server.storefiles import WatchedFile, locked, now_iso, write_owner_only

KEYS_FILE = "keys.json"
LOCK_FILE = ".keys.lock"
#: Where versions before the keyring kept their one key; imported into keys.json on first use.
LEGACY_KEY_FILE = "signing.key"
#: Shorter HS256 keys are refused: a short shared secret is the easiest key to guess.
MIN_KEY_LENGTH = 32
_KID_BYTES = 4

logger = logging.getLogger("pinsights.server")


class KeyringError(Exception):
    """A keyring that must not be used (unsafe permissions, short key, unknown kid); says why."""


@dataclass(frozen=True)
class SigningKey:
    """One key of the keyring; a retired key keeps its entry (for ``keys list``) but not its secret."""

    kid: str
    secret: str
    created_at: str
    retired_at: str | None = None
    #: Added with ``keys rotate --stage``: verifies tokens, signs none until the next rotate.
    staged: bool = False

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


@dataclass(frozen=True)
class Keyring:
    """The active keys by kid, and the kid that signs new tokens."""

    keys: Mapping[str, bytes]
    signing_kid: str | None

    @classmethod
    def from_secret(cls, secret: bytes) -> Keyring:
        """A keyring of one configured key (``PINSIGHTS_SECRET``, tests, benchmarks)."""
        kid = kid_of(secret)
        return cls({kid: secret}, kid)

    @property
    def signing_key(self) -> tuple[str, bytes]:
        if self.signing_kid is None:
            raise KeyringError("no active signing key: run `pinsights keys rotate`")
        return self.signing_kid, self.keys[self.signing_kid]


EMPTY = Keyring({}, None)


def kid_of(secret: bytes) -> str:
    """A configured key's kid: derived from it (one-way), so replicas sharing it agree."""
    return "env-" + hashlib.sha256(b"pinsights kid\0" + secret).hexdigest()[:12]


def check_secret(secret: str | bytes, source: str) -> None:
    if len(secret) < MIN_KEY_LENGTH:
        raise KeyringError(
            f"the signing key in {source} is {len(secret)} characters long; at least "
            f"{MIN_KEY_LENGTH} are needed (generate one with: openssl rand -hex 32)"
        )


def check_owner_only(path: Path, st: os.stat_result | None = None) -> None:
    """Refuse a key file that group or others can read or write."""
    st = st or path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyringError(
            f"{path} is accessible to other users (mode {mode:04o}); its keys may be compromised. "
            f"Make it owner-only (chmod 600 {path}) and consider `pinsights keys rotate`"
        )


class KeyFile:
    """``STORE/keys.json``: the store's keyring, read again whenever the file changes."""

    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        self.path = self.store / KEYS_FILE
        self._watch = WatchedFile(self.path)
        self._lock = threading.Lock()
        self._keyring = EMPTY

    # --- reading (servers) -------------------------------------------------------------------

    def keyring(self) -> Keyring:
        """The current keyring; empty (every token refused) when the file is missing or unsafe.

        Failing closed on purpose: a key file made readable to others or replaced by something
        unreadable must not keep a server accepting tokens. The reason is logged.
        """
        if self._watch.changed():
            with self._lock:
                try:
                    self._keyring = _keyring(self.read()) if self.path.exists() else EMPTY
                except (KeyringError, OSError, ValueError) as error:
                    logger.error("refusing every token: %s", error)
                    self._keyring = EMPTY
                if self._keyring.signing_kid is None:
                    logger.error("no active signing key in %s: every token is refused", self.path)
        return self._keyring

    def read(self) -> list[SigningKey]:
        """Every key, oldest first (retired ones too), after checking the file is safe."""
        with open(self.path) as handle:
            check_owner_only(self.path, os.fstat(handle.fileno()))
            data = json.load(handle)
        keys = [SigningKey(**entry) for entry in data.get("keys", [])]
        for key in keys:
            if not key.retired:
                check_secret(key.secret, f"{self.path} (kid {key.kid})")
        return keys

    # --- writing (the CLI, and the server's start-up) ----------------------------------------

    def ensure(self) -> Keyring:
        """The keyring, created with one new key (or the legacy ``signing.key``) if there is none.

        Raises :class:`KeyringError` with a clear message when the keys may not be used.
        """
        if not self.path.exists():
            with self._editing() as keys:
                if not keys:
                    keys.append(self._legacy_key() or _new_key())
            with contextlib.suppress(FileNotFoundError):
                (self.store / LEGACY_KEY_FILE).unlink()
        keyring = _keyring(self.read())
        keyring.signing_key  # noqa: B018 - raises when every key is retired
        return keyring

    def rotate(self, *, stage: bool = False) -> SigningKey:
        """Make a new key the signing one; the others keep verifying their tokens.

        With ``stage`` the new key only verifies, so it can reach every replica before any token
        is signed with it; the next plain rotation promotes it to signing.
        """
        self.ensure()
        with self._editing() as keys:
            staged = next((i for i, key in enumerate(keys) if key.staged and not key.retired), None)
            if staged is not None and stage:
                raise KeyringError(
                    f"{keys[staged].kid} is already staged: `pinsights keys rotate` promotes it"
                )
            if staged is not None:
                key = replace(keys.pop(staged), staged=False)
            else:
                key = replace(_new_key(), staged=stage)
            keys.append(key)
        return key

    def retire(self, kid: str) -> SigningKey:
        """Erase a key: every token it signed fails from now on. The signing key cannot be retired
        (rotate first), so there is always a key to sign with."""
        with self._editing() as keys:
            index = next((i for i, key in enumerate(keys) if key.kid == kid), None)
            if index is None:
                raise KeyringError(f"no key {kid!r} in {self.path} (see `pinsights keys list`)")
            key = keys[index]
            if key.retired:
                return key
            if key.kid == _keyring(keys).signing_kid:
                raise KeyringError(
                    f"{kid} is the signing key: run `pinsights keys rotate` first, then retire it"
                )
            key = replace(key, secret="", retired_at=now_iso())
            keys[index] = key
        return key

    def _legacy_key(self) -> SigningKey | None:
        path = self.store / LEGACY_KEY_FILE
        try:
            with open(path) as handle:
                check_owner_only(path, os.fstat(handle.fileno()))
                secret = handle.read().strip()
        except FileNotFoundError:
            return None
        check_secret(secret, str(path))
        return SigningKey(kid=_new_kid(), secret=secret, created_at=now_iso())

    @contextlib.contextmanager
    def _editing(self) -> Iterator[list[SigningKey]]:
        """Read-modify-write under an exclusive lock, then replace the file atomically (0600)."""
        with locked(self.store, LOCK_FILE):
            keys = self.read() if self.path.exists() else []
            yield keys
            write_owner_only(self.path, {"format": 1, "keys": [asdict(key) for key in keys]})


def _keyring(keys: list[SigningKey]) -> Keyring:
    """Every active key verifies; the newest one not staged signs."""
    active = [key for key in keys if not key.retired]
    signing = [key.kid for key in active if not key.staged]
    return Keyring(
        {key.kid: key.secret.encode() for key in active}, signing[-1] if signing else None
    )


def _new_key() -> SigningKey:
    return SigningKey(kid=_new_kid(), secret=secrets.token_hex(32), created_at=now_iso())


def _new_kid() -> str:
    """Readable in ``keys list`` (its creation day) and unique (random)."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%d}-{secrets.token_hex(_KID_BYTES)}"


def keyring_source(store: Path, secret: str | None) -> Callable[[], Keyring]:
    """Where a process gets its current keyring: the configured secret, else the store's key file
    (created if absent). Raises :class:`KeyringError` when the keys may not be used."""
    if secret:
        check_secret(secret, "PINSIGHTS_SECRET")
        keyring = Keyring.from_secret(secret.encode())
        return lambda: keyring
    keys = KeyFile(store)
    keys.ensure()
    return keys.keyring
