"""Named edge cases of the SPEC's semantics (§3), each with hand-computed expectations.

Every test states what the SPEC demands of the reference (tests/reference.py), then checks that
the engine agrees with the reference on every document and category list of the build. Set
PINSIGHTS_REFERENCE_ONLY=1 to check the hand-computed expectations without the engine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pycountry
import pytest

from tests.datasets import (
    D,
    EngineOutcome,
    Tables,
    account,
    at,
    engine_agrees,
    event,
    interest,
    pin,
    platform,
    run_engine,
    user,
    write_dataset,
)
from tests.reference import Reference, reference_build

T = "YOUR_TOTAL_AUDIENCE"
E = "YOUR_ENGAGED_AUDIENCE"
P = "PINTEREST_TOTAL_AUDIENCE"
SMALL = {"min_audience_size": 1, "min_cell_size": 1, "max_subcategories": 10}
EMPTY_DEMOGRAPHICS = {"ages": [], "genders": [], "countries": [], "metros": [], "devices": []}
REFERENCE_ONLY = os.environ.get("PINSIGHTS_REFERENCE_ONLY") == "1"

TAXONOMY = [
    interest("1", "Food"),
    interest("2", "Travel"),
    interest("3", "Art"),
    interest("11", "Recipes", "1"),
    interest("12", "Drinks", "1"),
    interest("111", "Vegan recipes", "11"),
    interest("21", "Beaches", "2"),
]


def build_both(
    tmp_path: Path, tables: Tables, *, fmt: str = "parquet", **options: Any
) -> tuple[Reference, EngineOutcome | None]:
    """The reference's build, after checking that the engine's build agrees with it."""
    reference = reference_build(tables, **options)
    if REFERENCE_ONLY:
        return reference, None
    return reference, engine_agrees(tmp_path, tables, reference, fmt=fmt, **options)


def placeholder(insight_type: str, size: int, date: dt.date = D) -> dict[str, Any]:
    return {
        "type": insight_type,
        "date": date.isoformat(),
        "size": size,
        "size_is_upper_bound": True,
        "categories": [],
        "demographics": EMPTY_DEMOGRAPHICS,
    }


def simple_platform(people: int, **overrides: Any) -> Tables:
    """Account 100 with one pin (10, interest Food); users 1..people each save it once."""
    tables = {
        "interests": TAXONOMY,
        "ad_accounts": [account("100")],
        "users": [user(u) for u in range(1, people + 1)],
        "pins": [pin(10, "100", "1")],
        "events": [event(u, 10) for u in range(1, people + 1)],
    }
    tables.update(overrides)
    return platform(**tables)


# ---------------------------------------------------------------------------------------------
# Audiences and privacy


def test_account_without_pins_gets_placeholder_documents(tmp_path: Path) -> None:
    tables = simple_platform(3, ad_accounts=[account("100"), account("300")])
    reference, _ = build_both(tmp_path, tables, min_audience_size=2, min_cell_size=1)
    assert reference.documents[("300", T)] == placeholder(T, 2)
    assert reference.documents[("300", E)] == placeholder(E, 2)
    assert reference.documents[("300", P)]["size"] == 3
    assert reference.documents[("300", P)]["size_is_upper_bound"] is False


def test_account_with_pins_but_no_events_gets_placeholder_documents(tmp_path: Path) -> None:
    tables = simple_platform(
        3, ad_accounts=[account("100"), account("400")], pins=[pin(10, "100", "1"), pin(40, "400")]
    )
    reference, _ = build_both(tmp_path, tables, min_audience_size=2, min_cell_size=1)
    assert reference.documents[("400", T)] == placeholder(T, 2)
    assert reference.documents[("400", E)] == placeholder(E, 2)


def test_audience_below_min_audience_size_is_a_placeholder_and_at_it_is_real(
    tmp_path: Path,
) -> None:
    tables = platform(
        interests=TAXONOMY,
        ad_accounts=[account("100"), account("200")],
        users=[user(u, country="FR") for u in range(1, 6)],
        pins=[pin(10, "100", "1"), pin(20, "200", "2")],
        events=[event(1, 10), event(2, 10), event(3, 20), event(4, 20), event(5, 20)],
    )
    reference, _ = build_both(tmp_path, tables, min_audience_size=3, min_cell_size=1)
    assert reference.documents[("100", T)] == placeholder(T, 3)
    real = reference.documents[("200", T)]
    assert (real["size"], real["size_is_upper_bound"]) == (3, False)
    assert real["demographics"]["countries"] == [{"key": "fr", "name": "France", "ratio": 1.0}]
    assert reference.documents[("200", P)]["size"] == 5


def test_cells_below_min_cell_size_are_left_out_but_their_users_still_count(
    tmp_path: Path,
) -> None:
    tables = simple_platform(
        3, users=[user(1, country="US"), user(2, country="US"), user(3, country="FR")]
    )
    reference, _ = build_both(tmp_path, tables, min_audience_size=1, min_cell_size=2)
    demographics = reference.documents[("100", T)]["demographics"]
    assert demographics["countries"] == [{"key": "us", "name": "United States", "ratio": 0.6667}]
    assert demographics["genders"] == [{"key": "unspecified", "name": "Unspecified", "ratio": 1.0}]
    assert reference.documents[("100", T)]["size"] == 3


def test_small_pinterest_audience_is_a_placeholder_too(tmp_path: Path) -> None:
    reference, _ = build_both(tmp_path, simple_platform(2), min_audience_size=3, min_cell_size=1)
    assert reference.documents[("100", P)] == placeholder(P, 3)


def test_impressions_alone_make_no_interest_and_no_engaged_audience(tmp_path: Path) -> None:
    tables = simple_platform(
        2, events=[event(1, 10, "IMPRESSION"), event(2, 10, "IMPRESSION"), event(2, 10)]
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    total = reference.documents[("100", T)]
    assert total["size"] == 2
    assert total["categories"][0]["id"] == "1"
    assert total["categories"][0]["ratio"] == 0.5
    engaged = reference.documents[("100", E)]
    assert engaged["size"] == 1


def test_an_audience_of_impressions_only_has_no_engaged_audience(tmp_path: Path) -> None:
    tables = simple_platform(2, events=[event(1, 10, "IMPRESSION"), event(2, 10, "IMPRESSION")])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.documents[("100", T)]["size"] == 2
    assert reference.documents[("100", T)]["categories"] == []
    assert reference.documents[("100", E)] == placeholder(E, 1)


@pytest.mark.parametrize(
    "engagement",
    ["CLOSEUP", "SAVE", "PIN_CLICK", "OUTBOUND_CLICK", "VIDEO_VIEW", "COMMENT", "REACTION"],
)
def test_every_event_type_but_impression_is_an_engagement(tmp_path: Path, engagement: str) -> None:
    tables = simple_platform(1, events=[event(1, 10, engagement)])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.documents[("100", E)]["size"] == 1
    assert [c["id"] for c in reference.documents[("100", E)]["categories"]] == ["1"]


def test_interests_come_from_engagements_with_any_pin_not_only_the_accounts(
    tmp_path: Path,
) -> None:
    tables = platform(
        interests=TAXONOMY,
        ad_accounts=[account("100")],
        users=[user(1), user(2)],
        pins=[pin(10, "100"), pin(30, None, "21")],
        events=[event(1, 10), event(2, 10), event(1, 30)],
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    categories = reference.documents[("100", T)]["categories"]
    assert categories == [
        {
            "id": "2",
            "key": "2",
            "name": "Travel",
            "ratio": 0.5,
            "index": 1.0,
            "subcategories": [
                {"id": "21", "key": "21", "name": "Beaches", "ratio": 1.0, "index": 1.0}
            ],
        }
    ]


def test_pinterest_document_is_the_whole_platform_for_every_account(tmp_path: Path) -> None:
    """P is everyone with an event, whichever account asks: accounts whose own audiences differ,
    and one without any pin, all get the same full document (not one built from their own users,
    not a placeholder). The engine is compared with the reference for every account's P."""
    tables = platform(
        interests=TAXONOMY,
        ad_accounts=[account("100"), account("200"), account("300")],
        users=[user(u) for u in range(1, 8)],
        pins=[pin(10, "100", "1"), pin(20, "200", "21"), pin(30, None, "3")],
        events=[
            *[event(u, 10) for u in (1, 2, 3)],
            *[event(u, 20) for u in (4, 5)],
            *[event(u, 30) for u in (6, 7)],
            event(1, 20, "IMPRESSION"),
        ],
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert [reference.documents[(a, T)]["size"] for a in ("100", "200")] == [3, 3]
    assert reference.documents[("300", T)]["size_is_upper_bound"] is True
    everyone = reference.documents[("300", P)]
    assert everyone["size"] == 7 and everyone["size_is_upper_bound"] is False
    # Food: users 1-3, Travel: 4-5 (Beaches), Art: 6-7 -> 3/7, 2/7, 2/7; ties by id as text.
    assert [(c["id"], c["ratio"]) for c in everyone["categories"]] == [
        ("1", 0.4286),
        ("2", 0.2857),
        ("3", 0.2857),
    ]
    assert all(reference.documents[(a, P)] == everyone for a in ("100", "200"))


# ---------------------------------------------------------------------------------------------
# Interests


def test_level_three_interest_counts_for_its_level_one_and_level_two_ancestors(
    tmp_path: Path,
) -> None:
    tables = simple_platform(2, pins=[pin(10, "100", "111")])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.documents[("100", T)]["categories"] == [
        {
            "id": "1",
            "key": "1",
            "name": "Food",
            "ratio": 1.0,
            "index": 1.0,
            "subcategories": [
                {"id": "11", "key": "11", "name": "Recipes", "ratio": 1.0, "index": 1.0}
            ],
        }
    ]
    assert reference.category_items[("100", T, "1")] == {
        "items": [{"id": "11", "key": "11", "name": "Recipes", "ratio": 1.0, "index": 1.0}]
    }


def test_level_one_interest_counts_only_for_itself(tmp_path: Path) -> None:
    tables = simple_platform(2, pins=[pin(10, "100", "2")])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.documents[("100", T)]["categories"] == [
        {"id": "2", "key": "2", "name": "Travel", "ratio": 1.0, "index": 1.0, "subcategories": []}
    ]


def test_pins_without_interest_count_in_the_audience_but_give_no_interest(
    tmp_path: Path,
) -> None:
    tables = simple_platform(2, pins=[pin(10, "100", None)])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    document = reference.documents[("100", T)]
    assert (document["size"], document["categories"]) == (2, [])


def test_users_in_every_audience_holding_almost_every_interest_are_counted_exactly(
    tmp_path: Path,
) -> None:
    """The engine counts users who hold more than half of the interests anyone holds by the
    interests they lack (semantics.interest_member_counts): here users 1 and 2 hold all six
    level-1/level-2 interests and user 3 all but Art, all three in every T(a) and E(a); Food is
    held by every one of them, Art by two; users 4-7 hold one or two interests each."""
    tables = platform(
        interests=TAXONOMY,
        ad_accounts=[account("100"), account("200"), account("300")],
        users=[user(u) for u in range(1, 8)],
        pins=[
            pin(10, "100", "111"),
            pin(20, "200", "12"),
            pin(30, "300", "21"),
            pin(40, None, "3"),
            pin(50, "300", None),
        ],
        events=[
            *[event(u, p) for u in (1, 2) for p in (10, 20, 30, 40)],
            *[event(3, p) for p in (10, 20, 30)],
            event(4, 10),
            event(5, 20, "IMPRESSION"),
            event(5, 40),
            event(6, 50),
            event(7, 30),
        ],
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)

    def ratios(account_id: str, audience: str) -> list[tuple[str, float]]:
        return [
            (c["id"], c["ratio"]) for c in reference.documents[(account_id, audience)]["categories"]
        ]

    # T(100) = {1, 2, 3, 4}: Food 4/4, Travel 3/4, Art 2/4.
    assert ratios("100", T) == [("1", 1.0), ("2", 0.75), ("3", 0.5)]
    # E(200) = {1, 2, 3} (5 only saw the pin): Food and Travel 3/3, Art 2/3.
    assert ratios("200", E) == [("1", 1.0), ("2", 1.0), ("3", 0.6667)]
    # T(300) = {1, 2, 3, 6, 7}: Travel 4/5 (with 7), Food 3/5, Art 2/5.
    assert ratios("300", T) == [("2", 0.8), ("1", 0.6), ("3", 0.4)]


def test_categories_sort_by_ratio_then_id_as_text_and_subcategories_are_capped(
    tmp_path: Path,
) -> None:
    interests = [
        interest("9", "Nine"),
        interest("10", "Ten"),
        interest("91", "Nine one", "9"),
        interest("92", "Nine two", "9"),
        interest("93", "Nine three", "9"),
    ]
    pins = [pin(1, "100", "91"), pin(2, "100", "92"), pin(3, "100", "93"), pin(4, "100", "10")]
    # users 1-2 engage with 91, user 1 also 92, user 2 also 93; users 3-4 with 10
    events = [event(1, 1), event(2, 1), event(1, 2), event(2, 3), event(3, 4), event(4, 4)]
    tables = platform(
        interests=interests,
        ad_accounts=[account("100")],
        users=[user(u) for u in range(1, 5)],
        pins=pins,
        events=events,
    )
    reference, _ = build_both(
        tmp_path, tables, min_audience_size=1, min_cell_size=1, max_subcategories=2
    )
    categories = reference.documents[("100", T)]["categories"]
    assert [c["id"] for c in categories] == ["10", "9"]
    assert [s["id"] for s in categories[1]["subcategories"]] == ["91", "92"]
    assert [s["ratio"] for s in categories[1]["subcategories"]] == [1.0, 0.5]
    items = reference.category_items[("100", T, "9")]["items"]
    assert [s["id"] for s in items] == ["91", "92", "93"]


def test_category_items_for_unknown_level_two_and_left_out_categories(tmp_path: Path) -> None:
    tables = simple_platform(2, pins=[pin(10, "100", "111")])
    reference, outcome = build_both(tmp_path, tables, **SMALL)
    assert reference.category_items[("100", T, "2")] == {"items": []}
    assert reference.category_items[("100", T, "3")] == {"items": []}
    assert ("100", T, "11") not in reference.category_items
    if outcome is not None:
        assert outcome.category_items[("100", T, "11")] is None
        assert outcome.category_items[("100", T, "111")] is None
        assert outcome.category_items[("100", T, "424242")] is None


def test_category_items_of_a_placeholder_audience_are_empty(tmp_path: Path) -> None:
    tables = simple_platform(2, pins=[pin(10, "100", "111")])
    reference, _ = build_both(tmp_path, tables, min_audience_size=5, min_cell_size=1)
    assert reference.category_items[("100", T, "1")] == {"items": []}


# ---------------------------------------------------------------------------------------------
# Ratios and indexes


def test_ratios_and_indexes_are_floats_even_when_whole(tmp_path: Path) -> None:
    reference, outcome = build_both(tmp_path, simple_platform(2), **SMALL)
    category = reference.documents[("100", T)]["categories"][0]
    assert (category["ratio"], category["index"]) == (1.0, 1.0)
    if outcome is not None:
        raw = outcome.raw_documents[("100", T)]
        assert raw is not None
        parsed = json.loads(raw)
        assert isinstance(parsed["categories"][0]["ratio"], float)
        assert isinstance(parsed["categories"][0]["index"], float)


def test_index_is_computed_from_unrounded_ratios(tmp_path: Path) -> None:
    # A = users 1-3, one of them into Food: 1/3. P = 7 users, two into Food: 2/7.
    # index = (1/3) / (2/7) = 7/6 = 1.16666… → 1.1667; from rounded ratios 0.3333/0.2857 → 1.1666
    tables = platform(
        interests=TAXONOMY,
        ad_accounts=[account("100")],
        users=[user(u) for u in range(1, 8)],
        pins=[pin(10, "100"), pin(30, None, "1"), pin(31, None)],
        events=[event(u, 10) for u in (1, 2, 3)]
        + [event(1, 30), event(7, 30)]
        + [event(u, 31) for u in (4, 5, 6)],
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    category = reference.documents[("100", T)]["categories"][0]
    assert (category["ratio"], category["index"]) == (0.3333, 1.1667)
    p_category = reference.documents[("100", P)]["categories"][0]
    assert (p_category["ratio"], p_category["index"]) == (0.2857, 1.0)


def test_ratios_round_half_to_even(tmp_path: Path) -> None:
    # 1/32 = 0.03125 exactly → 0.0312; 3/32 = 0.09375 → 0.0938
    users = [user(u, country="FR" if u == 1 else "DE" if u <= 4 else "US") for u in range(1, 33)]
    tables = simple_platform(32, users=users)
    reference, _ = build_both(tmp_path, tables, **SMALL)
    countries = reference.documents[("100", T)]["demographics"]["countries"]
    assert countries == [
        {"key": "us", "name": "United States", "ratio": 0.875},
        {"key": "de", "name": "Germany", "ratio": 0.0938},
        {"key": "fr", "name": "France", "ratio": 0.0312},
    ]


def test_subcategory_ratio_is_relative_to_its_category(tmp_path: Path) -> None:
    # A: users 1-4; Food: users 1-2 (via Recipes: user 1); P adds users 5-6 into Recipes.
    # subcategory ratio A = 1/2; P = 3/4 ⇒ index = (1/2)/(3/4) = 0.6667
    tables = platform(
        interests=TAXONOMY,
        ad_accounts=[account("100")],
        users=[user(u) for u in range(1, 7)],
        pins=[pin(10, "100"), pin(11, "100", "11"), pin(12, "100", "12"), pin(30, None, "111")],
        events=[event(u, 10) for u in (1, 2, 3, 4)]
        + [event(1, 11), event(2, 12), event(5, 30), event(6, 30)],
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    food = reference.documents[("100", T)]["categories"][0]
    assert (food["id"], food["ratio"], food["index"]) == ("1", 0.5, 0.75)
    recipes, drinks = food["subcategories"]
    assert (recipes["id"], recipes["ratio"], recipes["index"]) == ("11", 0.5, 0.6667)
    assert (drinks["id"], drinks["ratio"], drinks["index"]) == ("12", 0.5, 2.0)


# ---------------------------------------------------------------------------------------------
# Demographics


def test_null_demographics_count_as_unknown_and_gender_as_unspecified(tmp_path: Path) -> None:
    tables = simple_platform(2, users=[user(1), user(2, gender="unspecified")])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    unknown = [{"key": "unknown", "name": "Unknown", "ratio": 1.0}]
    assert reference.documents[("100", T)]["demographics"] == {
        "ages": unknown,
        "genders": [{"key": "unspecified", "name": "Unspecified", "ratio": 1.0}],
        "countries": unknown,
        "metros": unknown,
        "devices": unknown,
    }


def test_country_codes_in_any_case_count_as_one_country(tmp_path: Path) -> None:
    users = [user(u, country=code) for u, code in enumerate(["US", "us", "Us", "uS"], start=1)]
    reference, _ = build_both(tmp_path, simple_platform(4, users=users), **SMALL)
    countries = reference.documents[("100", T)]["demographics"]["countries"]
    assert countries == [{"key": "us", "name": "United States", "ratio": 1.0}]


def test_ages_keep_their_fixed_order_and_others_sort_by_ratio_then_key(tmp_path: Path) -> None:
    users = [
        user(1, "65+", "male", "FR", "803", "web"),
        user(2, "18-24", "female", "DE", "501", "iphone"),
        user(3, None, "male", "DE", "501", "ipad"),
        user(4, "25-34", "female", "FR", "803", "android_mobile"),
        user(5, "65+", None, "GB", "999", "web_mobile"),
    ]
    metros = [{"metro": "501", "name": "New York, NY"}, {"metro": "803", "name": "Los Angeles, CA"}]
    tables = simple_platform(5, users=users, metros=metros)
    reference, _ = build_both(tmp_path, tables, **SMALL)
    demographics = reference.documents[("100", T)]["demographics"]
    assert [a["key"] for a in demographics["ages"]] == ["18-24", "25-34", "65+", "unknown"]
    assert [g["key"] for g in demographics["genders"]] == ["female", "male", "unspecified"]
    assert [c["key"] for c in demographics["countries"]] == ["de", "fr", "gb"]
    assert demographics["metros"] == [
        {"key": "501", "name": "New York, NY", "ratio": 0.4},
        {"key": "803", "name": "Los Angeles, CA", "ratio": 0.4},
        {"key": "999", "name": "999", "ratio": 0.2},
    ]
    assert [(d["key"], d["name"]) for d in demographics["devices"]] == [
        ("android_mobile", "Android mobile"),
        ("ipad", "iPad"),
        ("iphone", "iPhone"),
        ("web", "Web"),
        ("web_mobile", "Mobile web"),
    ]


def test_countries_and_metros_are_capped_at_fifty(tmp_path: Path) -> None:
    codes = sorted(c.alpha_2 for c in pycountry.countries)[:55]
    users = [user(i + 1, country=code, metro=f"m{i:02d}") for i, code in enumerate(codes)]
    users.append(user(56, country=codes[-1], metro="m54"))  # the last one gets two users: first
    tables = simple_platform(56, users=users)
    reference, _ = build_both(tmp_path, tables, **SMALL)
    demographics = reference.documents[("100", T)]["demographics"]
    countries = [c["key"] for c in demographics["countries"]]
    assert countries == [codes[-1].lower()] + [code.lower() for code in codes[:49]]
    assert [m["key"] for m in demographics["metros"]] == ["m54"] + [f"m{i:02d}" for i in range(49)]


# ---------------------------------------------------------------------------------------------
# Window and date


def test_events_just_outside_the_window_do_not_count(tmp_path: Path) -> None:
    start = dt.datetime.combine(D - dt.timedelta(days=1), dt.time(), dt.UTC)
    end = dt.datetime.combine(D + dt.timedelta(days=1), dt.time(), dt.UTC)
    microsecond = dt.timedelta(microseconds=1)
    times = {1: start, 2: start - microsecond, 3: end - microsecond, 4: end}
    tables = simple_platform(4, events=[event(u, 10, event_time=t) for u, t in times.items()])
    reference, _ = build_both(tmp_path, tables, date=D, window_days=2, **SMALL)
    assert reference.window_start == D - dt.timedelta(days=1)
    assert reference.documents[("100", T)]["size"] == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_window_edges_in_text_formats_with_offsets(tmp_path: Path, fmt: str) -> None:
    times = {
        1: "2026-10-31T02:00:00+02:00",  # = start: in
        2: "2026-10-30T23:59:59.999999Z",  # just before start: out
        3: "2026-11-01 23:59:59.999999",  # no offset = UTC: in
        4: "2026-11-01T19:00:00-05:00",  # = end: out
        5: "2026-11-01T12:00:00+00:00",  # in
    }
    tables = simple_platform(5, events=[event(u, 10, event_time=t) for u, t in times.items()])
    reference, _ = build_both(tmp_path, tables, fmt=fmt, date=D, window_days=2, **SMALL)
    assert reference.documents[("100", T)]["size"] == 3


def test_default_date_is_the_utc_day_of_the_latest_valid_event(tmp_path: Path) -> None:
    events = [
        event(1, 10, event_time=at(D - dt.timedelta(days=3))),
        event(2, 10, event_time="2026-11-02T01:30:00+02:00"),  # 2026-11-01 23:30 UTC
        event(99, 10, event_time=at(D + dt.timedelta(days=5))),  # unknown user: not valid
    ]
    tables = simple_platform(2, events=events)
    reference, _ = build_both(tmp_path, tables, fmt="csv", window_days=1, **SMALL)
    assert reference.date == D
    assert reference.documents[("100", T)]["date"] == "2026-11-01"
    assert reference.documents[("100", T)]["size"] == 1


def test_an_event_at_midnight_starts_the_next_day(tmp_path: Path) -> None:
    midnight = dt.datetime.combine(D + dt.timedelta(days=1), dt.time(), dt.UTC)
    tables = simple_platform(2, events=[event(1, 10), event(2, 10, event_time=midnight)])
    reference, _ = build_both(tmp_path, tables, window_days=1, **SMALL)
    assert reference.date == D + dt.timedelta(days=1)
    assert reference.documents[("100", T)]["size"] == 1


def test_no_valid_event_and_no_date_fails_the_build(tmp_path: Path) -> None:
    tables = simple_platform(2, events=[event(99, 10)])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.failed


def test_a_given_date_whose_window_has_no_valid_event_is_refused(tmp_path: Path) -> None:
    tables = simple_platform(2, events=[event(1, 10, event_time=at(D + dt.timedelta(days=1)))])
    reference, _ = build_both(tmp_path, tables, date=D, window_days=1, **SMALL)
    assert reference.failed


def test_a_given_date_without_events_publishes_placeholders_when_allowed(tmp_path: Path) -> None:
    tables = simple_platform(2, events=[event(99, 10)])
    reference, _ = build_both(
        tmp_path, tables, date=D, min_audience_size=1, min_cell_size=1, allow_empty=True
    )
    assert reference.documents[("100", T)] == placeholder(T, 1)
    assert reference.documents[("100", P)] == placeholder(P, 1)


# ---------------------------------------------------------------------------------------------
# Quarantine: duplicates and references


def test_duplicate_keys_quarantine_every_row_of_the_key(tmp_path: Path) -> None:
    tables = simple_platform(
        3, users=[user(1), user(2, "18-24"), user(2, "25-34"), user(3), user(3)]
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.quarantined() == {
        "users": {"duplicate_key": 4},
        "events": {"unknown_reference": 2},
    }
    assert reference.documents[("100", T)]["size"] == 1


def test_a_bad_row_does_not_make_its_key_a_duplicate(tmp_path: Path) -> None:
    tables = simple_platform(2, users=[user(1), user(2), user(2, gender="Female")])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.quarantined() == {"users": {"bad_value": 1}}
    assert reference.documents[("100", T)]["size"] == 2


def test_dangling_references_are_quarantined_and_cascade(tmp_path: Path) -> None:
    tables = platform(
        interests=[*TAXONOMY, interest("2", "Travel again"), interest("5", "Orphan", "77")],
        ad_accounts=[account("100"), account("200"), account("200")],
        users=[user(1), user(2), user(3)],
        pins=[
            pin(10, "100", "1"),
            pin(11, "999"),  # no such account
            pin(20, "200"),  # its account was quarantined (duplicate)
            pin(21, None, "21"),  # its interest's parent was quarantined (duplicate)
            pin(22, "100", "424242"),  # no such interest
        ],
        events=[event(1, 10), event(2, 11), event(2, 20), event(3, 21), event(3, 22), event(1, 9)],
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.quarantined() == {
        "interests": {"duplicate_key": 2, "unknown_reference": 2},
        "ad_accounts": {"duplicate_key": 2},
        "pins": {"unknown_reference": 4},
        "events": {"unknown_reference": 5},
    }
    assert reference.ad_accounts == ["100"]
    assert reference.level1_interests == ["1", "3"]
    assert reference.documents[("100", P)]["size"] == 1


def test_a_platform_without_any_used_interest_still_builds(tmp_path: Path) -> None:
    tables = simple_platform(
        2, interests=[interest("1", "Food"), interest("1", "Food again")], pins=[pin(10, "100")]
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.quarantined() == {"interests": {"duplicate_key": 2}}
    assert reference.level1_interests == []
    document = reference.documents[("100", T)]
    assert (document["size"], document["categories"]) == (2, [])


def test_interest_cycles_and_self_parents_are_unknown_references(tmp_path: Path) -> None:
    interests = [
        *TAXONOMY,
        interest("7", "Self", "7"),
        interest("8", "Cycle a", "9"),
        interest("9", "Cycle b", "8"),
        interest("81", "Below cycle", "8"),
    ]
    tables = simple_platform(1, interests=interests)
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.quarantined() == {"interests": {"unknown_reference": 4}}


def test_an_interest_eleven_levels_deep_counts_for_its_level_one_and_level_two_ancestors(
    tmp_path: Path,
) -> None:
    """Deeper than one query of the engine's walk down the hierarchy reaches (it walks a few
    levels at a time): every level is reached, and a cycle hanging below the chain never is."""
    chain = [interest("1", "Food"), interest("502", "Level 2", "1")]
    chain += [interest(f"50{d}", f"Level {d}", f"50{d - 1}") for d in range(3, 10)]
    chain += [interest("510", "Level 10", "509"), interest("511", "Level 11", "510")]
    cycle = [interest("81", "Cycle a", "82"), interest("82", "Cycle b", "81")]
    below = [*cycle, interest("83", "Under the cycle", "81")]
    tables = simple_platform(2, interests=[*chain, *below], pins=[pin(10, "100", "511")])
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.quarantined() == {"interests": {"unknown_reference": 3}}
    category = reference.documents[("100", T)]["categories"][0]
    assert (category["id"], [sub["id"] for sub in category["subcategories"]]) == ("1", ["502"])


def test_an_event_on_a_pin_whose_account_was_quarantined_is_quarantined(tmp_path: Path) -> None:
    tables = simple_platform(
        2,
        ad_accounts=[account("100"), {"ad_account_id": "200", "name": None}],
        pins=[pin(10, "100", "1"), pin(20, "200")],
        events=[event(1, 10), event(2, 20)],
    )
    reference, _ = build_both(tmp_path, tables, **SMALL)
    assert reference.quarantined() == {
        "ad_accounts": {"bad_value": 1},
        "pins": {"unknown_reference": 1},
        "events": {"unknown_reference": 1},
    }
    assert reference.documents[("100", P)]["size"] == 1


def test_digit_strings_are_distinct_ids_and_metros_keep_their_text(tmp_path: Path) -> None:
    tables = platform(
        interests=[interest("7", "Seven"), interest("007", "Double-oh seven")],
        ad_accounts=[account("7"), account("007")],
        users=[user(1, metro="0602"), user(2, metro="602")],
        pins=[pin(1, "007", "007"), pin(2, "7", "7")],
        events=[event(1, 1), event(2, 2)],
        metros=[{"metro": "0602", "name": "Chicago, IL"}],
    )
    for fmt in ("csv", "jsonl", "parquet"):
        reference, _ = build_both(tmp_path / fmt, tables, fmt=fmt, **SMALL)
        document = reference.documents[("007", T)]
        assert [c["id"] for c in document["categories"]] == ["007"]
        assert document["demographics"]["metros"] == [
            {"key": "0602", "name": "Chicago, IL", "ratio": 1.0}
        ]
        assert reference.documents[("7", T)]["demographics"]["metros"][0]["name"] == "602"


def test_the_same_dataset_builds_to_byte_identical_documents(tmp_path: Path) -> None:
    if REFERENCE_ONLY:
        pytest.skip("needs the engine")
    tables = simple_platform(3, users=[user(1, "18-24"), user(2, "65+"), user(3, country="de")])
    reference = reference_build(tables, **SMALL)
    data_dir = tmp_path / "data"
    write_dataset(tables, data_dir, "parquet")
    outcomes = [
        run_engine(data_dir, tmp_path / f"store-{i}", accounts=["100"], categories=["1"], **SMALL)
        for i in range(2)
    ]
    assert outcomes[0].raw_documents == outcomes[1].raw_documents
    assert outcomes[0].date == reference.date
