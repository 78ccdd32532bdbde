"""The store's record of DP releases: what each ad account (and P) was charged, and when.

    <store>/privacy/            owner-only (0700)
        secret                  the noise key's secret, made once (0600), unless PINSIGHTS_DP_SECRET
        ledger.json             every charged release, oldest first (0600, replaced atomically)

A release is charged *before* its noise is drawn and never uncharged: a build that fails after
charging leaves the charge (the noise of that release number may have been computed; counting it
again is the safe side). Release numbers are never reused, so no two releases share a key.

``ledger.json``::

    {"version": 1, "releases": [{"release": 1, "date": "2026-11-30", "build_id": "…",
      "charged_at": "…Z", "rho_account": "24…/1…", "rho_platform": "7/1250",
      "accounts": ["1001", …]}]}

ρ are exact fractions written as text, so sums over months are exact and the report's figures
can be checked by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

PRIVACY_DIR = "privacy"
LEDGER = "ledger.json"
SECRET = "secret"
SECRET_ENV = "PINSIGHTS_DP_SECRET"
MIN_SECRET_BYTES = 16


class LedgerError(Exception):
    """The ledger or the secret cannot be read or written as the DP mode needs."""


@dataclass(frozen=True)
class Release:
    release: int
    date: dt.date
    build_id: str
    charged_at: str
    rho_account: Fraction
    rho_platform: Fraction
    accounts: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "date": self.date.isoformat(),
            "build_id": self.build_id,
            "charged_at": self.charged_at,
            "rho_account": str(self.rho_account),
            "rho_platform": str(self.rho_platform),
            "accounts": list(self.accounts),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        return cls(
            release=int(data["release"]),
            date=dt.date.fromisoformat(data["date"]),
            build_id=str(data["build_id"]),
            charged_at=str(data["charged_at"]),
            rho_account=Fraction(data["rho_account"]),
            rho_platform=Fraction(data["rho_platform"]),
            accounts=tuple(str(a) for a in data["accounts"]),
        )


def _owner_only_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _write_owner_only(path: Path, data: bytes) -> None:
    """Write-then-rename with mode 0600 from the first byte: never readable by others, never torn."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Ledger:
    """The releases charged in one store. Writers hold the store's build lock."""

    def __init__(self, store_root: Path) -> None:
        self.directory = Path(store_root) / PRIVACY_DIR
        self.path = self.directory / LEDGER

    def releases(self) -> list[Release]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            data = json.loads(raw)
            return [Release.from_json(item) for item in data["releases"]]
        except (ValueError, KeyError, TypeError) as error:
            raise LedgerError(f"cannot read the privacy ledger {self.path}: {error}") from error

    def charge(
        self,
        *,
        date: dt.date,
        build_id: str,
        rho_account: Fraction,
        rho_platform: Fraction,
        accounts: list[str],
    ) -> Release:
        """Record a new release (next number) and return it; written before any noise is drawn."""
        existing = self.releases()
        release = Release(
            release=max((r.release for r in existing), default=0) + 1,
            date=date,
            build_id=build_id,
            charged_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            rho_account=rho_account,
            rho_platform=rho_platform,
            accounts=tuple(sorted(accounts)),
        )
        body = {"version": 1, "releases": [r.to_json() for r in [*existing, release]]}
        _owner_only_dir(self.directory)
        _write_owner_only(self.path, json.dumps(body, indent=1).encode())
        return release

    def secret(self) -> bytes:
        """The noise key's secret: ``PINSIGHTS_DP_SECRET``, else ``privacy/secret``, made once."""
        configured = os.environ.get(SECRET_ENV)
        if configured:
            if len(configured.encode()) < MIN_SECRET_BYTES:
                raise LedgerError(f"{SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes long")
            return configured.encode()
        path = self.directory / SECRET
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            pass
        except ValueError as error:
            raise LedgerError(f"the DP secret {path} is damaged: {error}") from error
        _owner_only_dir(self.directory)
        value = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return bytes.fromhex(path.read_text().strip())
        try:
            os.write(fd, value.hex().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return value
