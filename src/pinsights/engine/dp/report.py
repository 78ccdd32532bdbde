"""``pinsights privacy report``: what the ledger's releases cost, in ε at a stated δ.

- **per snapshot**: each release alone (one DP snapshot): an ad account pays its own parts and P
  (ρ_account + ρ_platform); someone who only reads P pays ρ_platform;
- **per 30 days**: for every ad account and for P, the largest total over any 30-day window of
  release dates (zCDP adds up), converted once — the guarantee the budget enforces;
- **when budget returns**: the first date from which one more release with today's parameters
  fits every account's budget.

Every figure is computed from the exact fractions in the ledger (:mod:`.ledger`), so it can be
checked by hand: ε = OpenDP's conversion of Σρ at δ.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path
from typing import Any

from pinsights.engine.dp import accounting
from pinsights.engine.dp.budget import account_charges
from pinsights.engine.dp.ledger import Ledger
from pinsights.engine.dp.parameters import DpParameters


def _worst(charges: list[tuple[dt.date, Fraction]]) -> Fraction:
    """The largest total ρ within any 30-day window (windows that start on a charge suffice)."""
    best = Fraction(0)
    for start, _ in charges:
        end = start + dt.timedelta(days=accounting.WINDOW_DAYS - 1)
        best = max(best, sum((rho for day, rho in charges if start <= day <= end), Fraction(0)))
    return best


def privacy_report(store_root: Path, params: DpParameters) -> dict[str, Any]:
    """The report as data (``--json`` prints it as is)."""
    releases = Ledger(store_root).releases()
    delta = params.delta

    def eps(rho: Fraction) -> float:
        return round(accounting.epsilon(rho, delta), 4)

    per_account = account_charges(releases)
    platform = [(r.date, r.rho_platform) for r in releases]
    accounts = []
    for account in sorted(per_account, key=lambda a: (len(a), a)):
        charges = per_account[account]
        worst = _worst(charges)
        accounts.append(
            {
                "ad_account_id": account,
                "releases": len(charges),
                "rho_30_days": str(worst),
                "epsilon_30_days": eps(worst),
            }
        )
    next_release = params.rho_release()
    latest = max((r.date for r in releases), default=None)
    returns = None
    if latest is not None:
        day = max(
            (
                accounting.budget_returns(charges, latest, next_release, params.epsilon, delta)
                or latest
                for charges in per_account.values()
            ),
            default=latest,
        )
        returns = day.isoformat()
    worst_platform = _worst(platform)
    return {
        "delta": delta,
        "budget": {"epsilon": params.epsilon, "delta": delta, "days": accounting.WINDOW_DAYS},
        "per_release": {
            "rho_account": str(next_release),
            "epsilon_account": eps(next_release),
            "rho_platform": str(params.rho_platform()),
            "epsilon_platform": eps(params.rho_platform()),
        },
        "snapshots": [
            {
                "release": r.release,
                "date": r.date.isoformat(),
                "build_id": r.build_id,
                "accounts": len(r.accounts),
                "epsilon_account": eps(r.rho_account + r.rho_platform),
                "epsilon_platform": eps(r.rho_platform),
            }
            for r in releases
        ],
        "accounts": accounts,
        "platform": {
            "releases": len(platform),
            "rho_30_days": str(worst_platform),
            "epsilon_30_days": eps(worst_platform),
        },
        "next_release_fits_from": returns,
    }


def render(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    delta = report["delta"]
    budget = report["budget"]
    lines = [
        f"privacy: ε at δ = {delta:g}; budget ε ≤ {budget['epsilon']:g} per ad account per"
        f" {budget['days']} days",
        f"one release costs an ad account ε = {report['per_release']['epsilon_account']}"
        f" (P alone: ε = {report['per_release']['epsilon_platform']})",
        "",
        "per snapshot (release)",
    ]
    if not report["snapshots"]:
        lines.append("  no DP release yet")
    for snap in report["snapshots"]:
        lines.append(
            f"  #{snap['release']:<4} {snap['date']}  {snap['accounts']:>6} accounts"
            f"  ε per account {snap['epsilon_account']:<8} ε for P {snap['epsilon_platform']}"
        )
    lines += ["", f"per {budget['days']} days (worst window)"]
    platform = report["platform"]
    lines.append(
        f"  P (platform audience): {platform['releases']} releases, worst 30 days"
        f" ε = {platform['epsilon_30_days']}"
    )
    shown = report["accounts"][:20]
    for account in shown:
        lines.append(
            f"  account {account['ad_account_id']}: {account['releases']} releases,"
            f" worst 30 days ε = {account['epsilon_30_days']}"
        )
    if len(report["accounts"]) > len(shown):
        top = max(a["epsilon_30_days"] for a in report["accounts"])
        lines.append(f"  … {len(report['accounts']) - len(shown)} more accounts (largest ε {top})")
    if report["next_release_fits_from"]:
        lines.append(
            f"\nthe next release fits every account's budget from {report['next_release_fits_from']}"
        )
    return "\n".join(lines)
