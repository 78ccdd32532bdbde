"""pandas views: a tidy frame per document, and two audiences side by side."""

from __future__ import annotations

import math
import sys

import pytest
from test_client_fakes import definitions_document, insights_document

from pinsights.client import (
    AudienceDefinitionResponse,
    AudienceInsightCategoryArrayResponse,
    AudienceInsightsResponse,
    compare,
)

pd = pytest.importorskip("pandas")

ENGAGED = AudienceInsightsResponse.model_validate(insights_document("YOUR_ENGAGED_AUDIENCE"))
PLATFORM = AudienceInsightsResponse.model_validate(insights_document("PINTEREST_TOTAL_AUDIENCE"))


def test_an_insights_frame_has_a_row_per_category_subcategory_and_demographic_value() -> None:
    frame = ENGAGED.to_dataframe()

    assert list(frame.columns) == [
        "type", "date", "dimension", "parent_key", "key", "name", "ratio", "index",
    ]  # fmt: skip
    assert frame["dimension"].value_counts().to_dict() == {
        "categories": 2,
        "subcategories": 1,
        "ages": 2,
        "genders": 2,
        "countries": 1,
        "metros": 1,
        "devices": 1,
    }
    assert set(frame["type"]) == {"YOUR_ENGAGED_AUDIENCE"}
    living_room = frame[frame["key"] == "961238559656"].iloc[0]
    assert (living_room["dimension"], living_room["parent_key"]) == (
        "subcategories",
        "935541271955",
    )
    assert frame["ratio"].dtype == "float64"
    assert frame.loc[frame["dimension"] == "ages", "index"].isna().all()


def test_a_document_below_the_privacy_threshold_gives_an_empty_frame_with_the_same_columns() -> (
    None
):
    small = AudienceInsightsResponse.model_validate(
        {
            "type": "YOUR_TOTAL_AUDIENCE",
            "date": "2026-11-30",
            "size": 100,
            "size_is_upper_bound": True,
            "categories": [],
            "demographics": {
                "ages": [],
                "genders": [],
                "countries": [],
                "metros": [],
                "devices": [],
            },
        }
    )

    frame = small.to_dataframe()

    assert frame.empty
    assert "ratio" in frame.columns


def test_definitions_frame_names_the_insight_type_of_each_definition() -> None:
    frame = AudienceDefinitionResponse.model_validate(definitions_document()).to_dataframe()

    assert frame["audience_insight_type"].tolist() == [
        "YOUR_TOTAL_AUDIENCE",
        "YOUR_ENGAGED_AUDIENCE",
        "PINTEREST_TOTAL_AUDIENCE",
    ]


def test_the_category_list_frame_has_one_row_per_item() -> None:
    listing = AudienceInsightCategoryArrayResponse.model_validate(
        {"items": [{"id": "1", "key": "1", "name": "Living room", "ratio": 0.5, "index": 1.2}]}
    )

    assert listing.to_dataframe().to_dict("records") == [
        {"id": "1", "key": "1", "name": "Living room", "ratio": 0.5, "index": 1.2}
    ]


def test_compare_puts_both_ratios_and_indexes_side_by_side_with_lift() -> None:
    frame = compare(ENGAGED, PLATFORM)

    home = frame[(frame["dimension"] == "categories") & (frame["key"] == "935541271955")].iloc[0]
    assert home["name"] == "Home decor"
    assert home["ratio_your_engaged_audience"] == 0.4812
    assert home["ratio_pinterest_total_audience"] == 0.31
    assert home["index_your_engaged_audience"] == 1.5523
    assert home["index_pinterest_total_audience"] == 1.0
    assert home["ratio_diff"] == pytest.approx(0.4812 - 0.31)
    assert home["ratio_lift"] == pytest.approx(0.4812 / 0.31)


def test_compare_keeps_values_only_one_audience_reports_as_missing_not_zero() -> None:
    frame = compare(ENGAGED, PLATFORM)

    gardening = frame[frame["key"] == "1"].iloc[0]
    assert math.isnan(gardening["ratio_your_engaged_audience"])
    assert gardening["ratio_pinterest_total_audience"] == 0.05


def test_compare_orders_by_dimension_then_the_first_audiences_ratio() -> None:
    frame = compare(ENGAGED, PLATFORM)

    categories = frame[frame["dimension"] == "categories"]
    assert categories["name"].tolist() == ["Home decor", "Travel", "Gardening"]
    assert frame["dimension"].drop_duplicates().tolist() == [
        "categories", "subcategories", "ages", "genders", "countries", "metros", "devices",
    ]  # fmt: skip


def test_compare_of_two_dates_of_one_type_labels_the_sides_by_date() -> None:
    older = AudienceInsightsResponse.model_validate(
        insights_document("YOUR_ENGAGED_AUDIENCE", date="2026-10-31")
    )

    frame = compare(ENGAGED, older)

    assert "ratio_2026-11-30" in frame.columns and "ratio_2026-10-31" in frame.columns


def test_compare_accepts_explicit_labels_and_refuses_identical_ones() -> None:
    assert "ratio_mine" in compare(ENGAGED, PLATFORM, labels=("mine", "all")).columns
    with pytest.raises(ValueError, match="labels"):
        compare(ENGAGED, PLATFORM, labels=("x", "x"))


def test_without_pandas_to_dataframe_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)

    with pytest.raises(ImportError, match=r"pip install 'pinsights\[pandas\]'"):
        ENGAGED.to_dataframe()
