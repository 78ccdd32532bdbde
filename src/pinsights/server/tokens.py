"""Bearer tokens: signed (JWT, HS256), expiring, and self-contained.

A token's claims name its client, its scopes and its ad accounts, so verifying one needs the signing
key and nothing else — no database lookup — and any number of server replicas sharing the key can
verify it. The one piece of server state consulted is the in-memory set of revoked client ids
(:class:`pinsights.server.clients.ClientRegistry` keeps it in step with the registry file). The cost
of that design: a token outlives any change to its client other than revocation (new ad accounts
apply to new tokens only), and a token minted with ``pinsights token`` can only be withdrawn by
changing the signing key.

The signing key is ``PINSIGHTS_SECRET`` when set, else a random key generated once into the store
directory with owner-only permissions.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import jwt

from pinsights.server.errors import Unauthenticated

SIGNING_KEY_FILE = "signing.key"
ISSUER = "pinsights"
ALGORITHM = "HS256"
ALL_ACCOUNTS = "*"
READ_SCOPE = "ads:read"
#: Client id of tokens minted directly with ``pinsights token`` (rate-limited as one client).
CLI_CLIENT_ID = "pinsights-cli"
#: Verified tokens remembered per worker, so a busy client does not pay for HMAC + JSON each time.
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its bearer."""

    client_id: str
    scopes: frozenset[str]
    ad_accounts: frozenset[str] | None  # None: every ad account
    expires_at: int

    def may_read(self, ad_account_id: str) -> bool:
        return self.ad_accounts is None or ad_account_id in self.ad_accounts


def load_signing_key(store: Path, secret: str | None = None) -> bytes:
    """The HS256 key: the configured secret, or the store's key file, created if absent.

    Creation uses ``O_EXCL`` so concurrent workers (or a worker and ``pinsights token``) agree on one
    key; the file is written owner-only (0600) before any byte of the key goes into it.
    """
    if secret:
        return secret.encode()
    path = store / SIGNING_KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    store.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key.encode()


def _read_key(path: Path) -> bytes:
    for _ in range(50):  # another process may have just created it and be writing the key
        key = path.read_text().strip()
        if key:
            return key.encode()
        time.sleep(0.01)
    raise RuntimeError(f"empty signing key file {path}")


def parse_ad_accounts(value: str | Iterable[str]) -> list[str]:
    """``'*'`` or a comma-separated list of ad account ids, validated (digits, at most 18)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    accounts = [item.strip() for item in items if item.strip()]
    if accounts == [ALL_ACCOUNTS]:
        return accounts
    if not accounts:
        raise ValueError("no ad account given (use '*' for all)")
    for account in accounts:
        if not (account.isascii() and account.isdigit() and len(account) <= 18):
            raise ValueError(f"invalid ad account id {account!r}: digits only, at most 18")
    return sorted(set(accounts), key=lambda account: (len(account), account))


class TokenService:
    """Issues and verifies tokens with one key."""

    def __init__(
        self,
        key: bytes,
        *,
        is_revoked: Callable[[str], bool] = lambda client_id: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._is_revoked = is_revoked
        self._clock = clock
        self._verified: dict[str, Claims] = {}

    def issue(self, client_id: str, scopes: Iterable[str], ad_accounts: list[str], ttl: int) -> str:
        now = int(self._clock())
        payload = {
            "iss": ISSUER,
            "sub": client_id,
            "scope": " ".join(sorted(set(scopes))),
            "ad_accounts": ALL_ACCOUNTS if ad_accounts == [ALL_ACCOUNTS] else ad_accounts,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """The token's claims, or :class:`Unauthenticated` with the reason."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        if claims.expires_at <= self._clock():
            self._verified.pop(token, None)
            raise Unauthenticated("The access token has expired.")
        if self._is_revoked(claims.client_id):
            raise Unauthenticated("The access token's client has been revoked.")
        return claims

    def _decode(self, token: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("The access token has expired.") from error
        except jwt.InvalidTokenError as error:
            raise Unauthenticated("The access token is malformed or badly signed.") from error
        accounts = payload.get("ad_accounts")
        scope = payload.get("scope", "")
        if not isinstance(scope, str) or not (
            accounts == ALL_ACCOUNTS
            or (isinstance(accounts, list) and all(isinstance(a, str) for a in accounts))
        ):
            raise Unauthenticated("The access token is malformed or badly signed.")
        return Claims(
            client_id=str(payload["sub"]),
            scopes=frozenset(scope.split()),
            ad_accounts=None if accounts == ALL_ACCOUNTS else frozenset(accounts),
            expires_at=int(payload["exp"]),
        )
