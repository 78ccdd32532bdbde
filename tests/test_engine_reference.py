"""The engine agrees with the independent reference (tests/reference.py) on many small random
platforms: every document, every category list, the generation date, and what was used and
quarantined, per table and rule."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.datasets import (
    FORMATS,
    Platform,
    assert_engine_matches,
    platforms,
    run_engine,
    write_dataset,
)
from tests.reference import reference_build

NOT_AN_ACCOUNT = "31337"


@st.composite
def builds(draw: st.DrawFn, fmt: str) -> tuple[Platform, dict[str, Any], bool]:
    platform = draw(platforms(fmt))
    options = {
        "date": draw(st.sampled_from([None, platform.anchor])),
        "window_days": platform.window_days,
        "min_audience_size": draw(st.integers(1, 3)),
        "min_cell_size": draw(st.integers(1, 2)),
        "max_subcategories": draw(st.integers(1, 2)),
    }
    return platform, options, draw(st.booleans())


def check_engine_against_reference(platform: Platform, options: dict[str, Any], partitioned: bool):
    note(platform.describe())
    note(f"options={options} partitioned={partitioned}")
    reference = reference_build(platform.tables, **options)
    not_categories = [
        interest
        for interest in reference.used_interests
        if interest not in reference.level1_interests
    ]
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        write_dataset(
            platform.tables, data_dir, platform.fmt, partitioned=partitioned, anchor=platform.anchor
        )
        outcome = run_engine(
            data_dir,
            Path(scratch) / "store",
            accounts=[*reference.ad_accounts, NOT_AN_ACCOUNT],
            categories=[*reference.level1_interests, *not_categories[:1], "424242"],
            **options,
        )
    assert_engine_matches(reference, outcome)


@pytest.mark.parametrize("fmt", FORMATS)
def test_engine_equals_reference_on_random_platforms(fmt: str) -> None:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(builds(fmt))
    def engine_equals_reference(build: tuple[Platform, dict[str, Any], bool]) -> None:
        check_engine_against_reference(*build)

    engine_equals_reference()
