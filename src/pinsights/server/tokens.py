"""Bearer tokens: signed (JWT, HS256, with a ``kid``), expiring, and self-contained.

A token's claims name its client, its scopes and its ad accounts, so verifying one needs the keyring
(:mod:`pinsights.server.keys`) and nothing else — no database lookup — and any number of server
replicas sharing the keys can verify it. What is consulted on every request, in memory: whether the
key that signed it is still active (``pinsights keys retire`` withdraws every token of a key), and,
for tokens issued to a registered client by ``POST /v5/oauth/token``, whether that client is still
registered and not revoked (:class:`pinsights.server.clients.ClientRegistry`). A token minted
directly with the signing key (``pinsights token``) belongs to no registered client; retiring its
key is how it is withdrawn.

Verification costs a JSON parse and an HMAC, so verified tokens are remembered in a bounded LRU
(:class:`VerifiedTokens`), keyed by the token string: a busy client pays for its token once. The
cache never extends a token's life — expiry, the key's retirement and the client's revocation are
checked on every request, cached or not.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from pinsights.server.errors import Unauthenticated
from pinsights.server.keys import Keyring
from pinsights.server.openapi import contract

ISSUER = "pinsights"
ALGORITHM = "HS256"
ALL_ACCOUNTS = "*"
READ_SCOPE = "ads:read"
#: Client id of tokens minted directly with ``pinsights token`` (rate-limited as one client).
CLI_CLIENT_ID = "pinsights-cli"
#: Verified tokens remembered per worker, so a busy client does not pay for HMAC + JSON each time.
VERIFIED_CACHE_SIZE = 10_000
#: Claim set on tokens issued to a registered client: its registry entry is checked on every use.
GRANT_CLAIM = "grant"
CLIENT_CREDENTIALS = "client_credentials"
#: Clock skew tolerated between the host that issued a token and the one verifying it, seconds:
#: a token whose ``iat`` or ``nbf`` is further in the future is not valid yet.
NOT_BEFORE_LEEWAY = 60
_MALFORMED = "The access token is malformed or badly signed."


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its bearer."""

    client_id: str
    scopes: frozenset[str]
    ad_accounts: frozenset[str] | None  # None: every ad account
    expires_at: int
    kid: str = ""
    #: Issued to a registered client (by the token endpoint), rather than minted with the key.
    registered: bool = False

    def may_read(self, ad_account_id: str) -> bool:
        return self.ad_accounts is None or ad_account_id in self.ad_accounts


#: Every scope of the v5 API (the contract's list): a client may ask for any; only ads:read reads insights.
KNOWN_SCOPES = frozenset(
    contract()["components"]["securitySchemes"]["client_credentials"]["flows"]["clientCredentials"][
        "scopes"
    ]
)
_SCOPE_SEPARATORS = re.compile(r"[\s,]+")


def parse_scopes(requested: str | None) -> list[str]:
    """Space- or comma-separated scopes (default ads:read), each known to the v5 API.

    One rule for the token endpoint and `pinsights token`, so neither mints what the other refuses.
    """
    scopes = sorted({s for s in _SCOPE_SEPARATORS.split(requested or READ_SCOPE) if s})
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if not scopes or unknown:
        raise ValueError(f"unknown scope {' '.join(unknown) or '(empty)'}")
    return scopes


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


class VerifiedTokens:
    """A bounded LRU of verified claims, keyed by the token string.

    Only verified tokens enter it (a flood of forged ones cannot grow it past ``size``), and an
    expired entry is dropped when it is next asked for; the least recently used entry goes when it
    is full. It answers "was this exact string verified?", never "is it still valid?": the caller
    checks expiry, key and client each time.
    """

    def __init__(self, size: int = VERIFIED_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, Claims] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries

    def get(self, token: str) -> Claims | None:
        claims = self._entries.get(token)
        if claims is not None:
            self._entries.move_to_end(token)
        return claims

    def put(self, token: str, claims: Claims) -> None:
        if self.size <= 0:
            return
        self._entries[token] = claims
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, token: str) -> None:
        self._entries.pop(token, None)


class TokenService:
    """Issues tokens with the keyring's signing key and verifies them with any active key.

    ``keys`` is a fixed key or keyring, or a callable returning the current keyring (a
    :meth:`pinsights.server.keys.KeyFile.keyring`, which follows the key file as it changes).
    ``client_allowed(client_id)`` says whether a registered client may still use its tokens.
    """

    def __init__(
        self,
        keys: bytes | Keyring | Callable[[], Keyring],
        *,
        client_allowed: Callable[[str], bool] = lambda client_id: True,
        clock: Callable[[], float] = time.time,
        cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        if isinstance(keys, bytes):
            keys = Keyring.from_secret(keys)
        if isinstance(keys, Keyring):
            fixed = keys
            keys = lambda: fixed  # noqa: E731
        self._keys = keys
        self._client_allowed = client_allowed
        self._clock = clock
        self.cache = VerifiedTokens(cache_size)

    def issue(
        self,
        client_id: str,
        scopes: Iterable[str],
        ad_accounts: list[str],
        ttl: int,
        *,
        registered: bool = False,
    ) -> str:
        """A token signed with the current signing key; ``registered`` for the token endpoint."""
        kid, key = self._keys().signing_key
        now = int(self._clock())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": client_id,
            "scope": " ".join(sorted(set(scopes))),
            "ad_accounts": ALL_ACCOUNTS if ad_accounts == [ALL_ACCOUNTS] else ad_accounts,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if registered:
            payload[GRANT_CLAIM] = CLIENT_CREDENTIALS
        return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid})

    def verify(self, token: str) -> Claims:
        """The token's claims, or :class:`Unauthenticated` with the reason."""
        now = self._clock()
        keyring = self._keys()
        claims = self.cache.get(token)
        if claims is None:
            claims = _decode(token, keyring, now)
            self.cache.put(token, claims)
        if claims.expires_at <= now:
            self.cache.drop(token)
            raise Unauthenticated("The access token has expired.")
        if claims.kid not in keyring.keys:
            self.cache.drop(token)
            raise Unauthenticated("The access token's signing key has been retired.")
        if claims.registered and not self._client_allowed(claims.client_id):
            raise Unauthenticated("The access token's client has been revoked.")
        return claims


def _decode(token: str, keyring: Keyring, now: float) -> Claims:
    """Check signature, algorithm, issuer and times; every failure is 401 with a reason.

    Times are checked here against the service's clock (not PyJWT's), so tests can drive them.
    """
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(_MALFORMED) from error
    key = keyring.keys.get(kid) if isinstance(kid, str) else None
    if key is None or not isinstance(kid, str):
        raise Unauthenticated("The access token's signing key is unknown or retired.")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "require": ["exp", "iat", "sub"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(_MALFORMED) from error
    expires_at, issued_at = payload["exp"], payload["iat"]
    not_before = payload.get("nbf", issued_at)
    accounts = payload.get("ad_accounts")
    scope = payload.get("scope", "")
    if not (
        all(_is_time(value) for value in (expires_at, issued_at, not_before))
        and isinstance(payload["sub"], str)
        and isinstance(scope, str)
        and (
            accounts == ALL_ACCOUNTS
            or (isinstance(accounts, list) and all(isinstance(a, str) for a in accounts))
        )
    ):
        raise Unauthenticated(_MALFORMED)
    if expires_at <= now:
        raise Unauthenticated("The access token has expired.")
    if max(issued_at, not_before) > now + NOT_BEFORE_LEEWAY:
        raise Unauthenticated("The access token is not valid yet.")
    return Claims(
        client_id=payload["sub"],
        scopes=frozenset(scope.split()),
        ad_accounts=None if accounts == ALL_ACCOUNTS else frozenset(accounts),
        expires_at=math.floor(expires_at),
        kid=kid,
        registered=payload.get(GRANT_CLAIM) == CLIENT_CREDENTIALS,
    )


def _is_time(value: object) -> bool:
    """A NumericDate: a finite number, not a bool (JSON true would otherwise pass as 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
