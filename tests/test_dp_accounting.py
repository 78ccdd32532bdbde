"""The DP mode's arithmetic, checked by hand: ρ of a release from its caps and σ, ε from ρ,
30-day windows, and the ledger's file (exact fractions, owner-only, atomic, never reused)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import stat
from fractions import Fraction
from pathlib import Path

import pytest

from pinsights.engine.dp import accounting
from pinsights.engine.dp.ledger import SECRET_ENV, Ledger, LedgerError
from pinsights.engine.dp.parameters import DEFAULT


def test_rho_of_a_release_by_hand() -> None:
    # size σ5, 6 categories σ6, 16 subcategories σ15, 5 demographic values σ13; P: 28 cells σ50.
    assert DEFAULT.caps.cells == 28
    assert DEFAULT.rho_account() == Fraction(1, 50) + Fraction(6, 72) + Fraction(
        16, 450
    ) + Fraction(5, 338)
    assert DEFAULT.rho_platform() == Fraction(28, 5000)
    assert float(DEFAULT.rho_release()) == pytest.approx(0.153682 + 0.0056, abs=1e-6)


def test_epsilon_is_opendps_conversion_and_below_the_classic_bound() -> None:
    rho, delta = 0.5, 1e-10
    classic = rho + 2 * math.sqrt(rho * math.log(1 / delta))  # 7.29
    assert accounting.epsilon(rho, delta) == pytest.approx(6.8393, abs=1e-3)
    assert accounting.epsilon(rho, delta) < classic
    assert accounting.epsilon(0, delta) == 0.0


def test_five_weekly_releases_meet_the_target_and_a_sixth_does_not() -> None:
    rho = DEFAULT.rho_release()
    assert accounting.epsilon(5 * rho, 1e-10) <= 9.0
    assert accounting.epsilon(6 * rho, 1e-10) > 9.0
    # One release alone (a snapshot): ε ≈ 3.7 at δ = 1e-10.
    assert 3.0 < accounting.epsilon(rho, 1e-10) < 4.0


def test_thirty_day_windows() -> None:
    rho = Fraction(1, 10)
    day = dt.date(2026, 11, 30)
    weekly = [(day + dt.timedelta(days=7 * i), rho) for i in range(5)]  # days 0..28
    assert accounting.worst_window(weekly, day) == Fraction(1, 2)
    # A charge 30 days after the first is in no window with it.
    assert accounting.worst_window([(day, rho), (day + dt.timedelta(30), rho)], day) == rho
    assert accounting.worst_window([(day, rho), (day + dt.timedelta(29), rho)], day) == 2 * rho
    budget = accounting.epsilon(Fraction(1, 2), 1e-10)  # exactly five charges of 1/10
    assert not accounting.fits(weekly, day + dt.timedelta(days=29), rho, budget, 1e-10)
    assert accounting.budget_returns(weekly, day + dt.timedelta(29), rho, budget, 1e-10) == (
        day + dt.timedelta(30)
    )


def test_ledger_charges_exact_fractions_owner_only(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    assert ledger.releases() == []
    first = ledger.charge(
        date=dt.date(2026, 11, 30),
        build_id="b1",
        rho_account=Fraction(1, 3),
        rho_platform=Fraction(7, 1250),
        accounts=["2", "10"],
    )
    second = ledger.charge(
        date=dt.date(2026, 11, 30),
        build_id="b2",
        rho_account=Fraction(1, 3),
        rho_platform=Fraction(7, 1250),
        accounts=["2"],
    )
    assert (first.release, second.release) == (1, 2)
    assert ledger.releases() == [first, second]
    data = json.loads(ledger.path.read_text())
    assert data["releases"][0]["rho_account"] == "1/3"
    assert data["releases"][0]["accounts"] == ["10", "2"]
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger.directory.stat().st_mode) == 0o700
    assert not [p for p in ledger.directory.iterdir() if p.name.startswith(".tmp")]


def test_secret_made_once_owner_only_or_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    ledger = Ledger(tmp_path)
    secret = ledger.secret()
    assert len(secret) == 32 and ledger.secret() == secret
    assert stat.S_IMODE((ledger.directory / "secret").stat().st_mode) == 0o600
    monkeypatch.setenv(SECRET_ENV, "a-configured-secret-of-some-length")
    assert ledger.secret() == b"a-configured-secret-of-some-length"
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(LedgerError, match="at least 16 bytes"):
        ledger.secret()


def test_a_damaged_ledger_is_a_clear_error(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    os.makedirs(ledger.directory)
    ledger.path.write_text("{not json")
    with pytest.raises(LedgerError, match="cannot read the privacy ledger"):
        ledger.releases()
