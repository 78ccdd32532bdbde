"""The 30-day budget, enforced: a DP release that would take any ad account over it is refused.

Checked twice: before any work (the requested dates against the accounts the ledger knows), and
once the input is read, against the accounts the release would really charge, just before the
ledger is charged. Refusing names the accounts and the first date a release fits again.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from pinsights.engine.dp import accounting
from pinsights.engine.dp.ledger import Ledger, Release
from pinsights.engine.dp.parameters import DpParameters


class BudgetExceededError(Exception):
    """A DP release would exceed an ad account's 30-day budget; nothing was built."""


def account_charges(releases: list[Release]) -> dict[str, list[tuple[dt.date, Fraction]]]:
    """Per ad account, the (date, ρ) of every release that charged it (its parts and P)."""
    charges: dict[str, list[tuple[dt.date, Fraction]]] = {}
    for release in releases:
        for account in release.accounts:
            charges.setdefault(account, []).append(
                (release.date, release.rho_account + release.rho_platform)
            )
    return charges


def check_budget(
    ledger: Ledger, dates: list[dt.date], params: DpParameters, accounts: list[str] | None = None
) -> None:
    """Raise :class:`BudgetExceededError` unless a release on each of ``dates`` (in order) fits
    every account's budget; ``accounts`` None: the accounts the ledger has charged."""
    charges = account_charges(ledger.releases())
    rho = params.rho_release()
    if accounting.epsilon(rho, params.delta) > params.epsilon:
        raise BudgetExceededError(
            f"one DP release costs ε = {accounting.epsilon(rho, params.delta):.2f} at"
            f" δ = {params.delta:g}, more than the budget ε = {params.epsilon:g}"
        )
    charged = sorted(charges) if accounts is None else sorted(accounts)
    for date in sorted(dates):
        over = [
            account
            for account in charged
            if not accounting.fits(
                charges.get(account, []), date, rho, params.epsilon, params.delta
            )
        ]
        if over:
            returns = max(
                accounting.budget_returns(
                    charges.get(account, []), date, rho, params.epsilon, params.delta
                )
                or date
                for account in over
            )
            spent = max(
                accounting.epsilon(
                    accounting.worst_window(charges.get(account, []), date), params.delta
                )
                for account in over
            )
            named = ", ".join(over[:5]) + (f" and {len(over) - 5} more" if len(over) > 5 else "")
            raise BudgetExceededError(
                f"privacy budget: a DP release for {date} would take ad account(s) {named} over"
                f" ε = {params.epsilon:g} at δ = {params.delta:g} in {accounting.WINDOW_DAYS}"
                f" days (ε = {spent:.2f} already spent); budget returns on {returns}; nothing"
                " was built (see `pinsights privacy report`)"
            )
        for account in charged:
            charges.setdefault(account, []).append((date, rho))
