"""Attacks as tests: an empirical privacy audit of the DP release layer.

A strong advertiser knows everyone in its audience except a target, knows the algorithm, plants
a pin only the target would meet, reads T(a) and E(a), and compares releases (day D against D+1,
a rebuild after a change). Over many store secrets, on neighbouring data (target in or out), it
guesses "in" when the released counts of the target's 28 cells exceed what it knows by more than
half of 28. From its true and false positive rates, the Clopper-Pearson bounds (95 %) give a
lower bound on the ε it demonstrates: it must stay below the accounted ε of what it read. The very
same attack on exact counts wins every time, which is what makes these tests able to fail.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pinsights.engine.documents import Counts
from pinsights.engine.dp import accounting
from pinsights.engine.dp.ledger import Ledger
from pinsights.engine.dp.parameters import DEFAULT
from pinsights.engine.dp.release import Domain, PartCounts, noisy_counts
from pinsights.engine.dp.seeding import release_key
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.semantics import YOUR_ENGAGED_AUDIENCE, YOUR_TOTAL_AUDIENCE

RULES = PrivacyRules()
DELTA = 1e-10
SECRETS = 20
ACCOUNTS = [str(1000 + i) for i in range(100)]  # half with the target in, half out, per secret
CATEGORIES = [f"c{i}" for i in range(8)]
SUBCATEGORIES = {f"s{c}{j}": f"c{c}" for c in range(8) for j in range(3)}
DOMAIN = Domain(
    CATEGORIES,
    SUBCATEGORIES,
    {
        "ages": ["18-24", "25-34", "unknown"],
        "genders": ["female", "male", "unspecified"],
        "countries": ["de", "us", "unknown"],
        "metros": ["501", "unknown"],
        "devices": ["iphone", "web", "unknown"],
    },
)
#: The target's bounded cells: 6 categories, 16 subcategories under them, 5 values, the size.
TARGET_INTERESTS = CATEGORIES[:6] + [s for s in sorted(SUBCATEGORIES) if int(s[1]) < 6][:16]
TARGET_VALUES = ["ages:25-34", "genders:female", "countries:us", "metros:501", "devices:iphone"]
TARGET_COLUMNS = [DOMAIN.column[f"interest:{i}"] for i in TARGET_INTERESTS] + [
    DOMAIN.column[v] for v in TARGET_VALUES
]
assert len(TARGET_COLUMNS) + 1 == DEFAULT.caps.cells


def _baseline() -> PartCounts:
    """Everyone but the target: large audiences, so no threshold hides a cell."""
    parts = PartCounts.zeros(ACCOUNTS, DOMAIN)
    for row, (_, part) in enumerate(parts.rows):
        size = 500_000 if part == "P" else 3_000
        parts.sizes[row] = size
        parts.cells[row, :] = size // 4
        for c, kind in enumerate(DOMAIN.kinds):
            if kind == "subcategory":
                parts.cells[row, c] = size // 10
    return parts


def _with_target(parts: PartCounts, accounts: set[str], part: str) -> PartCounts:
    """The target added to ``part`` (E: engaged with the planted pin; R: only saw it) of these
    accounts, and to P."""
    changed = PartCounts(parts.rows, parts.sizes.copy(), parts.cells.copy())
    for row, (account, name) in enumerate(parts.rows):
        if name == "P" or (account in accounts and name == part):
            changed.sizes[row] += 1
            changed.cells[row, TARGET_COLUMNS] += 1
    return changed


def _exact(parts: PartCounts) -> Counts:
    """What exact mode releases from the same counts (every cell here is above the thresholds)."""
    counts = Counts(sizes={}, interests={}, demographics={})
    row_of = {row: i for i, row in enumerate(parts.rows)}
    for account in ACCOUNTS:
        e, r = row_of[(account, "E")], row_of[(account, "R")]
        for key, size, cells in (
            (
                (account, YOUR_TOTAL_AUDIENCE),
                parts.sizes[e] + parts.sizes[r],
                parts.cells[e] + parts.cells[r],
            ),
            ((account, YOUR_ENGAGED_AUDIENCE), parts.sizes[e], parts.cells[e]),
        ):
            counts.sizes[key] = int(size)
            counts.interests[key] = {
                name[9:]: int(cells[c])
                for c, name in enumerate(DOMAIN.names)
                if name.startswith("interest:")
            }
            per: dict[str, list[tuple[str, int]]] = {}
            for c, name in enumerate(DOMAIN.names):
                if not name.startswith("interest:"):
                    dimension, value = name.split(":", 1)
                    per.setdefault(dimension, []).append((value, int(cells[c])))
            counts.demographics[key] = per
    return counts


def _observed(counts: Counts, account: str, insight_type: str) -> np.ndarray:
    """The target's 28 cells as the advertiser reads them (0 where a cell is not shown)."""
    key = (account, insight_type)
    interests = counts.interests.get(key, {})
    values = {
        f"{d}:{v}": n for d, pairs in counts.demographics.get(key, {}).items() for v, n in pairs
    }
    return np.array(
        [counts.sizes.get(key, 0)]
        + [interests.get(i, 0) for i in TARGET_INTERESTS]
        + [values.get(v, 0) for v in TARGET_VALUES],
        dtype=np.int64,
    )


Release = Callable[[PartCounts, bytes], Counts]


def _dp(parts: PartCounts, key: bytes) -> Counts:
    return noisy_counts(parts, DOMAIN, DEFAULT, RULES, key, ACCOUNTS)


def _exact_release(parts: PartCounts, key: bytes) -> Counts:
    return _exact(parts)


def _scores(attack: str, release: Release, tmp_path: Path) -> tuple[list[float], list[float]]:
    """The attacker's statistic over every (secret, account): with the target in, and out."""
    inside, outside = [], []
    base = _baseline()
    known_engaged = np.concatenate(([base.sizes[1]], base.cells[1, TARGET_COLUMNS]))
    known_rest = np.concatenate(([base.sizes[2]], base.cells[2, TARGET_COLUMNS]))
    day = dt.date(2026, 11, 30)
    target_in = set(ACCOUNTS[::2])
    for number in range(SECRETS):
        secret = f"audit-secret-{attack}-{number:04d}".encode()
        if attack == "planted pin":  # one release; the target engaged with the pin (E)
            counts = release(_with_target(base, target_in, "E"), release_key(secret, "d", 1))
            stat = {
                a: _observed(counts, a, YOUR_ENGAGED_AUDIENCE) - known_engaged for a in ACCOUNTS
            }
        elif attack == "T - E":  # one release; the target only saw the pin (R = T - E)
            counts = release(_with_target(base, target_in, "R"), release_key(secret, "d", 1))
            stat = {
                a: _observed(counts, a, YOUR_TOTAL_AUDIENCE)
                - _observed(counts, a, YOUR_ENGAGED_AUDIENCE)
                - known_rest
                for a in ACCOUNTS
            }
        else:  # two releases, the target joins between them: day D vs D+1, or a rebuild
            ledger = Ledger(tmp_path / f"{attack}-{number}")
            dates = (day, day + dt.timedelta(1)) if attack == "D vs D+1" else (day, day)
            keys = []
            for date in dates:
                charged = ledger.charge(
                    date=date,
                    build_id="audit",
                    rho_account=DEFAULT.rho_account(),
                    rho_platform=DEFAULT.rho_platform(),
                    accounts=ACCOUNTS,
                )
                keys.append(release_key(secret, date.isoformat(), charged.release))
            before = release(base, keys[0])
            after = release(_with_target(base, target_in, "E"), keys[1])
            stat = {
                a: _observed(after, a, YOUR_ENGAGED_AUDIENCE)
                - _observed(before, a, YOUR_ENGAGED_AUDIENCE)
                for a in ACCOUNTS
            }
        for account, difference in stat.items():
            (inside if account in target_in else outside).append(float(difference.sum()))
    return inside, outside


def _binomial_cdf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0 if k < n else 1.0
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
        for i in range(k + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided (1 - alpha) interval of a binomial proportion, by bisection."""

    def solve(target: Callable[[float], float]) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if target(mid) > 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(lambda p: alpha / 2 - (1 - _binomial_cdf(k - 1, n, p)))
    upper = 1.0 if k == n else solve(lambda p: _binomial_cdf(k, n, p) - alpha / 2)
    return lower, upper


def epsilon_lower_bound(inside: list[float], outside: list[float], threshold: float) -> float:
    """ε any mechanism must have for this test to separate in from out this well (both ways)."""
    true_positive = sum(score > threshold for score in inside)
    false_positive = sum(score > threshold for score in outside)
    tpr_low, _ = clopper_pearson(true_positive, len(inside))
    _, fpr_high = clopper_pearson(false_positive, len(outside))
    tnr_low, _ = clopper_pearson(len(outside) - false_positive, len(outside))
    _, fnr_high = clopper_pearson(len(inside) - true_positive, len(inside))
    bounds = [0.0]
    for good, bad in ((tpr_low, fpr_high), (tnr_low, fnr_high)):
        if good - DELTA > 0 and bad > 0:
            bounds.append(math.log((good - DELTA) / bad))
    return max(bounds)


def test_clopper_pearson_against_known_values() -> None:
    low, high = clopper_pearson(0, 1000)
    assert low == 0.0 and high == pytest.approx(0.003682, rel=1e-3)
    low, high = clopper_pearson(50, 100)
    assert low == pytest.approx(0.3983, abs=1e-3) and high == pytest.approx(0.6017, abs=1e-3)


@pytest.mark.parametrize(
    ("attack", "releases_read"),
    [("planted pin", 1), ("T - E", 1), ("D vs D+1", 2), ("rebuild", 2)],
)
def test_attack_stays_below_the_accounted_epsilon_and_wins_on_exact_counts(
    attack: str, releases_read: int, tmp_path: Path
) -> None:
    accounted = accounting.epsilon(releases_read * DEFAULT.rho_release(), DELTA)
    threshold = (DEFAULT.caps.cells) / 2
    inside, outside = _scores(attack, _dp, tmp_path / "dp")
    assert len(inside) == len(outside) == SECRETS * len(ACCOUNTS) // 2
    dp_bound = epsilon_lower_bound(inside, outside, threshold)
    assert dp_bound < accounted, (attack, dp_bound, accounted)
    # The noise is really there: the attacker's statistic spreads as the σ say.
    assert np.std(outside) > 10

    exact_in, exact_out = _scores(attack, _exact_release, tmp_path / "exact")
    exact_bound = epsilon_lower_bound(exact_in, exact_out, threshold)
    assert all(score == DEFAULT.caps.cells for score in exact_in)
    assert all(score == 0 for score in exact_out)
    assert exact_bound > accounted > dp_bound, (attack, exact_bound, accounted, dp_bound)


def test_reusing_a_release_key_would_be_caught() -> None:
    """The rebuild audit fails for a store that reused the key: the noise cancels."""
    base = _baseline()
    key = release_key(b"audit-secret-reused", "2026-11-30", 1)
    before = _dp(base, key)
    after = _dp(_with_target(base, set(ACCOUNTS), "E"), key)
    differences = [
        (
            _observed(after, a, YOUR_ENGAGED_AUDIENCE) - _observed(before, a, YOUR_ENGAGED_AUDIENCE)
        ).sum()
        for a in ACCOUNTS
    ]
    assert all(d == DEFAULT.caps.cells for d in differences)
    assert accounting.epsilon(Fraction(0), DELTA) == 0.0
