"""The engine agrees with the independent reference (tests/reference.py) on many small random
platforms exported as real systems export them: each table in a format of its own (Parquet, CSV,
JSON Lines, the text ones plain, gzip or zstd, a directory mixing two), with a byte-order mark,
CRLF and malformed lines in any text file, bad rows of every rule in several tables at once. The
reference reads the same files itself. Compared: every document, every category list, the
generation date, and what was read, used and quarantined, per table and rule, and the file and
line of every malformed line."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, note, settings

from tests.datasets import (
    Build,
    assert_engine_matches,
    random_builds,
    run_engine,
    write_build,
)
from tests.reference import read_dataset, reference_build

NOT_AN_ACCOUNT = "31337"


def check_engine_against_reference(build: Build) -> None:
    platform, styles, options, partitioned = build
    note(platform.describe())
    note(f"styles={styles}")
    note(f"options={options} partitioned={partitioned}")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        written = write_build(build, data_dir)
        data = read_dataset(data_dir)
        # The reference's own reader reads back what was written, and finds the broken lines.
        assert {t: len(rows) for t, rows in data.tables.items()} == {
            t: len(rows) for t, rows in platform.tables.items()
        }
        assert sorted((t, str(f), n) for t, f, n, _raw in written.malformed) == sorted(
            data.malformed
        )
        reference = reference_build(data.tables, malformed=data.malformed, **options)
        not_categories = [
            interest
            for interest in reference.used_interests
            if interest not in reference.level1_interests
        ]
        outcome = run_engine(
            data_dir,
            Path(scratch) / "store",
            accounts=[*reference.ad_accounts, NOT_AN_ACCOUNT],
            categories=[*reference.level1_interests, *not_categories[:1], "424242"],
            **options,
        )
    assert_engine_matches(reference, outcome)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(random_builds())
def test_engine_equals_reference_on_random_exports(build: Build) -> None:
    check_engine_against_reference(build)


def test_a_generated_platform_equals_the_reference_at_the_default_thresholds(
    tmp_path: Path,
) -> None:
    """Privacy at its real settings (min_audience_size=100, min_cell_size=10,
    max_subcategories=10) on a realistic platform of tens of thousands of events: every document
    and category list of every account equals the reference's. The platform is checked to make
    each threshold bite, so the comparison is not one of empty documents."""
    import datetime as dt

    from pinsights.synthetic.generate import generate

    data_dir = tmp_path / "data"
    summary = generate(
        data_dir, users=4_000, accounts=8, days=30, end_date=dt.date(2026, 11, 20), seed=7,
        events=40_000,
    )  # fmt: skip
    data = read_dataset(data_dir)
    assert len(data.tables["events"]) == summary.events == 40_000
    reference = reference_build(data.tables, malformed=data.malformed)
    outcome = run_engine(
        data_dir,
        tmp_path / "store",
        accounts=[*reference.ad_accounts, NOT_AN_ACCOUNT],
        categories=[*reference.used_interests, "424242"],
    )
    assert_engine_matches(reference, outcome)

    documents = list(reference.documents.values())
    real = [d for d in documents if not d["size_is_upper_bound"]]
    assert real and len(real) < len(documents), "some audiences above 100, some below"
    assert all(d["size"] >= 100 for d in real)
    shown = [c for d in real for c in d["categories"]]
    subcategories = [s for c in shown for s in c["subcategories"]]
    assert shown and subcategories, "categories and subcategories are shown"
    assert any(len(c["subcategories"]) == 10 for c in shown), "max_subcategories caps a list"
    uncapped = [
        items["items"]
        for key, items in reference.category_items.items()
        if key[0] in reference.ad_accounts
    ]
    assert any(len(items) > 10 for items in uncapped), "the category operation is not capped"
    # min_cell_size bites: without it, some shown audience would list more cells.
    every_cell = reference_build(data.tables, malformed=data.malformed, min_cell_size=1)
    assert any(
        len(every_cell.documents[key]["categories"]) > len(document["categories"])
        or every_cell.documents[key]["demographics"] != document["demographics"]
        for key, document in reference.documents.items()
        if not document["size_is_upper_bound"]
    ), "no cell fell below min_cell_size"
