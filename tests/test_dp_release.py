"""One DP release over hand-made bounded counts: post-processing invariants, determinism, noise
on every cell of the domain (absent values included), thresholds on noisy counts."""

from __future__ import annotations

import numpy as np
import pytest

from pinsights.engine.documents import P_KEY
from pinsights.engine.dp.parameters import DEFAULT
from pinsights.engine.dp.release import Domain, PartCounts, demographic_domain, noisy_counts
from pinsights.engine.dp.seeding import release_key
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.semantics import YOUR_ENGAGED_AUDIENCE, YOUR_TOTAL_AUDIENCE

RULES = PrivacyRules()
CATEGORIES = ["c1", "c2", "c3"]
SUBCATEGORIES = {"s1": "c1", "s2": "c1", "s3": "c2"}


def _domain() -> Domain:
    return Domain(CATEGORIES, SUBCATEGORIES, demographic_domain(["501", "803"]))


def _parts(accounts: list[str], domain: Domain, rng: np.random.Generator) -> PartCounts:
    parts = PartCounts.zeros(accounts, domain)
    for row, (_, part) in enumerate(parts.rows):
        size = 200_000 if part == "P" else int(rng.integers(0, 3_000))
        parts.sizes[row] = size
        for name in ("interest:c1", "interest:c2", "interest:s1", "interest:s3", "ages:25-34"):
            parts.cells[row, domain.column[name]] = int(rng.integers(0, size // 2 + 1))
        parts.cells[row, domain.column["countries:us"]] = size
        if part == "P":  # everyone else lives somewhere on the platform
            for country in demographic_domain([])["countries"][:-1]:
                if country != "us":
                    parts.cells[row, domain.column[f"countries:{country}"]] = 1_000
    return parts


def _release(accounts: list[str], secret: bytes = b"release-tests-secret", seed: int = 1):  # type: ignore[no-untyped-def]
    domain = _domain()
    parts = _parts(accounts, domain, np.random.default_rng(seed))
    key = release_key(secret, "2026-11-30", 1)
    return noisy_counts(parts, domain, DEFAULT, RULES, key, accounts)


def test_release_is_deterministic_and_keyed() -> None:
    accounts = [str(a) for a in range(1, 10)]
    first, again = _release(accounts), _release(accounts)
    assert first == again
    assert _release(accounts, b"another-secret-here") != first


def test_post_processing_invariants_hold_in_every_released_audience() -> None:
    accounts = [str(a) for a in range(1, 200)]
    counts = _release(accounts)
    p_interests = counts.interests[P_KEY]
    described = 0
    for account in accounts:
        total, engaged = (account, YOUR_TOTAL_AUDIENCE), (account, YOUR_ENGAGED_AUDIENCE)
        assert counts.sizes[engaged] <= counts.sizes[total]
        for key in (total, engaged):
            if not RULES.audience_is_reportable(counts.sizes[key]):
                assert key not in counts.interests
                continue
            described += 1
            size, interests = counts.sizes[key], counts.interests[key]
            for interest, users in interests.items():
                assert 0 < users <= size
                assert interest in p_interests  # an index needs P's count
                if interest in SUBCATEGORIES and SUBCATEGORIES[interest] in interests:
                    assert users <= interests[SUBCATEGORIES[interest]]
            for values in counts.demographics[key].values():
                assert all(0 < users <= size for _, users in values)
        if engaged in counts.interests and total in counts.interests:
            for interest, users in counts.interests[engaged].items():
                if interest in counts.interests[total]:
                    assert users <= counts.interests[total][interest]
    assert described > 100


def test_every_cell_of_the_domain_is_noised_and_thresholds_use_noisy_counts() -> None:
    """Everyone in the accounts' audiences lives in the US, yet over many audiences a noisy count
    of another country P shows reaches the threshold about as often as the noise says (never in
    exact mode)."""
    accounts = [str(a) for a in range(1, 200)]
    counts = _release(accounts)
    country_cells = 0
    phantom = 0
    for account in accounts:
        key = (account, YOUR_ENGAGED_AUDIENCE)
        if key in counts.demographics:
            countries = dict(counts.demographics[key].get("countries", []))
            country_cells += len(demographic_domain([])["countries"]) - 1
            phantom += sum(1 for country in countries if country != "us")
            assert "us" in countries
    # P(N_Z(0, 13²) ≥ 39) ≈ 0.0013 per absent country.
    assert country_cells > 5_000
    assert 0 < phantom < 0.004 * country_cells


def test_a_missing_part_is_refused() -> None:
    domain = _domain()
    parts = PartCounts.zeros(["1", "2"], domain)
    with pytest.raises(ValueError, match="parts of a release"):
        noisy_counts(parts, domain, DEFAULT, RULES, b"k" * 32, ["1", "2", "3"])
