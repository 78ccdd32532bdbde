"""The server's configuration, in one typed object read once at start-up.

Every option can come from the command line (``pinsights serve --…``) or the environment
(``PINSIGHTS_…``); the CLI passes its options down through the environment so that every uvicorn
worker process builds exactly the same settings.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pinsights.server.keys import MIN_KEY_LENGTH as MIN_SECRET_LENGTH
from pinsights.server.logins import FAILED_LOGINS, MAX_CONCURRENT_CHECKS
from pinsights.server.protocol import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_REQUEST_HEAD
from pinsights.server.ratelimit import MEMORY, RateLimit, check_storage
from pinsights.server.tokens import VERIFIED_CACHE_SIZE


class ServerSettings(BaseSettings):
    """Options of ``pinsights serve``; see docs/server.md for each one."""

    model_config = SettingsConfigDict(env_prefix="PINSIGHTS_", extra="ignore")

    store: Path = Field(default=Path("pinsights-store"), description="the store directory")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    rate_limit: str = Field(default="100/s", description="per client id, e.g. 100/s or 6000/min")
    rate_limit_storage: str = Field(
        default=MEMORY, description="memory:// (this server's workers) or redis://HOST:PORT/DB"
    )
    #: Set by ``pinsights serve`` for its workers (not an option): the shared bucket table.
    rate_limit_table: Path | None = None
    secret: SecretStr | None = Field(
        default=None, description="token signing key; else a generated key file in the store"
    )
    token_ttl: int = Field(default=3600, ge=1, description="lifetime of issued tokens, seconds")
    document_cache_size: int = Field(
        default=4096, ge=0, description="hot documents kept per worker"
    )
    access_log: bool = True
    metrics: bool = Field(default=True, description="serve Prometheus metrics at /metrics")
    public_url: str | None = Field(
        default=None, description="the server's URL as clients see it, for /v5/openapi.json"
    )
    forwarded_allow_ips: str | None = Field(
        default=None, description="proxies whose X-Forwarded-For/-Proto are believed"
    )
    token_cache_size: int = Field(
        default=VERIFIED_CACHE_SIZE, ge=0, description="verified tokens remembered per worker"
    )
    max_credential_checks: int = Field(
        default=MAX_CONCURRENT_CHECKS, ge=1, description="argon2 checks at once, per worker"
    )
    failed_login_limit: str = Field(
        default=FAILED_LOGINS, description="failed logins per source address and per client id"
    )
    head_timeout: float = Field(
        default=DEFAULT_HEAD_TIMEOUT,
        gt=0,
        description="seconds for a request's head, then its body, to arrive",
    )
    max_request_head: int = Field(
        default=DEFAULT_MAX_REQUEST_HEAD, ge=1024, description="bytes of request line + headers"
    )

    @field_validator("rate_limit", "failed_login_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        RateLimit.parse(value)
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_is_known(cls, value: str) -> str:
        return check_storage(value)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_an_origin(cls, value: str | None) -> str | None:
        if not value:
            return None
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
            raise ValueError(f"invalid public URL {value!r}: expected http(s)://HOST[:PORT][/PATH]")
        return value.rstrip("/")

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_parse(cls, value: str | None) -> str | None:
        if not value:
            return None
        for item in (part.strip() for part in value.split(",")):
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(
                        f"invalid address {item!r} in forwarded-allow-ips: expected IPs or "
                        "networks (10.0.0.0/8), comma-separated, or *"
                    ) from None
        return value

    @field_validator("secret")
    @classmethod
    def _secret_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"PINSIGHTS_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @property
    def limit(self) -> RateLimit:
        return RateLimit.parse(self.rate_limit)

    def to_env(self) -> dict[str, str]:
        """The non-secret options as environment variables, for worker processes to read back.

        The secret is left out on purpose: it is already in the environment when it was given.
        """
        return {
            "PINSIGHTS_STORE": str(self.store),
            "PINSIGHTS_HOST": self.host,
            "PINSIGHTS_PORT": str(self.port),
            "PINSIGHTS_WORKERS": str(self.workers),
            "PINSIGHTS_RATE_LIMIT": self.rate_limit,
            "PINSIGHTS_TOKEN_TTL": str(self.token_ttl),
            "PINSIGHTS_DOCUMENT_CACHE_SIZE": str(self.document_cache_size),
            "PINSIGHTS_ACCESS_LOG": "true" if self.access_log else "false",
            "PINSIGHTS_RATE_LIMIT_STORAGE": self.rate_limit_storage,
            "PINSIGHTS_METRICS": "true" if self.metrics else "false",
            "PINSIGHTS_PUBLIC_URL": self.public_url or "",
            "PINSIGHTS_MAX_REQUEST_HEAD": str(self.max_request_head),
            "PINSIGHTS_HEAD_TIMEOUT": str(self.head_timeout),
            "PINSIGHTS_MAX_CREDENTIAL_CHECKS": str(self.max_credential_checks),
            "PINSIGHTS_TOKEN_CACHE_SIZE": str(self.token_cache_size),
            "PINSIGHTS_FAILED_LOGIN_LIMIT": self.failed_login_limit,
        }


def settings_with(store: Path, options: dict[str, object]) -> ServerSettings:
    """Settings from ``PINSIGHTS_*`` with command-line options on top (None: not given).

    Raises ValueError with a one-line, human-readable message when an option is invalid.
    """
    given = {name: value for name, value in options.items() if value is not None}
    try:
        return ServerSettings(store=store, **given)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc'])) or 'settings'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ValueError(problems) from None
